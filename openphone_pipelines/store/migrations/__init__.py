"""Alembic migrations of the app database (applied by `openphone-pipelines db upgrade`)."""
