"""Tests of the webhook health probe: send, round trip, timeouts, outages, history."""
