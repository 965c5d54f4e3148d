"""Integrity computations behind the reconciliation asset checks (plain Python and pandas, no dagster).

Each function measures one invariant over a UTC window of the app database and returns a small
result object with `passed` and the figures an operator needs in the alert, so the asset, the
weekly checks job and the tests all judge data by the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, text

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.errors import OpenPhoneAPIError
from openphone_pipelines.openphone.models import Message
from openphone_pipelines.store.messages import message_ids_between, upsert_messages

UNSETTLED = ("queued", "sent")
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


def _unsettled_ids(engine: Engine, start: datetime, end: datetime, before: datetime) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id FROM messages WHERE direction = 'outgoing' AND status IN ('queued', 'sent')"
                " AND created_at >= :start AND created_at < :end AND created_at < :before ORDER BY id"
            ),
            {"start": start, "end": end, "before": before},
        )
        return [row.id for row in rows]


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

    Legacy webhooks never report `undelivered` (reference §5.8), so polling is the only way such
    a row reaches its final status."""
    before = (now or datetime.now(UTC)) - settle_after
    result = SettledResult(checked_before=before)
    stale = _unsettled_ids(engine, start, end, before)
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
    result.still_unsettled_ids = _unsettled_ids(engine, start, end, before)
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

    def markdown(self) -> str:
        if self.by_day.empty:
            return "No messages in the window."
        rows = ["| day | webhook | reconciliation | send | coverage |", "|---|---:|---:|---:|---:|"]
        for day, row in self.by_day.iterrows():
            cov = "n/a" if pd.isna(row["coverage"]) else f"{row['coverage']:.1%}"
            rows.append(
                f"| {day} | {int(row['webhook'])} | {int(row['reconciliation'])} | {int(row['send'])} | {cov} |"
            )
        return "\n".join(rows)


def webhook_coverage(
    engine: Engine, start: datetime, end: datetime, *, threshold: float = DEFAULT_COVERAGE_MIN
) -> CoverageResult:
    """Count first_seen_via per UTC day of [start, end) (rows inserted by reconciliation were missed)."""
    with engine.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, first_seen_via AS via, count(*) AS n"
                    " FROM messages WHERE created_at >= :start AND created_at < :end GROUP BY 1, 2"
                ),
                {"start": start, "end": end},
            ).all(),
            columns=["day", "via", "n"],
        )
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
    params = {"start": start, "end": end}
    window = "m.created_at >= :start AND m.created_at < :end"
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM messages m WHERE {window}"), params).scalar_one()
        lines = conn.execute(
            text(
                f"SELECT m.phone_number_id AS id, count(*) AS n FROM messages m"
                f" LEFT JOIN phone_numbers p ON p.id = m.phone_number_id"
                f" WHERE {window} AND (m.phone_number_id IS NULL OR p.id IS NULL) GROUP BY 1 ORDER BY 2 DESC"
            ),
            params,
        ).all()
        convs = conn.execute(
            text(
                f"SELECT m.conversation_id AS id, count(*) AS n FROM messages m"
                f" LEFT JOIN conversations c ON c.id = m.conversation_id"
                f" WHERE {window} AND m.conversation_id IS NOT NULL AND c.id IS NULL GROUP BY 1 ORDER BY 2 DESC"
            ),
            params,
        ).all()
        no_conv = conn.execute(
            text(f"SELECT count(*) FROM messages m WHERE {window} AND m.conversation_id IS NULL"), params
        ).scalar_one()
    return ReferentialResult(
        messages=total,
        unknown_line_ids=[str(r.id) for r in lines[:SAMPLE]],
        unknown_conversation_ids=[r.id for r in convs[:SAMPLE]],
        rows_with_unknown_line=sum(r.n for r in lines),
        rows_with_unknown_conversation=sum(r.n for r in convs),
        rows_without_conversation=no_conv,
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
    sql = (
        "SELECT event_id, received_at FROM webhook_events WHERE processing_status = 'pending'"
        " AND received_at < :cutoff"
    )
    params: dict[str, datetime] = {"cutoff": cutoff}
    if since is not None:
        sql += " AND received_at >= :since"
        params["since"] = since
    with engine.connect() as conn:
        rows = conn.execute(text(sql + " ORDER BY received_at"), params).all()
    return PendingEventsResult(
        stale=len(rows),
        oldest_received_at=rows[0].received_at if rows else None,
        sample_event_ids=[r.event_id for r in rows[:SAMPLE]],
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


def frame_markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table without the optional `tabulate` dependency."""
    if frame.empty:
        return "(none)"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
