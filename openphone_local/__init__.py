"""Dev-only tools: the demo and the embedded PostgreSQL it and the tests use. Production never imports this."""
