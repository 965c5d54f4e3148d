"""The retry sweep as a Dagster job, with its 5-minute safety-net schedule.

The sweep is started by `retry_sweep_sensor` within ~30 s of a row falling due; the schedule only
catches what the sensor could not (a stopped sensor, events orphaned by a crashed receiver).
"""

import dagster as dg

from openphone_pipelines import recovery
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.settings import load_settings

SWEEP_JOB_NAME = "retry_sweep_job"


class SweepConfig(dg.Config):
    batch_size: int = 100
    max_rows: int = 0  # 0 = drain everything due
    adopt_after_seconds: int = recovery.ADOPT_AFTER_SECONDS


@dg.op(description="Claim due rows (SKIP LOCKED) and reprocess them; alert on new dead letters.")
def sweep_retry_queue(context: dg.OpExecutionContext, config: SweepConfig, app_db: AppDatabase,
                      notifier: NotifierResource) -> dg.Output[dict]:
    counts = recovery.sweep_due_retries(app_db.engine, batch_size=config.batch_size,
                                        max_rows=config.max_rows or None,
                                        adopt_after_seconds=config.adopt_after_seconds)
    recovery.alert_dead_letters(app_db.engine, notifier.channel(), counts, alert_key=f"retry:dead:{context.run_id}",
                                context_url=notifier.run_url(context.run_id))
    context.log.info(f"retry sweep: {counts.as_metadata()}")
    return dg.Output(counts.as_metadata(), metadata=counts.as_metadata())


@dg.job(name=SWEEP_JOB_NAME,
        description="Reprocess due rows of failed_webhook_queue (backoff 1, 2, 4, 8, 16 min; then dead).")
def retry_sweep_job() -> None:
    sweep_retry_queue()


def _sweep_if_due(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
    with app_db.engine.connect() as conn:
        due = recovery.due_retry_work(conn)
        orphans = recovery.orphaned_event_count(conn)
    if due is None and not orphans:
        return dg.SkipReason("nothing due and no orphaned events")
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M") if context.scheduled_execution_time else "now"
    return dg.RunRequest(run_key=f"retry-sweep-schedule-{tick}",
                         tags={"openphone/due_rows": str(due.due_rows if due else 0),
                               "openphone/orphans": str(orphans)})


retry_sweep_schedule = utc_schedule(
    name="retry_sweep_schedule", cron=load_settings().retry_sweep_cron, job=retry_sweep_job, evaluate=_sweep_if_due,
    description="Safety net (every 5 min by default): sweep when rows are due or events were orphaned; else skip.",
)


defs = dg.Definitions(jobs=[retry_sweep_job], schedules=[retry_sweep_schedule])
