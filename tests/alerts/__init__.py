"""Tests of alert delivery and of the adapter over Dagster internals that the alert sensors use."""
