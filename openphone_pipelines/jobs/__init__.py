"""Jobs and their schedules: health probe, retry sweep, replay and cleanups."""

import dagster as dg

from openphone_pipelines.jobs import cleanup, health, retry

defs = dg.Definitions.merge(health.defs, retry.defs, cleanup.defs)
