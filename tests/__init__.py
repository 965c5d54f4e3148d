"""The test suite: real Postgres, the sandbox over HTTP, real SMTP; shared helpers in tests/support/."""
