"""Helpers for the recovery tests: a lock that makes processing fail for a real (transient) reason,
due rows on demand, the queue row as stored, and threads started at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from openphone_pipelines.store.db import make_engine


def impatient_engine(url: str) -> Engine:
    """An engine whose statements give up after 300 ms waiting for a lock (a real transient error)."""
    return make_engine(url, connect_args={"options": "-c lock_timeout=300"})


@contextmanager
def messages_table_locked(url: str) -> Iterator[None]:
    """Hold ACCESS EXCLUSIVE on `messages` from another session, as a long migration or VACUUM FULL
    would: upserts time out on the lock (LockNotAvailable, transient) until the block ends."""
    engine = create_engine(url)
    conn = engine.connect()
    trans = conn.begin()
    conn.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
    try:
        yield
    finally:
        trans.rollback()
        conn.close()
        engine.dispose()


def make_due(engine: Engine, queue_id: int | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE failed_webhook_queue SET next_retry_at = now() - interval '1 second'"
                 " WHERE status = 'pending' AND (CAST(:id AS bigint) IS NULL OR id = :id)"),
            {"id": queue_id},
        )


def queue_row(engine: Engine, queue_id: int):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM failed_webhook_queue WHERE id = :id"), {"id": queue_id}).one()


def run_in_threads(*targets) -> list:
    """Start every target at the same moment (barrier); return their results in order."""
    barrier = threading.Barrier(len(targets))
    results: list = [None] * len(targets)
    errors: list[BaseException] = []

    def wrap(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(i, fn)) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
