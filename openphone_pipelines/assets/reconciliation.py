"""The daily reconciliation asset, its integrity checks, and their schedules (a thin Dagster shell).

Layout of the checks (reference/dagster-notes.md §2.3):
- `openphone_messages` carries five `check_specs`, evaluated inside the asset right after the
  walk for exactly the partitions of the run (a ranged backfill run checks its whole range;
  the partition keys are in each result's metadata). Completeness is blocking ERROR.
- `openphone_weekly_integrity` is a `multi_asset_check` with the same five invariants over the
  last 7 complete UTC days, on the non-materialisable asset `openphone_messages_weekly` (so that
  asset backfills, which run every check of their asset, never run it), in its own checks-only
  job on a Sunday 03:00 UTC schedule. Its
  completeness re-lists the API read-only, so a row deleted after reconciliation is caught.
The walk and the computations live in openphone_pipelines.reconciliation / .integrity.
"""


import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from openphone_pipelines import integrity
from openphone_pipelines.reconciliation import (
    ReconcileReport,
    api_message_ids,
    misses_markdown,
    reconcile_window,
)
from openphone_pipelines.resources.app_db import AppDatabase
from openphone_pipelines.resources.openphone import OpenPhoneResource
from openphone_pipelines.settings import env_float, env_int, env_str
from openphone_pipelines.store.messages import message_ids_between

ASSET_NAME = "openphone_messages"
WEEKLY_ASSET_NAME = "openphone_messages_weekly"
POOL = "openphone_api"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

COMPLETENESS = "completeness"
SETTLED = "settled_statuses"
COVERAGE = "webhook_coverage"
REFERENTIAL = "referential_integrity"
PENDING = "webhook_events_processed"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("OPENPHONE_RECONCILE_START_DATE") or "2026-01-01",
    end_offset=1,  # today's in-progress partition exists (and can be reconciled so far)
    timezone="UTC",
)


def _probe_line() -> str | None:
    return env_str("OPENPHONE_PROBE_LINE_ID")


def _coverage_min() -> float:
    return env_float("OPENPHONE_WEBHOOK_COVERAGE_MIN", integrity.DEFAULT_COVERAGE_MIN, minimum=0.0)


def _settle_after() -> timedelta:
    return timedelta(minutes=env_int("OPENPHONE_SETTLE_AFTER_MINUTES", 120, minimum=0))


def _overlap() -> timedelta:
    return timedelta(minutes=env_int("OPENPHONE_RECONCILE_OVERLAP_MINUTES", 10, minimum=0))


def _utc(value: datetime) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


_CHECK_TEXT = {
    COMPLETENESS: "Every message id the API lists for the day is in `messages`.",
    SETTLED: "Outgoing messages still queued/sent hours later are re-polled; warns if still unsettled.",
    COVERAGE: "Share of the day's messages first seen via webhook (measured webhook reliability).",
    REFERENTIAL: "Every stored message names a known line and conversation.",
    PENDING: "No webhook event stays `pending` (without a processing outcome) for more than 15 minutes.",
}


def _specs(asset: str, prefix: str = "") -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(prefix + name, asset=asset, description=desc, blocking=(name == COMPLETENESS and not prefix))
        for name, desc in _CHECK_TEXT.items()
    ]


def _check_results(
    engine,
    client,
    start: datetime,
    end: datetime,
    api_ids: set[str],
    partitions: list[str],
    *,
    prefix: str = "",
    asset_key: dg.AssetKey | None = None,
    extra_completeness_md: str | None = None,
) -> list[dg.AssetCheckResult]:
    """The five invariants over [start, end), as check results (shared by asset and weekly job)."""
    window = {"partitions": ", ".join(partitions), "window_start": start.isoformat(), "window_end": end.isoformat()}
    results: list[dg.AssetCheckResult] = []

    comp = integrity.completeness(engine, api_ids, start, end)
    meta = {
        **window,
        "api_messages": comp.api_count,
        "stored_messages": comp.stored_count,
        "missing": comp.missing,
        "missing_ids_sample": ", ".join(comp.missing_ids[: integrity.SAMPLE]) or "-",
        "stored_not_listed": comp.extra_count,
    }
    if extra_completeness_md:
        meta["missing_by_day_and_line"] = dg.MetadataValue.md(extra_completeness_md)
    results.append(
        dg.AssetCheckResult(
            check_name=prefix + COMPLETENESS, asset_key=asset_key, passed=comp.passed,
            severity=dg.AssetCheckSeverity.ERROR, metadata=meta,
            description=None if comp.passed else f"{comp.missing} message(s) listed by OpenPhone are not stored",
        )
    )

    settled = integrity.settle_statuses(client, engine, start, end, settle_after=_settle_after())
    results.append(
        dg.AssetCheckResult(
            check_name=prefix + SETTLED, asset_key=asset_key, passed=settled.passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                **window,
                "polled": settled.polled,
                "repaired_by_poll": settled.repaired,
                "still_unsettled": settled.still_unsettled,
                "not_found": settled.not_found,
                "unsettled_ids_sample": ", ".join(settled.still_unsettled_ids[: integrity.SAMPLE]) or "-",
                "created_before": settled.checked_before.isoformat(),
            },
        )
    )

    cov = integrity.webhook_coverage(engine, start, end, threshold=_coverage_min())
    results.append(
        dg.AssetCheckResult(
            check_name=prefix + COVERAGE, asset_key=asset_key, passed=cov.passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                **window,
                "coverage": cov.coverage if cov.coverage is not None else dg.MetadataValue.null(),
                "threshold": cov.threshold,
                "first_seen_via_webhook": cov.via_webhook,
                "missed_by_webhooks": cov.via_reconciliation,
                "first_seen_via_send": cov.via_send,
                "by_day": dg.MetadataValue.md(cov.markdown()),
            },
        )
    )

    ref = integrity.referential_integrity(engine, start, end)
    results.append(
        dg.AssetCheckResult(
            check_name=prefix + REFERENTIAL, asset_key=asset_key, passed=ref.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                **window,
                "messages": ref.messages,
                "rows_with_unknown_line": ref.rows_with_unknown_line,
                "rows_with_unknown_conversation": ref.rows_with_unknown_conversation,
                "rows_without_conversation": ref.rows_without_conversation,
                "unknown_lines_sample": ", ".join(ref.unknown_line_ids) or "-",
                "unknown_conversations_sample": ", ".join(ref.unknown_conversation_ids) or "-",
            },
        )
    )

    pending = integrity.stale_pending_events(engine, since=start, until=end)
    results.append(
        dg.AssetCheckResult(
            check_name=prefix + PENDING, asset_key=asset_key, passed=pending.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                **window,
                "stale_pending_events": pending.stale,
                "grace_minutes": int(pending.grace.total_seconds() // 60),
                "oldest_received_at": pending.oldest_received_at.isoformat() if pending.oldest_received_at else "-",
                "event_ids_sample": ", ".join(pending.sample_event_ids) or "-",
            },
        )
    )
    return results


def _per_day_markdown(report: ReconcileReport) -> str:
    rows = ["| day | seen | inserted (missed) | repaired | unchanged | probes skipped |", "|---|---:|---:|---:|---:|---:|"]
    for day, f in sorted(report.days.items()):
        rows.append(f"| {day} | {f.messages_seen} | {f.inserted} | {f.repaired} | {f.unchanged} | {f.probes_skipped} |")
    return "\n".join(rows)


@dg.asset(
    name=ASSET_NAME,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
    pool=POOL,
    group_name="reconciliation",
    kinds={"postgres", "python"},
    check_specs=_specs(ASSET_NAME),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description=(
        "Every OpenPhone message of the UTC day, reconciled against the API: inserts what the webhooks "
        "missed (first_seen_via=reconciliation) and repairs stale statuses. Writes Postgres directly."
    ),
)
def openphone_messages(
    context: dg.AssetExecutionContext, app_db: AppDatabase, openphone: OpenPhoneResource
) -> dg.MaterializeResult:
    """Range-safe: one walk covers every partition of the run (never `context.partition_key`)."""
    window = context.partition_time_window
    start, end = _utc(window.start), _utc(window.end)
    keys = list(context.partition_keys)
    context.log.info(f"reconciling {len(keys)} partition(s) {keys[0]} .. {keys[-1]}")
    engine = app_db.engine
    with openphone.client() as client:
        report = reconcile_window(
            client, engine, start, end, overlap=_overlap(), probe_line_id=_probe_line(), progress=context.log.info
        )
        checks = _check_results(engine, client, start, end, report.api_ids, keys)
    metadata = {
        "partitions": ", ".join(keys),
        "api_calls": report.api_calls,
        "pages": report.pages,
        "lines_scanned": report.lines_scanned,
        "conversations_scanned": report.conversations_scanned,
        "messages_seen": report.messages_seen,
        "inserted_missed_by_webhooks": report.inserted,
        "statuses_repaired": report.repaired,
        "unchanged": report.unchanged,
        "probes_skipped": report.probes_skipped,
        "rate_limited_429": report.rate_limited,
        "retries": report.retries,
        "duration_s": round(report.duration_s, 2),
        "per_day": dg.MetadataValue.md(_per_day_markdown(report)),
        "misses": dg.MetadataValue.md(misses_markdown(report.misses)),
        "dagster/row_count": report.messages_seen,
    }
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


reconciliation_job = dg.define_asset_job(
    "openphone_reconciliation_job",
    selection=dg.AssetSelection.assets(openphone_messages),
    description="Reconcile OpenPhone messages for the selected day(s), with the per-partition checks.",
)


@dg.schedule(
    cron_schedule="0 2 * * *",
    job=reconciliation_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def reconciliation_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """02:00 UTC: one ranged run over the two latest complete days (48-hour lookback for late items)."""
    tick = context.scheduled_execution_time or datetime.now(UTC)
    today = _utc(tick).date()
    first, last = (today - timedelta(days=2)).isoformat(), (today - timedelta(days=1)).isoformat()
    return dg.RunRequest(
        run_key=f"reconcile-{first}-{last}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
    )


class WeeklyIntegrityConfig(dg.Config):
    """Window of the integrity run: `days` complete UTC days ending before `end_date` (default today)."""

    days: int = 7
    end_date: str | None = None


# The weekly checks hang on their own (non-materialisable) asset: a backfill of the daily asset
# runs every check of that asset key, and must not re-walk 7 days of API in every backfill run.
weekly_window = dg.AssetSpec(
    WEEKLY_ASSET_NAME,
    deps=[ASSET_NAME],
    group_name="reconciliation",
    kinds={"postgres"},
    description="The last 7 complete UTC days of the messages table, as the weekly integrity checks judge it.",
)


@dg.multi_asset_check(
    name="openphone_weekly_integrity",
    specs=_specs(WEEKLY_ASSET_NAME, prefix="weekly_"),
    pool=POOL,
    description="The five reconciliation invariants over the last 7 complete UTC days (read-only API walk).",
)
def weekly_integrity(
    context: dg.AssetCheckExecutionContext,
    config: WeeklyIntegrityConfig,
    app_db: AppDatabase,
    openphone: OpenPhoneResource,
):
    end_day = (
        datetime.fromisoformat(config.end_date).date() if config.end_date else datetime.now(UTC).date()
    )
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC)
    start = end - timedelta(days=config.days)
    days = [(start + timedelta(days=i)).date().isoformat() for i in range(config.days)]
    context.log.info(f"integrity over {days[0]} .. {days[-1]}")
    engine = app_db.engine
    with openphone.client() as client:
        index = api_message_ids(
            client, engine, start, end, overlap=_overlap(), probe_line_id=_probe_line(), progress=context.log.info
        )
        missing = sorted(set(index) - message_ids_between(engine, start, end))
        table = integrity.frame_markdown(integrity.missing_by_line(index, missing))
        yield from _check_results(
            engine, client, start, end, set(index), days,
            prefix="weekly_", asset_key=weekly_window.key, extra_completeness_md=table,
        )


weekly_integrity_job = dg.define_asset_job(
    "openphone_weekly_integrity_job",
    selection=dg.AssetSelection.checks(weekly_integrity),
    description="Checks only: the reconciliation invariants over the last 7 days.",
)

weekly_integrity_schedule = dg.ScheduleDefinition(
    name="openphone_weekly_integrity_schedule",
    job=weekly_integrity_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

MONITORED_CHECK_KEYS = [*openphone_messages.check_keys, *weekly_integrity.check_keys]

defs = dg.Definitions(
    assets=[openphone_messages, weekly_window],
    asset_checks=[weekly_integrity],
    jobs=[reconciliation_job, weekly_integrity_job],
    schedules=[reconciliation_daily_schedule, weekly_integrity_schedule],
)
