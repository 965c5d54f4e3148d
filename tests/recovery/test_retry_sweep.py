"""The retry queue end to end on real Postgres: transient recovery, the backoff series, dead
letters, and concurrent sweeps that never process a row twice."""

from __future__ import annotations

import dagster as dg
import pytest
from sqlalchemy import text

from openphone_pipelines.jobs.retry_sweep_job import retry_sweep_job
from openphone_pipelines.recovery import sweep_due_retries
from openphone_pipelines.store import retry_queue
from openphone_pipelines.store.processing import process_webhook_event
from tests.recovery.support import (
    impatient_engine,
    make_due,
    messages_table_locked,
    queue_row,
    run_in_threads,
)
from tests.support.events import numbered_event, store_event
from tests.support.resources import dagster_resources


def _sweep_job(app_db_url, smtp_server=None):
    with dg.instance_for_test() as instance:
        result = retry_sweep_job.execute_in_process(instance=instance, resources=dagster_resources(app_db_url, smtp_server))
        assert result.success
        return result.output_for_node("sweep_retry_queue")


def test_transient_failure_recovers_on_its_next_due_sweep(db, fresh, app_db_url, smtp_server):
    engine = impatient_engine(app_db_url)
    event_id = store_event(db, 1)
    with messages_table_locked(app_db_url):
        first = process_webhook_event(engine, event_id)
    assert (first.outcome, first.error_class, first.queue_status) == ("failed", "transient", "pending")
    assert "LockNotAvailable" in first.error or "lock timeout" in first.error

    row = queue_row(fresh, 1)
    assert row.status == "pending" and row.attempts == 0
    # Not due yet (the first backoff is about a minute): a sweep now takes nothing.
    assert _sweep_job(app_db_url)["claimed"] == 0

    make_due(db)  # the minute has passed
    counts = _sweep_job(app_db_url, smtp_server)
    assert counts == {"claimed": 1, "resolved": 1, "retried_later": 0, "dead": 0, "adopted": 0}
    row = queue_row(fresh, 1)
    assert row.status == "resolved" and row.resolved_at is not None and row.next_retry_at is None
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT processing_status FROM webhook_events WHERE id = :id"),
                            {"id": event_id}).scalar_one() == "processed"
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 1
    assert smtp_server.messages == []  # recovered: nobody is paged
    engine.dispose()


def test_backoff_series_then_dead_with_one_alert(db, fresh, app_db_url, smtp_server):
    engine = impatient_engine(app_db_url)
    event_id = store_event(db, 2)
    delays = []

    def last_delay() -> float:
        with fresh.connect() as conn:
            return conn.execute(text(
                "SELECT extract(epoch FROM next_retry_at - updated_at) FROM failed_webhook_queue"
            )).scalar_one()

    with messages_table_locked(app_db_url):
        assert process_webhook_event(engine, event_id).queue_status == "pending"
        delays.append(float(last_delay()))
        for attempt in range(1, 6):
            make_due(db)
            counts = sweep_due_retries(engine)
            assert counts.claimed == 1
            row = queue_row(fresh, 1)
            assert row.attempts == attempt
            if attempt < 5:
                assert (counts.retried_later, row.status) == (1, "pending")
                delays.append(float(last_delay()))
            else:
                assert (counts.dead, row.status, row.next_retry_at) == (1, "dead", None)
                assert counts.dead_event_ids == [event_id]

    for delay, minutes in zip(delays, retry_queue.BACKOFF_MINUTES, strict=True):
        assert minutes * 60 * 0.9 <= delay <= minutes * 60 * 1.1, (delays, minutes)
    # A dead row is never claimed again, even if its time comes.
    make_due(db)
    assert sweep_due_retries(engine).claimed == 0
    engine.dispose()


def test_fifth_failure_in_the_sweep_job_alerts_once(db, fresh, app_db_url, smtp_server):
    engine = impatient_engine(app_db_url)
    event_id = store_event(db, 3)
    with messages_table_locked(app_db_url):
        process_webhook_event(engine, event_id)
        with db.begin() as conn:  # four failed retries already behind it
            conn.execute(text("UPDATE failed_webhook_queue SET attempts = 4"))
        make_due(db)
        # The job's engine has no lock timeout: give its sessions one through the role default.
        with db.begin() as conn:
            dbname = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f'ALTER DATABASE "{dbname}" SET lock_timeout = 300'))
        try:
            counts = _sweep_job(app_db_url, smtp_server)
        finally:
            with db.begin() as conn:
                conn.execute(text(f'ALTER DATABASE "{dbname}" RESET lock_timeout'))
    assert counts["dead"] == 1
    assert queue_row(fresh, 1).status == "dead"
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1 and "dead-lettered" in mails[0]["Subject"]
    engine.dispose()


def test_permanent_failure_is_dead_at_once(db, fresh, app_db_url, smtp_server):
    # 1) From the receiver path: a signed body that is not an event at all.
    bad = store_event(db, 4, body=b'{"id":"EV-bad","type":"message.received","data":{"object":"nope"}}')
    result = process_webhook_event(db, bad)
    assert (result.error_class, result.queue_status) == ("permanent", "dead")
    row = queue_row(fresh, 1)
    assert (row.status, row.attempts, row.next_retry_at) == ("dead", 0, None)

    # 2) From the sweep: an event orphaned by a crashed receiver is adopted, then found permanent.
    orphan = store_event(db, 5, body=b"not json at all")
    with db.begin() as conn:
        conn.execute(text("UPDATE webhook_events SET received_at = now() - interval '10 minutes' WHERE id = :id"),
                     {"id": orphan})
    counts = _sweep_job(app_db_url, smtp_server)
    assert counts["adopted"] == 1 and counts["dead"] == 1 and counts["claimed"] == 1
    with fresh.connect() as conn:
        status, attempts, err_class = conn.execute(text(
            "SELECT status, attempts, error_class FROM failed_webhook_queue WHERE webhook_event_id = :id"
        ), {"id": orphan}).one()
    assert (status, attempts, err_class) == ("dead", 1, "permanent")
    assert len(smtp_server.wait_for(1)) == 1


@pytest.mark.parametrize("rows", [1000])
def test_two_concurrent_sweeps_never_process_a_row_twice(db, fresh, app_db_url, rows):
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO webhook_events (event_id, event_type, api_version, signature_scheme, raw_body,"
                " processing_status) VALUES (:eid, 'message.received', 'v4', 'legacy', :body, 'failed')"
            ),
            [{"eid": eid, "body": body} for eid, body in map(numbered_event, range(rows))],
        )
        conn.execute(text(
            "INSERT INTO failed_webhook_queue (webhook_event_id, error_class, status, next_retry_at)"
            " SELECT id, 'transient', 'pending', now() - interval '1 second' FROM webhook_events"
        ))
    engines = [impatient_engine(app_db_url), impatient_engine(app_db_url)]
    try:
        a, b = run_in_threads(*(lambda e=e: sweep_due_retries(e, batch_size=20) for e in engines))
    finally:
        for e in engines:
            e.dispose()
    # Every claim is counted by the sweep that made it: a row taken twice would push the sum past `rows`.
    assert a.claimed + b.claimed == rows, (a, b)
    assert a.resolved + b.resolved == rows
    assert a.claimed > 0 and b.claimed > 0  # both really worked the queue at the same time
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM failed_webhook_queue WHERE status = 'resolved'"
                                 " AND attempts = 0")).scalar_one() == rows
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == rows
        assert conn.execute(text("SELECT count(*) FROM webhook_events WHERE processing_status = 'processed'")
                            ).scalar_one() == rows
