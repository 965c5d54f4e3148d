"""The reconciliation invariants in plain Python (and pandas), behind the asset checks.

Each function measures one invariant over a UTC window of the app database and returns a small
result object with `passed` and the figures an operator needs in the alert, so the asset, the
weekly checks and the tests all judge data by the same code. Queries are in store/; wording in
reporting.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.errors import OpenPhoneAPIError
from openphone_pipelines.openphone.models import Message
from openphone_pipelines.store.directory import directory_gaps
from openphone_pipelines.store.messages import (
    first_seen_counts,
    message_ids_between,
    unsettled_outgoing_ids,
    upsert_messages,
)
from openphone_pipelines.store.webhook_events import pending_events

DEFAULT_COVERAGE_MIN = 0.95
DEFAULT_SETTLE_AFTER = timedelta(hours=2)
DEFAULT_PENDING_GRACE = timedelta(minutes=15)
SAMPLE = 10  # ids quoted in metadata and alerts


@dataclass
class CompletenessResult:
    """Every id the API lists for the window must be in `messages`."""

    api_count: int
    stored_count: int
    missing_ids: list[str]
    extra_count: int  # stored rows the API did not list (informational: sends after the walk, etc.)

    @property
    def passed(self) -> bool:
        return not self.missing_ids

    @property
    def missing(self) -> int:
        return len(self.missing_ids)


def completeness(engine: Engine, api_ids: Iterable[str], start: datetime, end: datetime) -> CompletenessResult:
    """Compare the API's ids for [start, end) with the stored rows created in the same window."""
    expected = set(api_ids)
    stored = message_ids_between(engine, start, end)
    return CompletenessResult(
        api_count=len(expected),
        stored_count=len(stored),
        missing_ids=sorted(expected - stored),
        extra_count=len(stored - expected),
    )


@dataclass
class SettledResult:
    """Outgoing messages still queued/sent long after creation, re-polled one by one."""

    checked_before: datetime
    polled: int = 0
    repaired: int = 0
    still_unsettled_ids: list[str] = field(default_factory=list)
    not_found: int = 0

    @property
    def passed(self) -> bool:
        return not self.still_unsettled_ids

    @property
    def still_unsettled(self) -> int:
        return len(self.still_unsettled_ids)


def settle_statuses(
    client: OpenPhoneClient,
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    settle_after: timedelta = DEFAULT_SETTLE_AFTER,
    now: datetime | None = None,
) -> SettledResult:
    """Re-poll GET /v1/messages/{id} for stale outgoing rows and upsert what it says.

    Legacy webhooks never report `undelivered` (docs/openphone-api.md, 'Message statuses'), so
    polling is the only way such a row reaches its final status."""
    before = (now or datetime.now(UTC)) - settle_after
    result = SettledResult(checked_before=before)
    stale = unsettled_outgoing_ids(engine, start, end, before)
    fresh: list[Message] = []
    for message_id in stale:
        try:
            fresh.append(client.get_message(message_id))
        except OpenPhoneAPIError as exc:
            if getattr(exc, "status_code", None) == 404:
                result.not_found += 1
                continue
            raise
        result.polled += 1
    if fresh:
        result.repaired = upsert_messages(engine, fresh, via="reconciliation").updated
    result.still_unsettled_ids = unsettled_outgoing_ids(engine, start, end, before)
    return result


@dataclass
class CoverageResult:
    """Share of the window's messages that a webhook delivered first: measured webhook reliability."""

    by_day: pd.DataFrame
    via_webhook: int
    via_reconciliation: int
    via_send: int
    threshold: float

    @property
    def expected(self) -> int:
        """Messages a webhook should have brought (sends are known from the API answer already)."""
        return self.via_webhook + self.via_reconciliation

    @property
    def coverage(self) -> float | None:
        return self.via_webhook / self.expected if self.expected else None

    @property
    def passed(self) -> bool:
        return self.coverage is None or self.coverage >= self.threshold


def webhook_coverage(
    engine: Engine, start: datetime, end: datetime, *, threshold: float = DEFAULT_COVERAGE_MIN
) -> CoverageResult:
    """Count first_seen_via per UTC day of [start, end) (rows inserted by reconciliation were missed)."""
    frame = pd.DataFrame(first_seen_counts(engine, start, end), columns=["day", "via", "n"])
    table = frame.pivot_table(index="day", columns="via", values="n", aggfunc="sum", fill_value=0)
    for via in ("webhook", "reconciliation", "send"):
        if via not in table.columns:
            table[via] = 0
    table = table[["webhook", "reconciliation", "send"]].astype(int)
    denominator = table["webhook"] + table["reconciliation"]
    table["coverage"] = (table["webhook"] / denominator.where(denominator > 0)).astype(float)
    table.index = table.index.map(str)
    return CoverageResult(
        by_day=table,
        via_webhook=int(table["webhook"].sum()),
        via_reconciliation=int(table["reconciliation"].sum()),
        via_send=int(table["send"].sum()),
        threshold=threshold,
    )


@dataclass
class ReferentialResult:
    """Every stored message names a line and a conversation that reconciliation has seen."""

    messages: int
    unknown_line_ids: list[str]
    unknown_conversation_ids: list[str]
    rows_with_unknown_line: int
    rows_with_unknown_conversation: int
    rows_without_conversation: int

    @property
    def passed(self) -> bool:
        return not (self.rows_with_unknown_line or self.rows_with_unknown_conversation)


def referential_integrity(engine: Engine, start: datetime, end: datetime) -> ReferentialResult:
    gaps = directory_gaps(engine, start, end)
    return ReferentialResult(
        messages=gaps.messages,
        unknown_line_ids=[str(line) for line, _n in gaps.unknown_lines[:SAMPLE]],
        unknown_conversation_ids=[conv for conv, _n in gaps.unknown_conversations[:SAMPLE]],
        rows_with_unknown_line=sum(n for _line, n in gaps.unknown_lines),
        rows_with_unknown_conversation=sum(n for _conv, n in gaps.unknown_conversations),
        rows_without_conversation=gaps.without_conversation,
    )


@dataclass
class PendingEventsResult:
    """Webhook events still `pending` (no processing outcome) longer than the grace period."""

    stale: int
    oldest_received_at: datetime | None
    sample_event_ids: list[str]
    grace: timedelta

    @property
    def passed(self) -> bool:
        return self.stale == 0


def stale_pending_events(
    engine: Engine,
    *,
    grace: timedelta = DEFAULT_PENDING_GRACE,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> PendingEventsResult:
    """Events received in [since, until) that are still pending after `grace`."""
    cutoff = (now or datetime.now(UTC)) - grace
    if until is not None:
        cutoff = min(cutoff, until)
    rows = pending_events(engine, received_before=cutoff, received_since=since)
    return PendingEventsResult(
        stale=len(rows),
        oldest_received_at=rows[0][1] if rows else None,
        sample_event_ids=[event_id for event_id, _at in rows[:SAMPLE]],
        grace=grace,
    )


def missing_by_line(api_index: Mapping[str, tuple[str, str, datetime]], missing_ids: Iterable[str]) -> pd.DataFrame:
    """Missing messages per UTC day and line (for the weekly completeness metadata)."""
    rows = [
        {"day": str(api_index[i][2].date()), "line": api_index[i][0], "conversation": api_index[i][1]}
        for i in missing_ids
        if i in api_index
    ]
    if not rows:
        return pd.DataFrame(columns=["day", "line", "missing"])
    frame = pd.DataFrame(rows)
    return frame.groupby(["day", "line"]).size().reset_index(name="missing")
