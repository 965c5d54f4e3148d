"""Hourly: the real webhook failure rate and new dead letters, with an alert above the thresholds."""

from datetime import UTC, datetime

import dagster as dg

from openphone_pipelines import recovery
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.settings import load_settings


@dg.op(description="Failure rate (failed ÷ received, last hour) and new dead letters; alert above thresholds.")
def monitor_webhook_failures(context: dg.OpExecutionContext, app_db: AppDatabase,
                             notifier: NotifierResource) -> dg.Output[dict]:
    settings = load_settings()
    thresholds = recovery.MonitorThresholds(settings.alert_failure_rate, settings.alert_dead_letters)
    window_key = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    stats, sent = recovery.monitor_failures(app_db.engine, notifier.channel(), thresholds,
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


webhook_failure_monitor_schedule = utc_schedule(
    name="webhook_failure_monitor_schedule", cron=load_settings().failure_monitor_cron,
    job=webhook_failure_monitor_job, description="Hourly (UTC) by default: failure-rate and dead-letter alerts.",
)

defs = dg.Definitions(jobs=[webhook_failure_monitor_job], schedules=[webhook_failure_monitor_schedule])
