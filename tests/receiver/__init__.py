"""Tests of the webhook receiver: Flask test client and the real gunicorn server."""
