"""Tests of the store: migrations, the forward-only upsert, and what pins Python to the schema."""
