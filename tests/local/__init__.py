"""Tests of the dev-only openphone_local package."""
