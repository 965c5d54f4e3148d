"""Tests of the OpenPhone sandbox: its API contract, signed webhooks, faults and CLI."""
