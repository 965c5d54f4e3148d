"""Tests of reconciliation, its integrity checks, alerts and the backfill command, against the sandbox."""
