"""Retry-sweep throughput: draining N due rows of failed_webhook_queue through the real processing
function, beside baselines measured on the same rows in the same run.

Baselines: (a) one raw UPDATE marking every row resolved (the queue bookkeeping alone, no work);
(b) apply_event on every event in a loop without the queue (the processing alone). The sweep is
measured with one worker and with two concurrent workers (SKIP LOCKED).

Run: .venv/bin/python benchmarks/retry_sweep.py [--rows 10000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import benchmark_database  # noqa: E402
from openphone_pipelines.recovery import sweep_due_retries  # noqa: E402
from openphone_pipelines.store.db import make_engine  # noqa: E402
from openphone_pipelines.store.processing import apply_event  # noqa: E402


def event_body(n: int) -> bytes:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({
        "id": f"EV{n:032x}", "object": "event", "apiVersion": "v4", "createdAt": now, "type": "message.received",
        "data": {"object": {
            "id": f"AC{n:032x}", "object": "message", "from": "+15550001111", "to": ["+15550002222"],
            "direction": "incoming", "text": "benchmark message body of a typical length, about sixty chars",
            "status": "received", "createdAt": now, "userId": "US0000000001", "phoneNumberId": "PN0000000001",
            "contactIds": [],
        }},
    }, separators=(",", ":")).encode()


def seed(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE failed_webhook_queue, webhook_events, messages RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO webhook_events (event_id, event_type, api_version, signature_scheme, raw_body,"
                 " processing_status) VALUES (:eid, 'message.received', 'v4', 'legacy', :body, 'failed')"),
            [{"eid": f"EV{n:032x}", "body": event_body(n)} for n in range(rows)],
        )
        conn.execute(text(
            "INSERT INTO failed_webhook_queue (webhook_event_id, error_class, status, next_retry_at)"
            " SELECT id, 'transient', 'pending', now() - interval '1 second' FROM webhook_events"
        ))
    vacuum(engine)


def vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE failed_webhook_queue"))
        conn.execute(text("VACUUM ANALYZE webhook_events"))
        conn.execute(text("VACUUM ANALYZE messages"))


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE messages"))
        conn.execute(text("UPDATE webhook_events SET processing_status = 'failed', processed_at = NULL"))
        conn.execute(text("UPDATE failed_webhook_queue SET status = 'pending', resolved_at = NULL,"
                          " next_retry_at = now() - interval '1 second', claimed_at = NULL"))
    vacuum(engine)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    rows = args.rows
    with benchmark_database("opp_bench_retry") as url:
        engine = make_engine(url)
        seed(engine, rows)
        results: list[tuple[str, float]] = []

        def raw_update():
            with engine.begin() as conn:
                return conn.execute(text(
                    "UPDATE failed_webhook_queue SET status = 'resolved', resolved_at = now(), next_retry_at = NULL"
                    " WHERE status = 'pending' AND next_retry_at <= now()"
                )).rowcount
        seconds, n = timed(raw_update)
        assert n == rows, n
        results.append(("baseline: one raw UPDATE (bookkeeping only)", seconds))

        reset(engine)
        with engine.connect() as conn:
            ids = list(conn.execute(text("SELECT id FROM webhook_events ORDER BY id")).scalars())
        seconds, _ = timed(lambda: [apply_event(engine, i) for i in ids])
        results.append(("baseline: apply_event loop (processing only, no queue)", seconds))

        reset(engine)
        seconds, counts = timed(lambda: sweep_due_retries(engine, batch_size=args.batch_size))
        assert counts.resolved == rows, counts
        results.append((f"sweep_due_retries, 1 worker, batch {args.batch_size}", seconds))

        reset(engine)
        engines = [make_engine(url), make_engine(url)]
        out: list = [None, None]

        def worker(i: int) -> None:
            out[i] = sweep_due_retries(engines[i], batch_size=args.batch_size)

        def two_workers():
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        seconds, _ = timed(two_workers)
        assert out[0].resolved + out[1].resolved == rows and out[0].claimed + out[1].claimed == rows, out
        results.append((f"sweep_due_retries, 2 concurrent workers (split {out[0].claimed}/{out[1].claimed})",
                        seconds))
        for e in (engine, *engines):
            e.dispose()

    print(f"retry sweep: draining {rows:,} due rows (Postgres, same run)")
    for label, seconds in results:
        print(f"  {label:<68} {seconds:8.2f} s  {rows / seconds:>10,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
