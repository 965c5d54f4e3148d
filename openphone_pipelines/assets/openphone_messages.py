"""The daily reconciliation asset `openphone_messages`, its five integrity checks and its schedule.

The checks are `check_specs` of the asset, evaluated inside it right after the walk for exactly the
partitions of the run (a ranged backfill run checks its whole range; the partition keys are in each
result's metadata). Completeness is blocking, so a day with a hole fails its run. The same five
checks also run weekly (weekly_integrity.py) through `check_results`. The walk and the invariants
live in openphone_pipelines/reconciliation.py and integrity.py; this module is the Dagster shell.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine

from openphone_pipelines import integrity, reporting
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.reconciliation import reconcile_window
from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.resources.openphone_api import OpenPhoneResource
from openphone_pipelines.settings import load_settings

SETTINGS = load_settings()

ASSET_NAME = "openphone_messages"
POOL = "openphone_api"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.reconcile_start_date.isoformat(),
    end_offset=1,  # today's in-progress partition exists (and can be reconciled so far)
    timezone="UTC",
)


class ReconcileConfig(dg.Config):
    """Per-run tunables of the walk and its checks; the defaults come from the settings."""

    overlap_minutes: int = Field(SETTINGS.reconcile_overlap_minutes, ge=0, description=(
        "How far each API query window is widened on both sides (OPENPHONE_RECONCILE_OVERLAP_MINUTES)."))
    settle_after_minutes: int = Field(SETTINGS.settle_after_minutes, ge=0, description=(
        "An outgoing message still queued/sent this long after creation is re-polled "
        "(OPENPHONE_SETTLE_AFTER_MINUTES)."))
    coverage_min: float = Field(SETTINGS.webhook_coverage_min, ge=0.0, description=(
        "Webhook coverage below this warns (OPENPHONE_WEBHOOK_COVERAGE_MIN)."))

    @property
    def overlap(self) -> timedelta:
        return timedelta(minutes=self.overlap_minutes)

    @property
    def settle_after(self) -> timedelta:
        return timedelta(minutes=self.settle_after_minutes)


def utc(value: datetime) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)


# ------------------------------------------------------------------------------------ checks


@dataclass(frozen=True)
class CheckWindow:
    """What every check of one run judges: the window, the API's ids for it, and the tunables."""

    engine: Engine
    client: OpenPhoneClient
    start: datetime
    end: datetime
    api_ids: set[str]
    partitions: list[str]
    settle_after: timedelta
    coverage_min: float
    missing_by_line_md: str | None = None  # the weekly run's per-day, per-line table of missing ids


@dataclass(frozen=True)
class Outcome:
    passed: bool
    metadata: dict[str, object]
    description: str | None = None


def _completeness(w: CheckWindow) -> Outcome:
    comp = integrity.completeness(w.engine, w.api_ids, w.start, w.end)
    metadata: dict[str, object] = {
        "api_messages": comp.api_count,
        "stored_messages": comp.stored_count,
        "missing": comp.missing,
        "missing_ids_sample": reporting.joined(comp.missing_ids[: integrity.SAMPLE]),
        "stored_not_listed": comp.extra_count,
    }
    if w.missing_by_line_md:
        metadata["missing_by_day_and_line"] = dg.MetadataValue.md(w.missing_by_line_md)
    failed = f"{comp.missing} message(s) listed by OpenPhone are not stored"
    return Outcome(comp.passed, metadata, None if comp.passed else failed)


def _settled(w: CheckWindow) -> Outcome:
    settled = integrity.settle_statuses(w.client, w.engine, w.start, w.end, settle_after=w.settle_after)
    return Outcome(settled.passed, {
        "polled": settled.polled,
        "repaired_by_poll": settled.repaired,
        "still_unsettled": settled.still_unsettled,
        "not_found": settled.not_found,
        "unsettled_ids_sample": reporting.joined(settled.still_unsettled_ids[: integrity.SAMPLE]),
        "created_before": settled.checked_before.isoformat(),
    })


def _coverage(w: CheckWindow) -> Outcome:
    cov = integrity.webhook_coverage(w.engine, w.start, w.end, threshold=w.coverage_min)
    return Outcome(cov.passed, {
        "coverage": cov.coverage if cov.coverage is not None else dg.MetadataValue.null(),
        "threshold": cov.threshold,
        "first_seen_via_webhook": cov.via_webhook,
        "missed_by_webhooks": cov.via_reconciliation,
        "first_seen_via_send": cov.via_send,
        "by_day": dg.MetadataValue.md(reporting.coverage_markdown(cov.by_day)),
    })


def _referential(w: CheckWindow) -> Outcome:
    ref = integrity.referential_integrity(w.engine, w.start, w.end)
    return Outcome(ref.passed, {
        "messages": ref.messages,
        "rows_with_unknown_line": ref.rows_with_unknown_line,
        "rows_with_unknown_conversation": ref.rows_with_unknown_conversation,
        "rows_without_conversation": ref.rows_without_conversation,
        "unknown_lines_sample": reporting.joined(ref.unknown_line_ids),
        "unknown_conversations_sample": reporting.joined(ref.unknown_conversation_ids),
    })


def _pending(w: CheckWindow) -> Outcome:
    pending = integrity.stale_pending_events(w.engine, since=w.start, until=w.end)
    oldest = pending.oldest_received_at
    return Outcome(pending.passed, {
        "stale_pending_events": pending.stale,
        "grace_minutes": int(pending.grace.total_seconds() // 60),
        "oldest_received_at": oldest.isoformat() if oldest else "-",
        "event_ids_sample": reporting.joined(pending.sample_event_ids),
    })


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: dg.AssetCheckSeverity
    evaluate: Callable[[CheckWindow], Outcome]


CHECKS = (
    Check("completeness", "Every message id the API lists for the day is in `messages`.",
          dg.AssetCheckSeverity.ERROR, _completeness),
    Check("settled_statuses", "Outgoing messages still queued/sent hours later are re-polled; warns if still "
          "unsettled.", dg.AssetCheckSeverity.WARN, _settled),
    Check("webhook_coverage", "Share of the day's messages first seen via webhook (measured webhook reliability).",
          dg.AssetCheckSeverity.WARN, _coverage),
    Check("referential_integrity", "Every stored message names a known line and conversation.",
          dg.AssetCheckSeverity.ERROR, _referential),
    Check("webhook_events_processed", "No webhook event stays `pending` (without a processing outcome) for more "
          "than 15 minutes.", dg.AssetCheckSeverity.ERROR, _pending),
)
BLOCKING = "completeness"


def check_specs(asset: str, prefix: str = "") -> list[dg.AssetCheckSpec]:
    """The five checks as specs of `asset`; only the daily completeness check blocks."""
    return [dg.AssetCheckSpec(prefix + c.name, asset=asset, description=c.description,
                              blocking=c.name == BLOCKING and not prefix) for c in CHECKS]


def check_results(window: CheckWindow, *, prefix: str = "",
                  asset_key: dg.AssetKey | None = None) -> list[dg.AssetCheckResult]:
    """The five invariants over the window, as check results (shared by the asset and the weekly job)."""
    base = {"partitions": ", ".join(window.partitions), "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat()}
    results = []
    for check in CHECKS:
        outcome = check.evaluate(window)
        results.append(dg.AssetCheckResult(
            check_name=prefix + check.name, asset_key=asset_key, passed=outcome.passed, severity=check.severity,
            metadata={**base, **outcome.metadata}, description=outcome.description,
        ))
    return results


# ------------------------------------------------------------------------------------ the asset


@dg.asset(
    name=ASSET_NAME,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
    pool=POOL,
    group_name="reconciliation",
    kinds={"postgres", "python"},
    check_specs=check_specs(ASSET_NAME),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description=(
        "Every OpenPhone message of the UTC day, reconciled against the API: inserts what the webhooks "
        "missed (first_seen_via=reconciliation) and repairs stale statuses. Writes Postgres directly."
    ),
)
def openphone_messages(
    context: dg.AssetExecutionContext, config: ReconcileConfig, app_db: AppDatabase, openphone: OpenPhoneResource
) -> dg.MaterializeResult:
    """Range-safe: one walk covers every partition of the run (never `context.partition_key`)."""
    window = context.partition_time_window
    start, end = utc(window.start), utc(window.end)
    keys = list(context.partition_keys)
    context.log.info(f"reconciling {len(keys)} partition(s) {keys[0]} .. {keys[-1]}")
    engine = app_db.engine
    with openphone.client() as client:
        report = reconcile_window(client, engine, start, end, overlap=config.overlap,
                                  probe_line_id=SETTINGS.probe_line_id, progress=context.log.info)
        checks = check_results(CheckWindow(engine, client, start, end, report.api_ids, keys,
                                           settle_after=config.settle_after, coverage_min=config.coverage_min))
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
        "server_errors_5xx": report.server_errors,
        "retries": report.retries,
        "duration_s": round(report.duration_s, 2),
        "per_day": dg.MetadataValue.md(reporting.per_day_markdown(report.days)),
        "misses": dg.MetadataValue.md(reporting.misses_markdown(report.misses)),
        "dagster/row_count": report.messages_seen,
    }
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


reconciliation_job = dg.define_asset_job(
    "openphone_reconciliation_job",
    selection=dg.AssetSelection.assets(openphone_messages),
    description="Reconcile OpenPhone messages for the selected day(s), with the per-partition checks.",
)


def _last_two_days(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """One ranged run over the two latest complete days (48-hour lookback for late items). The run
    key names the tick, so a compressed cadence launches a run per tick, not one per day."""
    tick = utc(context.scheduled_execution_time or datetime.now(UTC))
    first, last = (tick.date() - timedelta(days=2)).isoformat(), (tick.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(
        run_key=f"reconcile-{first}-{last}-{tick:%Y%m%dT%H%M}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
    )


reconciliation_daily_schedule = utc_schedule(
    name="reconciliation_daily_schedule", cron=SETTINGS.reconcile_cron, job=reconciliation_job,
    evaluate=_last_two_days, description="Daily (02:00 UTC by default): reconcile the two latest complete days.",
)

defs = dg.Definitions(assets=[openphone_messages], jobs=[reconciliation_job],
                      schedules=[reconciliation_daily_schedule])
