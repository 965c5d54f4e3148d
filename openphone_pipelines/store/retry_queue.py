"""The failed-webhook queue: retry policy as data (attempts, next time, last error, status).

Backoff after the k-th failure is 1, 2, 4, 8, 16 minutes (±10% jitter); the fifth failed retry
makes the row dead. Rows are claimed with FOR UPDATE SKIP LOCKED so two sweeps never take the
same row; a row stuck in `processing` past its lease (a crashed sweep) is claimed again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

BACKOFF_MINUTES = (1, 2, 4, 8, 16)
MAX_ATTEMPTS = len(BACKOFF_MINUTES)
JITTER = 0.10
CLAIM_LEASE_SECONDS = 600


def backoff_delay(failures_so_far: int, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after `failures_so_far` failed retries (0 = the first failure)."""
    base = BACKOFF_MINUTES[min(failures_so_far, MAX_ATTEMPTS - 1)] * 60.0
    factor = 1.0 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


def enqueue_failure(
    conn: Connection,
    webhook_event_id: int,
    *,
    error_class: str,
    error: str,
    rng: random.Random | None = None,
    due_now: bool = False,
) -> str:
    """First failure of an event: pending with the 1-minute backoff, or dead at once if permanent.

    Returns the queue status. Safe to call twice for the same event (the row is updated)."""
    status = "dead" if error_class == "permanent" else "pending"
    next_at = None if status == "dead" else 0.0 if due_now else backoff_delay(0, rng).total_seconds()
    conn.execute(
        text(
            """
            INSERT INTO failed_webhook_queue (webhook_event_id, error_class, status, attempts,
                                              next_retry_at, last_error)
            VALUES (:eid, :cls, :status, 0,
                    CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                         ELSE now() + CAST(:delay AS double precision) * interval '1 second' END, :err)
            ON CONFLICT (webhook_event_id) DO UPDATE
               SET error_class = excluded.error_class, status = excluded.status,
                   next_retry_at = excluded.next_retry_at, last_error = excluded.last_error,
                   updated_at = now(), claimed_at = NULL
             WHERE failed_webhook_queue.status NOT IN ('resolved', 'processing')
            """
        ),
        {"eid": webhook_event_id, "cls": error_class, "status": status, "delay": next_at, "err": error},
    )
    return status


@dataclass(frozen=True)
class ClaimedRetry:
    id: int
    webhook_event_id: int
    attempts: int


def claim_due_retries(engine: Engine, limit: int = 100) -> list[ClaimedRetry]:
    """Claim up to `limit` due rows (oldest due first) and commit the claim."""
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                """
                UPDATE failed_webhook_queue q SET status = 'processing', claimed_at = now(), updated_at = now()
                 WHERE q.id IN (
                       SELECT id FROM failed_webhook_queue
                        WHERE (status = 'pending' AND next_retry_at <= now())
                           OR (status = 'processing' AND claimed_at < now() - :lease * interval '1 second')
                        ORDER BY next_retry_at NULLS FIRST, id
                        LIMIT :limit
                        FOR UPDATE SKIP LOCKED)
                RETURNING q.id, q.webhook_event_id, q.attempts
                """
            ),
            {"limit": limit, "lease": CLAIM_LEASE_SECONDS},
        ).all()
    return [ClaimedRetry(r.id, r.webhook_event_id, r.attempts) for r in sorted(rows, key=lambda r: r.id)]


def mark_resolved(conn: Connection, queue_id: int) -> None:
    conn.execute(
        text(
            "UPDATE failed_webhook_queue SET status = 'resolved', resolved_at = now(), updated_at = now(),"
            " claimed_at = NULL, next_retry_at = NULL WHERE id = :id"
        ),
        {"id": queue_id},
    )


def mark_retry_failed(
    conn: Connection, queue_id: int, *, error_class: str, error: str, rng: random.Random | None = None
) -> str:
    """Count a failed retry: back off again, or dead after the fifth (or on a permanent error)."""
    attempts = conn.execute(
        text("UPDATE failed_webhook_queue SET attempts = attempts + 1 WHERE id = :id RETURNING attempts"),
        {"id": queue_id},
    ).scalar_one()
    dead = error_class == "permanent" or attempts >= MAX_ATTEMPTS
    delay = None if dead else backoff_delay(attempts, rng).total_seconds()
    conn.execute(
        text(
            """
            UPDATE failed_webhook_queue
               SET status = :status, error_class = :cls, last_error = :err, claimed_at = NULL, updated_at = now(),
                   next_retry_at = CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                         ELSE now() + CAST(:delay AS double precision) * interval '1 second' END
             WHERE id = :id
            """
        ),
        {"id": queue_id, "status": "dead" if dead else "pending", "cls": error_class, "err": error, "delay": delay},
    )
    return "dead" if dead else "pending"


def reset_for_replay(
    engine: Engine,
    *,
    queue_ids: list[int] | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    all_dead: bool = False,
) -> list[int]:
    """Make dead or pending rows (and discarded ones named by id) due now with a fresh attempt
    budget; resolved rows are left alone (replaying them is a no-op). Returns the ids reset."""
    if not (queue_ids or received_from or received_to or all_dead):
        raise ValueError("replay needs ids, a time range, or all_dead")
    # Naming rows by id may revive a discarded one; a range or "all dead" never does.
    revivable = "('dead', 'discarded', 'pending')" if queue_ids else "('dead', 'pending')"
    clauses = [f"q.status IN {revivable}"]
    params: dict = {}
    if queue_ids:
        clauses.append("q.id = ANY(:ids)")
        params["ids"] = list(queue_ids)
    if received_from:
        clauses.append("e.received_at >= :since")
        params["since"] = received_from
    if received_to:
        clauses.append("e.received_at < :until")
        params["until"] = received_to
    if all_dead:
        clauses.append("q.status = 'dead'")
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                f"""
                UPDATE failed_webhook_queue q
                   SET status = 'pending', attempts = 0, next_retry_at = now(), claimed_at = NULL,
                       discarded_at = NULL, updated_at = now()
                  FROM webhook_events e
                 WHERE e.id = q.webhook_event_id AND {' AND '.join(clauses)}
                RETURNING q.id
                """
            ),
            params,
        ).all()
    return sorted(r.id for r in rows)


def discard(engine: Engine, queue_ids: list[int], note: str) -> int:
    """Give up on dead rows by hand; the row stays, with when and why."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "UPDATE failed_webhook_queue SET status = 'discarded', discarded_at = now(), discard_note = :note,"
                " updated_at = now() WHERE id = ANY(:ids) AND status IN ('dead', 'pending')"
            ),
            {"ids": list(queue_ids), "note": note},
        ).rowcount


def delete_resolved_older_than(engine: Engine, days: int) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text(
                "DELETE FROM failed_webhook_queue WHERE status = 'resolved'"
                " AND resolved_at < now() - :days * interval '1 day'"
            ),
            {"days": days},
        ).rowcount


def queue_depth(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT status, count(*) AS n FROM failed_webhook_queue GROUP BY status"))
    depth = {status: 0 for status in ("pending", "processing", "resolved", "dead", "discarded")}
    depth.update({row.status: row.n for row in rows})
    return depth


def due_rows_fingerprint(conn: Connection) -> tuple[int, str]:
    """How many rows a sweep would claim now (due `pending` rows, and `processing` rows whose claim
    outlived its lease: a crashed sweep), and an md5 over their (id, attempts, status): it changes
    whenever that set changes."""
    row = conn.execute(
        text(
            """
            SELECT count(*) AS n,
                   md5(coalesce(string_agg(id::text || ':' || attempts::text || ':' || status, ','
                                           ORDER BY id), '')) AS fp
              FROM failed_webhook_queue
             WHERE (status = 'pending' AND next_retry_at <= now())
                OR (status = 'processing' AND claimed_at < now() - :lease * interval '1 second')
            """
        ),
        {"lease": CLAIM_LEASE_SECONDS},
    ).one()
    return row.n, row.fp


@dataclass(frozen=True)
class FailureCounts:
    events: int  # webhook events received in the window
    failed: int  # of those, how many failed their first processing (they have a queue row)
    new_dead: int  # queue rows that became dead in the window


def failure_counts(conn: Connection, window_minutes: int) -> FailureCounts:
    """Received, failed and newly dead events over the last `window_minutes`."""
    row = conn.execute(
        text(
            """
            SELECT count(*) AS events, count(q.id) AS failed
              FROM webhook_events e LEFT JOIN failed_webhook_queue q ON q.webhook_event_id = e.id
             WHERE e.received_at > now() - :minutes * interval '1 minute'
            """
        ),
        {"minutes": window_minutes},
    ).one()
    new_dead = conn.execute(
        text(
            "SELECT count(*) FROM failed_webhook_queue WHERE status = 'dead'"
            " AND updated_at > now() - :minutes * interval '1 minute'"
        ),
        {"minutes": window_minutes},
    ).scalar_one()
    return FailureCounts(row.events, row.failed, new_dead)


@dataclass(frozen=True)
class QueueRow:
    id: int
    webhook_event_id: int
    status: str
    attempts: int
    last_error: str | None


def queue_rows(conn: Connection, ids: list[int]) -> list[QueueRow]:
    rows = conn.execute(
        text(
            "SELECT id, webhook_event_id, status, attempts, last_error FROM failed_webhook_queue"
            " WHERE id = ANY(:ids) ORDER BY id"
        ),
        {"ids": list(ids)},
    ).all()
    return [QueueRow(r.id, r.webhook_event_id, r.status, r.attempts, r.last_error) for r in rows]
