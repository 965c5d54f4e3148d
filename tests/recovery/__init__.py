"""Tests of error recovery: the retry queue, sweeps and their triggers, replay, the failure monitor."""
