"""The webhook receiver: Flask app under gunicorn that verifies, persists, acknowledges, then processes."""
