"""Error recovery in plain Python: the retry sweep, manual replay, the failure-rate monitor, and the
due-work fingerprint that decides when a sweep is worth starting.

Dagster jobs, sensors and the replay CLI are thin shells over these functions, so the Launchpad,
the daemon and a shell on the database host all do exactly the same thing. Processing itself is
store/processing.py, shared with the receiver.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from openphone_pipelines import reporting
from openphone_pipelines.alerting.delivery import Alert, AlertChannel, send_alert_once
from openphone_pipelines.store import retry_queue
from openphone_pipelines.store.processing import retry_claimed
from openphone_pipelines.store.webhook_events import events_without_outcome

log = logging.getLogger(__name__)

# A `pending` event this old lost its receiver mid-request (every receiver wait is bounded well under
# RECEIVER_TIMEOUT, 30 s by default): the sensor starts a sweep, which adopts it.
ADOPT_AFTER_SECONDS = 60
RESOLVED_RETENTION_DAYS = 7

# ------------------------------------------------------------------------------------ sweep


@dataclass
class SweepCounts:
    claimed: int = 0
    resolved: int = 0
    retried_later: int = 0
    dead: int = 0
    adopted: int = 0
    dead_event_ids: list[int] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int]:
        return {"claimed": self.claimed, "resolved": self.resolved, "retried_later": self.retried_later,
                "dead": self.dead, "adopted": self.adopted}


def sweep_due_retries(engine: Engine, *, batch_size: int = 100, max_rows: int | None = None,
                      adopt_after_seconds: int = ADOPT_AFTER_SECONDS) -> SweepCounts:
    """Drain due rows batch by batch until none are due (or `max_rows` were handled).

    Events left `pending` by a receiver that died mid-request are adopted into the queue first,
    so nothing committed is ever forgotten."""
    counts = SweepCounts()
    with engine.begin() as conn:
        for event_row_id in events_without_outcome(conn, adopt_after_seconds):
            retry_queue.enqueue_failure(conn, event_row_id, error_class="transient", due_now=True,
                                        error="no processing outcome recorded (receiver interrupted)")
            counts.adopted += 1
    while max_rows is None or counts.claimed < max_rows:
        limit = batch_size if max_rows is None else min(batch_size, max_rows - counts.claimed)
        claims = retry_queue.claim_due_retries(engine, limit)
        if not claims:
            break
        for claim in claims:
            counts.claimed += 1
            result = retry_claimed(engine, claim)
            if result.outcome != "failed":
                counts.resolved += 1
            elif result.queue_status == "dead":
                counts.dead += 1
                counts.dead_event_ids.append(claim.webhook_event_id)
            else:
                counts.retried_later += 1
    return counts


def alert_dead_letters(engine: Engine, channel: AlertChannel, counts: SweepCounts, *, alert_key: str,
                       context_url: str | None = None) -> bool:
    """One alert for the rows a sweep gave up on (their fifth failure, or a permanent error)."""
    if not counts.dead:
        return False
    subject, body = reporting.swept_dead_letters_alert(counts, context_url)
    return send_alert_once(engine, channel, Alert(alert_key, "dead_letter", subject, body))


# ------------------------------------------------------------------------------------ when to sweep


@dataclass(frozen=True)
class DueWork:
    due_rows: int
    fingerprint: str  # changes whenever the set of due rows (or their attempt counts) changes


def due_retry_work(conn: Connection, adopt_after_seconds: int = ADOPT_AFTER_SECONDS) -> DueWork | None:
    """What a sweep would do now as a run key: due rows, claims past their lease and events left
    without an outcome; one sweep per distinct set, none when there is nothing to do."""
    count, fingerprint = retry_queue.due_rows_fingerprint(conn)
    orphans = events_without_outcome(conn, adopt_after_seconds)
    if not count and not orphans:
        return None
    if orphans:
        fingerprint = hashlib.md5(f"{fingerprint}|{','.join(map(str, orphans))}".encode()).hexdigest()
    return DueWork(count + len(orphans), fingerprint[:20])


def orphaned_event_count(conn: Connection, adopt_after_seconds: int = ADOPT_AFTER_SECONDS) -> int:
    """Events a sweep would adopt now (stored, but never given a processing outcome)."""
    return len(events_without_outcome(conn, adopt_after_seconds))


# ------------------------------------------------------------------------------------ monitor


@dataclass(frozen=True)
class FailureRate:
    window_minutes: int
    events: int
    failed: int
    new_dead: int
    queue: dict[str, int]

    @property
    def rate(self) -> float:
        return self.failed / self.events if self.events else 0.0


def failure_rate(conn: Connection, window_minutes: int = 60) -> FailureRate:
    """The real failure rate: events received in the window whose first processing failed (they
    have a queue row, whatever happened next) over all events received in it."""
    counts = retry_queue.failure_counts(conn, window_minutes)
    return FailureRate(window_minutes, counts.events, counts.failed, counts.new_dead, retry_queue.queue_depth(conn))


@dataclass(frozen=True)
class MonitorThresholds:
    failure_rate: float = 0.05
    dead_letters: int = 1


def monitor_failures(engine: Engine, channel: AlertChannel, thresholds: MonitorThresholds, *,
                     window_key: str, window_minutes: int = 60,
                     context_url: str | None = None) -> tuple[FailureRate, list[str]]:
    """Compute the window's failure rate and new dead letters; alert on what crosses a threshold,
    once per window (`window_key`, e.g. the hour)."""
    with engine.connect() as conn:
        stats = failure_rate(conn, window_minutes)
    sent: list[str] = []
    if stats.events and stats.rate > thresholds.failure_rate:
        subject, body = reporting.failure_rate_alert(stats, thresholds, context_url)
        if send_alert_once(engine, channel, Alert(f"monitor:failure-rate:{window_key}", "failure_rate", subject, body)):
            sent.append("failure_rate")
    if stats.new_dead >= thresholds.dead_letters:
        subject, body = reporting.new_dead_letters_alert(stats, thresholds, context_url)
        if send_alert_once(engine, channel, Alert(f"monitor:dead-letters:{window_key}", "dead_letter", subject, body)):
            sent.append("dead_letters")
    return stats, sent


# ------------------------------------------------------------------------------------ replay


@dataclass
class ReplayResult:
    reset_ids: list[int]  # the rows reset and reprocessed (resolved rows are never reset)
    rows: list[retry_queue.QueueRow]  # their state after the reprocessing

    @property
    def resolved(self) -> list[int]:
        return [r.id for r in self.rows if r.status == "resolved"]

    @property
    def unresolved(self) -> list[retry_queue.QueueRow]:
        return [r for r in self.rows if r.status != "resolved"]


def parse_when(value: str | datetime | None) -> datetime | None:
    """ISO 8601 (a naive time is UTC); empty means unbounded."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def replay(engine: Engine, *, queue_ids: list[int] | None = None, received_from: datetime | None = None,
           received_to: datetime | None = None, all_dead: bool = False, batch_size: int = 100) -> ReplayResult:
    """Reset the selected rows (fresh attempt budget, due now) and reprocess them at once.

    Resolved rows are never reset, so replaying them is a no-op. The reprocessing is an ordinary
    sweep (SKIP LOCKED claims), so a scheduled sweep running at the same moment cannot double-process."""
    reset = retry_queue.reset_for_replay(engine, queue_ids=queue_ids, received_from=received_from,
                                         received_to=received_to, all_dead=all_dead)
    if reset:
        sweep_due_retries(engine, batch_size=batch_size)
    with engine.connect() as conn:
        rows = retry_queue.queue_rows(conn, reset)
    log.info("replay: %d row(s) reset, %d resolved", len(reset), sum(r.status == "resolved" for r in rows))
    return ReplayResult(reset, rows)
