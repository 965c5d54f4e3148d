"""Helpers for the sandbox suite: the sandbox's fixed clock (the webhook endpoint is
`openphone_sandbox.testing.WebhookSink`)."""

FIXED_NOW = "2026-03-10T12:00:00Z"
