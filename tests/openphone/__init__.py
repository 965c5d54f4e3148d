"""Tests of the OpenPhone client, payload parsing and signature verification over real HTTP."""
