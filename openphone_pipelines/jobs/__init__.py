"""Jobs and their schedules: health probe, retry sweep, replay, failure monitor and retention."""

import dagster as dg

from openphone_pipelines.jobs import (
    failure_monitor_job,
    health_probe_job,
    replay_job,
    retention_jobs,
    retry_sweep_job,
)

defs = dg.Definitions.merge(health_probe_job.defs, retry_sweep_job.defs, replay_job.defs, failure_monitor_job.defs,
                            retention_jobs.defs)
