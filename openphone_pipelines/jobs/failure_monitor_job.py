"""Hourly: the real webhook failure rate and new dead letters, with an alert above the thresholds."""

from datetime import UTC, datetime

import dagster as dg

from openphone_pipelines import recovery
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.settings import env_float, env_int


def monitor_thresholds_from_env() -> recovery.MonitorThresholds:
    return recovery.MonitorThresholds(
        failure_rate=env_float("OPENPHONE_ALERT_FAILURE_RATE", 0.05, minimum=0.0),
        dead_letters=env_int("OPENPHONE_ALERT_DEAD_LETTERS", 1, minimum=1),
    )


@dg.op(description="Failure rate (failed ÷ received, last hour) and new dead letters; alert above thresholds.")
def monitor_webhook_failures(context: dg.OpExecutionContext, app_db: AppDatabase,
                             notifier: NotifierResource) -> dg.Output[dict]:
    window_key = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    stats, sent = recovery.monitor_failures(app_db.engine, notifier.channel(), monitor_thresholds_from_env(),
                                            window_key=window_key, context_url=notifier.run_url(context.run_id))
    metadata = {
        "events_last_hour": stats.events,
        "failed_last_hour": stats.failed,
        "failure_rate": dg.MetadataValue.float(stats.rate),
        "new_dead_letters": stats.new_dead,
        "alerts_sent": ", ".join(sent) or "none",
        **{f"queue_{k}": v for k, v in stats.queue.items()},
    }
    return dg.Output({"rate": stats.rate, "new_dead": stats.new_dead, "alerts": sent}, metadata=metadata)


@dg.job(description="Hourly: real webhook failure rate and new dead letters, with alerts.")
def webhook_failure_monitor_job() -> None:
    monitor_webhook_failures()


webhook_failure_monitor_schedule = dg.ScheduleDefinition(
    name="webhook_failure_monitor_schedule",
    job=webhook_failure_monitor_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly (UTC): failure-rate and dead-letter alerts.",
)

defs = dg.Definitions(jobs=[webhook_failure_monitor_job], schedules=[webhook_failure_monitor_schedule])
