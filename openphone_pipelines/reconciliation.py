"""Daily reconciliation: walk OpenPhone as it really is and back-fill what the webhooks missed.

v1 has no "every message since T" call (docs/openphone-api.md, 'Listing messages'), so the walk
is phone numbers -> conversations per line (`updatedAfter` = window start - overlap) -> messages
per conversation (`phoneNumberId` + `participants`, created in [start - overlap, end + overlap)).
The query windows overlap because edge inclusivity is undocumented (docs/openphone-api.md,
'Window edges'); rows are then kept only when created in [start, end), so each message belongs to
exactly one UTC day and the "inserted" figure of a day is exactly the messages its webhooks
missed. Writes go through `upsert_messages`, the same forward-only path the receiver uses (docs/
design.md, rule 3). Plain Python: no dagster, no SQL, no markdown here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.models import Conversation, Message, PhoneNumber
from openphone_pipelines.openphone.probes import RecordedProbes
from openphone_pipelines.store.directory import upsert_conversations, upsert_phone_numbers
from openphone_pipelines.store.health_checks import recorded_probes_around
from openphone_pipelines.store.messages import BATCH_SIZE, upsert_messages

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=10)
DEFAULT_CONCURRENCY = 4  # enough in-flight requests to fill 10 req/s at real-API latencies

Progress = Callable[[str], None]


@dataclass
class DayFigures:
    """What one UTC day of the window contained and what the walk did to it."""

    day: date
    messages_seen: int = 0
    inserted: int = 0
    repaired: int = 0
    unchanged: int = 0
    probes_skipped: int = 0
    api_ids: set[str] = field(default_factory=set)


def _window_total(figure: str) -> property:
    """A window figure: the sum of that figure over the window's days (never counted twice)."""
    return property(lambda self: sum(getattr(day, figure) for day in self.days.values()),
                    doc=f"{figure} over the whole window (sum of the per-day figures)")


@dataclass
class ReconcileReport:
    """Figures of one reconciliation walk: per UTC day, the window totals derived from them, and
    what the walk cost in API calls."""

    start: datetime
    end: datetime
    lines_scanned: int = 0
    lines_skipped: int = 0
    conversations_scanned: int = 0
    api_calls: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    duration_s: float = 0.0
    days: dict[date, DayFigures] = field(default_factory=dict)
    # (line id, conversation id) -> messages inserted there, i.e. missed by the webhooks
    misses: Counter[tuple[str, str]] = field(default_factory=Counter)

    messages_seen = _window_total("messages_seen")
    inserted = _window_total("inserted")
    repaired = _window_total("repaired")
    unchanged = _window_total("unchanged")
    probes_skipped = _window_total("probes_skipped")

    @classmethod
    def for_window(cls, start: datetime, end: datetime) -> ReconcileReport:
        return cls(start=start, end=end, days={d: DayFigures(d) for d in utc_days(start, end)})

    @property
    def api_ids(self) -> set[str]:
        return set().union(*(d.api_ids for d in self.days.values()))

    def count_api_calls(self, before: dict[str, int], after: dict[str, int]) -> None:
        """Record what the walk cost, from two `ClientStats.snapshot()`s taken around it."""
        self.api_calls = after["requests"] - before["requests"]
        self.pages = after["pages"] - before["pages"]
        self.retries = after["retries"] - before["retries"]
        self.rate_limited = after["rate_limited"] - before["rate_limited"]
        self.server_errors = after["server_errors"] - before["server_errors"]


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC calendar days whose midnight-to-midnight span intersects [start, end)."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def list_window_conversations(
    client: OpenPhoneClient,
    line: PhoneNumber,
    start: datetime,
    end: datetime,
    overlap: timedelta,
    progress: Progress,
) -> list[Conversation]:
    """Conversations of one line that can hold messages created in the (overlapped) window.

    `updatedAfter` drops conversations idle since before the window; a conversation created after
    the window cannot hold messages from it, so it is dropped too (saves one request each)."""
    out: list[Conversation] = []
    listed = 0
    for page_no, page in enumerate(
        client.iter_conversation_pages(phone_numbers=[line.id], updated_after=start - overlap), start=1
    ):
        listed += len(page)
        out.extend(c for c in page if c.created_at is None or c.created_at < end + overlap)
        progress(f"line {line.id}: conversations page {page_no} ({listed} listed, {len(out)} to scan)")
    return out


def _fetch_conversation(
    client: OpenPhoneClient, conv: Conversation, start: datetime, end: datetime, overlap: timedelta
) -> tuple[Conversation, list[Message], int]:
    """Every message of one conversation in the overlapped window; returns (conv, messages, pages)."""
    messages: list[Message] = []
    pages = 0
    for page in client.iter_message_pages(
        phone_number_id=conv.phone_number_id,
        participants=conv.participants,
        created_after=start - overlap,
        created_before=end + overlap,
    ):
        pages += 1
        messages.extend(page)
    return conv, messages, pages


def _complete(message: Message, conv: Conversation) -> Message:
    """Fill the line and conversation from the conversation we listed it under, when missing."""
    update = {}
    if message.conversation_id is None:
        update["conversation_id"] = conv.id
    if message.phone_number_id is None:
        update["phone_number_id"] = conv.phone_number_id
    return message.model_copy(update=update) if update else message


def walk_window(
    client: OpenPhoneClient,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    skip_line_ids: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
    on_lines: Callable[[list[PhoneNumber]], None] | None = None,
    on_conversations: Callable[[list[Conversation]], None] | None = None,
    report: ReconcileReport | None = None,
) -> Iterator[tuple[Conversation, list[Message]]]:
    """Yield (conversation, its messages from the overlapped window), fetching conversations in
    parallel; each line's conversations are listed before its messages are walked."""
    start, end = _aware(start, "start"), _aware(end, "end")
    say = progress or (lambda _msg: None)
    skip = {s for s in skip_line_ids if s}
    lines = client.list_phone_numbers()
    if on_lines:
        on_lines(lines)
    say(f"{len(lines)} lines; window {start.isoformat()} .. {end.isoformat()} (overlap {overlap})")
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile") as pool:
        for line in lines:
            if line.id in skip:
                if report:
                    report.lines_skipped += 1
                say(f"line {line.id}: skipped (health-probe line)")
                continue
            conversations = list_window_conversations(client, line, start, end, overlap, say)
            if report:
                report.lines_scanned += 1
            if on_conversations:
                on_conversations(conversations)
            todo = [c for c in conversations if c.participants]
            pending: set[Future] = set()
            done_count = pages = messages = 0
            queue = iter(todo)
            # keep at most 2x concurrency fetches queued: memory stays flat on big lines
            for conv in queue:
                pending.add(pool.submit(_fetch_conversation, client, conv, start, end, overlap))
                if len(pending) >= 2 * concurrency:
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    conv, found, conv_pages = future.result()
                    done_count += 1
                    pages += conv_pages
                    messages += len(found)
                    if report:
                        report.conversations_scanned += 1
                    yield conv, found
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(_fetch_conversation, client, nxt, start, end, overlap))
                if done_count % 100 == 0 or not pending:
                    say(
                        f"line {line.id}: {done_count}/{len(todo)} conversations, "
                        f"{pages} message pages, {messages} messages listed"
                    )


class _DayWriter:
    """Messages of the window waiting to be written, per UTC day: one upsert per 1,000 rows, its
    outcome counted on that day, and every insert charged to its line and conversation."""

    def __init__(self, engine: Engine, report: ReconcileReport) -> None:
        self.engine, self.report = engine, report
        self.buffers: dict[date, dict[str, Message]] = defaultdict(dict)
        self.where: dict[str, tuple[str, str]] = {}

    def add(self, day: date, message: Message, line_id: str, conversation_id: str) -> None:
        self.where[message.id] = (line_id, conversation_id)
        self.buffers[day][message.id] = message
        if len(self.buffers[day]) >= BATCH_SIZE:
            self.flush(day)

    def flush(self, day: date) -> None:
        batch = self.buffers.pop(day, {})
        if not batch:
            return
        counts = upsert_messages(self.engine, batch.values(), via="reconciliation")
        figures = self.report.days[day]
        figures.inserted += counts.inserted
        figures.repaired += counts.updated
        figures.unchanged += counts.unchanged
        for message_id in counts.inserted_ids:
            self.report.misses[self.where[message_id]] += 1

    def flush_all(self) -> None:
        for day in list(self.buffers):
            self.flush(day)


def _customer_message_day(report: ReconcileReport, message: Message, probes: RecordedProbes) -> date | None:
    """The UTC day that owns `message`, or None when it is overlap, a repeat or a probe (counted)."""
    created = message.created_at.astimezone(UTC)
    if not report.start <= created < report.end:
        return None  # overlap only: the neighbouring day owns it
    figures = report.days[created.date()]
    if message.id in figures.api_ids:
        return None  # listed twice (paging under inserts)
    if probes.covers(message):  # a probe we sent; a customer quoting the marker is a customer
        figures.probes_skipped += 1
        return None
    figures.api_ids.add(message.id)
    figures.messages_seen += 1
    return created.date()


def customer_messages(
    client: OpenPhoneClient,
    engine: Engine,
    report: ReconcileReport,
    *,
    overlap: timedelta,
    probe_line_id: str | None,
    concurrency: int,
    progress: Progress | None,
    on_lines: Callable[[list[PhoneNumber]], None] | None = None,
    on_conversations: Callable[[list[Conversation]], None] | None = None,
) -> Iterator[tuple[Conversation, Message, date]]:
    """Every customer message created in the report's window, once, completed from its conversation,
    with the UTC day that owns it; overlap, repeats and probes are skipped (probes counted)."""
    probes = recorded_probes_around(engine, report.start, report.end)
    for conv, messages in walk_window(
        client, report.start, report.end, overlap=overlap, skip_line_ids=[probe_line_id] if probe_line_id else [],
        concurrency=concurrency, progress=progress, report=report, on_lines=on_lines,
        on_conversations=on_conversations,
    ):
        for message in messages:
            day = _customer_message_day(report, message, probes)
            if day is not None:
                yield conv, _complete(message, conv), day


def reconcile_window(
    client: OpenPhoneClient,
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    probe_line_id: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Back-fill and repair every message created in [start, end); safe to repeat (idempotent).

    Rows it inserts get first_seen_via='reconciliation'; existing rows only move forward.
    Health-probe messages are neither written nor counted."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ValueError("end must be after start")
    began = time.monotonic()
    before = client.stats.snapshot()
    report = ReconcileReport.for_window(start, end)
    writer = _DayWriter(engine, report)
    for conv, message, day in customer_messages(
        client, engine, report, overlap=overlap, probe_line_id=probe_line_id, concurrency=concurrency,
        progress=progress, on_lines=lambda lines: upsert_phone_numbers(engine, lines),
        on_conversations=lambda convs: upsert_conversations(engine, convs),
    ):
        writer.add(day, message, message.phone_number_id or conv.phone_number_id, conv.id)
    writer.flush_all()
    report.count_api_calls(before, client.stats.snapshot())
    report.duration_s = time.monotonic() - began
    if progress:
        progress(
            f"done: {report.messages_seen} messages seen, {report.inserted} inserted (missed by webhooks), "
            f"{report.repaired} repaired, {report.api_calls} API calls, {report.rate_limited} x 429 "
            f"in {report.duration_s:.1f}s"
        )
    return report


def api_message_ids(client: OpenPhoneClient, engine: Engine, start: datetime, end: datetime, *,
                    overlap: timedelta = DEFAULT_OVERLAP, probe_line_id: str | None = None,
                    progress: Progress | None = None) -> dict[str, tuple[str, str, datetime]]:
    """Read-only walk: id -> (line, conversation, created_at) of every customer message the API
    lists as created in [start, end). The standalone completeness check compares it with the table."""
    start, end = _aware(start, "start"), _aware(end, "end")
    walk = customer_messages(client, engine, ReconcileReport.for_window(start, end), overlap=overlap,
                             probe_line_id=probe_line_id, concurrency=DEFAULT_CONCURRENCY, progress=progress)
    return {m.id: (m.phone_number_id or conv.phone_number_id, conv.id, m.created_at.astimezone(UTC))
            for conv, m, _day in walk}
