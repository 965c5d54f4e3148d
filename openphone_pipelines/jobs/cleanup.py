"""Placeholder until this domain lands."""

import dagster as dg

defs = dg.Definitions()
