"""Retention: probes are kept 30 days (daily 03:00 UTC), resolved queue rows 7 days (Sundays 04:00
UTC). Dead and discarded rows are never deleted here: they wait for a human."""

import dagster as dg

from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.health_probe import PROBE_RETENTION_DAYS
from openphone_pipelines.recovery import RESOLVED_RETENTION_DAYS
from openphone_pipelines.resources import AppDatabase
from openphone_pipelines.settings import load_settings
from openphone_pipelines.store import health_checks, retry_queue

SETTINGS = load_settings()


class RetentionConfig(dg.Config):
    days: int


@dg.op(description="Delete webhook_health_checks rows older than `days` (default 30).")
def delete_old_health_probes(context: dg.OpExecutionContext, config: RetentionConfig,
                             app_db: AppDatabase) -> dg.Output[int]:
    deleted = health_checks.delete_probes_older_than(app_db.engine, config.days)
    return dg.Output(deleted, metadata={"deleted": deleted, "retention_days": config.days})


@dg.op(description="Delete resolved failed_webhook_queue rows older than `days` (default 7).")
def delete_resolved_retries(context: dg.OpExecutionContext, config: RetentionConfig,
                            app_db: AppDatabase) -> dg.Output[int]:
    deleted = retry_queue.delete_resolved_older_than(app_db.engine, config.days)
    return dg.Output(deleted, metadata={"deleted": deleted, "retention_days": config.days})


@dg.job(
    description="Delete health probes older than 30 days.",
    config={"ops": {"delete_old_health_probes": {"config": {"days": PROBE_RETENTION_DAYS}}}},
)
def health_probe_cleanup_job() -> None:
    delete_old_health_probes()


@dg.job(
    description="Delete resolved retry-queue rows older than 7 days (dead rows stay).",
    config={"ops": {"delete_resolved_retries": {"config": {"days": RESOLVED_RETENTION_DAYS}}}},
)
def retry_queue_cleanup_job() -> None:
    delete_resolved_retries()


health_probe_cleanup_schedule = utc_schedule(
    name="health_probe_cleanup_schedule", cron=SETTINGS.probe_retention_cron, job=health_probe_cleanup_job,
    description="Daily (03:00 UTC by default): delete health probes older than 30 days.",
)

retry_queue_cleanup_schedule = utc_schedule(
    name="retry_queue_cleanup_schedule", cron=SETTINGS.retry_retention_cron, job=retry_queue_cleanup_job,
    description="Weekly (Sundays 04:00 UTC by default): delete resolved retry-queue rows older than 7 days.",
)

defs = dg.Definitions(
    jobs=[health_probe_cleanup_job, retry_queue_cleanup_job],
    schedules=[health_probe_cleanup_schedule, retry_queue_cleanup_schedule],
)
