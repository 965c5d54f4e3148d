"""Manual replay (or discard) of failed webhooks from the Launchpad; the CLI does the same directly."""

import dagster as dg

from openphone_pipelines import recovery, reporting
from openphone_pipelines.resources import AppDatabase
from openphone_pipelines.store import retry_queue


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
    received_from = recovery.parse_when(config.received_from)
    received_to = recovery.parse_when(config.received_to)
    if not (config.queue_ids or received_from or received_to or config.all_dead):
        raise dg.Failure("replay needs queue_ids, received_from/received_to, or all_dead: true")
    result = recovery.replay(app_db.engine, queue_ids=config.queue_ids or None, received_from=received_from,
                             received_to=received_to, all_dead=config.all_dead)
    summary = {"reset": len(result.reset_ids), "resolved": len(result.resolved),
               "unresolved": len(result.unresolved)}
    context.log.info(f"replay: {summary}")
    return dg.Output(summary, metadata={**summary, "rows": dg.MetadataValue.md(reporting.queue_rows_markdown(result.rows))})


@dg.job(description="Manual replay of failed webhooks by queue id, time range or all dead (Launchpad).")
def replay_failed_webhooks_job() -> None:
    replay_failed_webhooks()


defs = dg.Definitions(jobs=[replay_failed_webhooks_job])
