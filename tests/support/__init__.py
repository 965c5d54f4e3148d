"""Shared test support: the event factory, Dagster resources, waiting, a real SMTP server, the real receiver."""
