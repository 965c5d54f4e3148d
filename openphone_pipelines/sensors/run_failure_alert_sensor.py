"""Emails once per failed run of this code location, except runs already covered by a check alert."""

import dagster as dg

from openphone_pipelines import reporting
from openphone_pipelines.alerting.delivery import Alert, send_alert_once
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.sensors.check_records import failed_only_by_blocking_checks

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _partitions(tags: dict[str, str]) -> str:
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    return f"{tags.get(RANGE_START)} .. {tags.get(RANGE_END)}" if tags.get(RANGE_START) else "-"


@dg.run_failure_sensor(
    name="openphone_run_failure_alerts",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Emails once per failed run of this code location.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, notifier: NotifierResource, app_db: AppDatabase) -> None:
    """Always returns None (a sensor that sometimes skips can trip dagster-io/dagster#17359).

    A run failed only by a blocking check is left to the check sensor, which already emails that
    evaluation with its figures: one incident, one email."""
    run = context.dagster_run
    if failed_only_by_blocking_checks(context.get_step_failure_events()):
        context.log.info(f"run {run.run_id} failed by a blocking check; the check alert covers it")
        return
    subject, body = reporting.run_failure_alert(
        job_name=run.job_name, run_id=run.run_id, partitions=_partitions(run.tags),
        error=context.failure_event.message if context.failure_event else "run failed",
        run_url=notifier.run_url(run.run_id),
    )
    send_alert_once(app_db.engine, notifier.channel(), Alert(f"run-failure:{run.run_id}", "run_failure", subject, body))


defs = dg.Definitions(sensors=[run_failure_alerts])
