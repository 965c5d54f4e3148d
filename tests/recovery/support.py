"""Helpers for the recovery and health tests: real webhook bodies, resources, a lock that makes
processing fail for a real (transient) reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine, text

from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.store.db import make_engine
from openphone_pipelines.store.webhook_events import record_webhook_event

RECIPIENT = "ops@example.com"


def message_event_body(n: int, *, text_: str = "hello there") -> bytes:
    """A v4 `message.received` body exactly as OpenPhone (and the sandbox) sends it."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload = {
        "id": f"EV{n:032x}", "object": "event", "apiVersion": "v4", "createdAt": now,
        "type": "message.received",
        "data": {"object": {
            "id": f"AC{n:032x}", "object": "message", "from": "+15550001111", "to": ["+15550002222"],
            "direction": "incoming", "text": text_, "status": "received", "createdAt": now,
            "userId": "US0000000001", "phoneNumberId": "PN0000000001", "contactIds": [],
        }},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def store_event(engine: Engine, n: int, body: bytes | None = None) -> int:
    body = body if body is not None else message_event_body(n)
    stored = record_webhook_event(engine, event_id=f"EV{n:032x}", raw_body=body, signature_scheme="legacy",
                                  event_type="message.received", api_version="v4")
    return stored.id


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


def resources(app_db_url: str, smtp_server=None) -> dict:
    out: dict = {"app_db": AppDatabase(url=app_db_url)}
    out["notifier"] = NotifierResource(
        host=smtp_server.host if smtp_server else "127.0.0.1",
        port=smtp_server.port if smtp_server else 1,
        recipients=RECIPIENT,
    )
    return out


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
