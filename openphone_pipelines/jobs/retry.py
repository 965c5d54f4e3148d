"""Error recovery as Dagster jobs: the retry sweep (with its 5-minute safety-net schedule), manual
replay from the Launchpad, and the hourly failure-rate monitor.

The sweep is started by `retry_sweep_sensor` within ~30 s of a row falling due; the schedule only
catches what the sensor could not (a stopped sensor, events orphaned by a crashed receiver).
"""

from datetime import UTC, datetime

import dagster as dg

from openphone_pipelines import health
from openphone_pipelines.resources import AppDatabase, MailerResource
from openphone_pipelines.store import retry_queue
from openphone_pipelines.store.processing import SweepCounts, sweep_due_retries

SWEEP_JOB_NAME = "retry_sweep_job"


class SweepConfig(dg.Config):
    batch_size: int = 100
    max_rows: int = 0  # 0 = drain everything due
    adopt_after_seconds: int = health.ADOPT_AFTER_SECONDS


def _counts_metadata(counts: SweepCounts) -> dict[str, int]:
    return {"claimed": counts.claimed, "resolved": counts.resolved, "retried_later": counts.retried_later,
            "dead": counts.dead, "adopted": counts.adopted}


@dg.op(description="Claim due rows (SKIP LOCKED) and reprocess them; alert on new dead letters.")
def sweep_retry_queue(context: dg.OpExecutionContext, config: SweepConfig, app_db: AppDatabase,
                      mailer: MailerResource) -> dg.Output[dict]:
    counts = sweep_due_retries(app_db.engine, batch_size=config.batch_size, max_rows=config.max_rows or None,
                               adopt_after_seconds=config.adopt_after_seconds)
    health.alert_dead_letters(app_db.engine, mailer.settings(), counts, alert_key=f"retry:dead:{context.run_id}",
                              context_url=mailer.run_url(context.run_id))
    context.log.info(f"retry sweep: {_counts_metadata(counts)}")
    return dg.Output(_counts_metadata(counts), metadata=_counts_metadata(counts))


@dg.job(description="Reprocess due rows of failed_webhook_queue (backoff 1, 2, 4, 8, 16 min; then dead).")
def retry_sweep_job() -> None:
    sweep_retry_queue()


@dg.schedule(
    name="retry_sweep_schedule",
    job=retry_sweep_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Safety net every 5 min: sweep when rows are due or events were orphaned; otherwise skip.",
)
def retry_sweep_schedule(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
    with app_db.engine.connect() as conn:
        due = health.due_retry_work(conn)
        orphans = health.orphaned_event_count(conn)
    if due is None and not orphans:
        return dg.SkipReason("nothing due and no orphaned events")
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M") if context.scheduled_execution_time else "now"
    return dg.RunRequest(run_key=f"retry-sweep-schedule-{tick}",
                         tags={"openphone/due_rows": str(due.due_rows if due else 0),
                               "openphone/orphans": str(orphans)})


# ------------------------------------------------------------------------------------ replay


class ReplayConfig(dg.Config):
    """Pick rows by queue id, by the events' receive time (ISO 8601, UTC when naive), or all dead.

    `discard_ids` + `discard_note` give up on rows by hand instead (recorded on the row)."""

    queue_ids: list[int] = []
    received_from: str = ""
    received_to: str = ""
    all_dead: bool = False
    discard_ids: list[int] = []
    discard_note: str = ""


@dg.op(description="Reset the chosen queue rows and reprocess them now (resolved rows: no-op); or discard.")
def replay_failed_webhooks(context: dg.OpExecutionContext, config: ReplayConfig,
                           app_db: AppDatabase) -> dg.Output[dict]:
    if config.discard_ids:
        if not config.discard_note.strip():
            raise dg.Failure("discard needs discard_note (why these rows are given up)")
        n = retry_queue.discard(app_db.engine, config.discard_ids, config.discard_note.strip())
        context.log.info(f"discarded {n} row(s)")
        return dg.Output({"discarded": n}, metadata={"discarded": n})
    received_from = health.parse_when(config.received_from)
    received_to = health.parse_when(config.received_to)
    if not (config.queue_ids or received_from or received_to or config.all_dead):
        raise dg.Failure("replay needs queue_ids, received_from/received_to, or all_dead: true")
    result = health.replay(app_db.engine, queue_ids=config.queue_ids or None, received_from=received_from,
                           received_to=received_to, all_dead=config.all_dead)
    table = ["| queue id | event id | status | attempts | last error |", "|---:|---:|---|---:|---|"]
    table += [f"| {r.id} | {r.webhook_event_id} | {r.status} | {r.attempts} | {(r.last_error or '')[:80]} |"
              for r in result.rows[:200]]
    summary = {"reset": len(result.reset_ids), "resolved": len(result.resolved),
               "unresolved": len(result.unresolved)}
    context.log.info(f"replay: {summary}")
    return dg.Output(summary, metadata={**summary, "rows": dg.MetadataValue.md("\n".join(table))})


@dg.job(description="Manual replay of failed webhooks by queue id, time range or all dead (Launchpad).")
def replay_failed_webhooks_job() -> None:
    replay_failed_webhooks()


# ------------------------------------------------------------------------------------ monitor


@dg.op(description="Failure rate (failed ÷ received, last hour) and new dead letters; email above thresholds.")
def monitor_webhook_failures(context: dg.OpExecutionContext, app_db: AppDatabase,
                             mailer: MailerResource) -> dg.Output[dict]:
    thresholds = health.monitor_thresholds_from_env()
    window_key = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    stats, sent = health.monitor_failures(app_db.engine, mailer.settings(), thresholds, window_key=window_key,
                                          context_url=mailer.run_url(context.run_id))
    metadata = {
        "events_last_hour": stats.events,
        "failed_last_hour": stats.failed,
        "failure_rate": dg.MetadataValue.float(stats.rate),
        "new_dead_letters": stats.new_dead,
        "alerts_sent": ", ".join(sent) or "none",
        **{f"queue_{k}": v for k, v in stats.queue.items()},
    }
    return dg.Output({"rate": stats.rate, "new_dead": stats.new_dead, "alerts": sent}, metadata=metadata)


@dg.job(description="Hourly: real webhook failure rate and new dead letters, with email alerts.")
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

defs = dg.Definitions(
    jobs=[retry_sweep_job, replay_failed_webhooks_job, webhook_failure_monitor_job],
    schedules=[retry_sweep_schedule, webhook_failure_monitor_schedule],
)
