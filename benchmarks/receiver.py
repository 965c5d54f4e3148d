"""Receiver throughput and latency over HTTP next to raw durable single-row inserts, same run.

For 1, 10 and 50 concurrent connections it measures
- `receiver`: signed message.received deliveries POSTed to the real gunicorn receiver (verify,
  commit the raw event, process it into messages: two commits per request);
- `raw insert`: one autocommit `INSERT ... ON CONFLICT DO NOTHING` per row into a table shaped
  like webhook_events (same columns, unique key and indexes), synchronous_commit on;
and prints req/s, p50 and p99 for each, plus the ratio receiver/raw.
The load generator runs on the same machine (processes x threads), so figures are a lower bound.

Run: .venv/bin/python benchmarks/receiver.py [--seconds 5] [--workers N] [--threads N]
(uses DATABASE_URL's server when set, otherwise an embedded Postgres in a temp folder)
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import benchmark_database, psycopg_dsn  # noqa: E402
from tests.support.events import message_event, new_secret, sign  # noqa: E402
from tests.support.receiver_server import running_receiver  # noqa: E402

LEVELS = (1, 10, 50)
RAW_TABLE = "bench_raw_webhook_events"
RAW_INSERT = (
    f"INSERT INTO {RAW_TABLE} (event_id, event_type, api_version, signature_scheme, raw_body)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id"
)


def _receiver_thread(url: str, secret: str, until: float, start_at: float, out: list[float],
                     errors: list[int]) -> None:
    # http.client, not httpx: the load generator shares the CPUs, so it must be as light as possible.
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < until:
        _, _, body = message_event("v2")
        d = sign(body, secret, "v2")
        t0 = time.perf_counter()
        try:
            conn.request("POST", target.path, body=d.body, headers=d.headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        if ok:
            out.append(time.perf_counter() - t0)
        else:
            errors.append(1)
    conn.close()


def _raw_thread(dsn: str, until: float, start_at: float, out: list[float], errors: list[int]) -> None:
    _, _, body = message_event("v2")
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < until:
            t0 = time.perf_counter()
            try:
                conn.execute(RAW_INSERT, ("EV" + uuid.uuid4().hex, "message.received", "v2",
                                          "openphone-legacy", body)).fetchone()
                out.append(time.perf_counter() - t0)
            except psycopg.Error:
                errors.append(1)


def _process(kind: str, target: str, secret: str, threads: int, start_at: float, seconds: float,
             results: mp.Queue) -> None:
    until = start_at + seconds
    latencies: list[float] = []
    errors: list[int] = []
    workers = []
    for _ in range(threads):
        if kind == "receiver":
            args = (target, secret, until, start_at, latencies, errors)
            workers.append(threading.Thread(target=_receiver_thread, args=args))
        else:
            workers.append(threading.Thread(target=_raw_thread, args=(target, until, start_at, latencies, errors)))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((latencies, len(errors)))


def measure(kind: str, target: str, secret: str, connections: int, seconds: float) -> dict[str, float]:
    """Run `connections` concurrent loops for `seconds`, spread over up to 4 client processes."""
    processes = min(connections, 4)
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    results: mp.Queue = mp.Queue()
    start_at = time.time() + 1.0
    procs = [mp.Process(target=_process, args=(kind, target, secret, n, start_at, seconds, results))
             for n in per_process]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        lat, err = results.get()
        latencies.extend(lat)
        errors += err
    for p in procs:
        p.join()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"rps": len(latencies) / seconds, "p50": q[49] * 1000, "p99": q[98] * 1000, "errors": errors,
            "n": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: receiver default)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    args = parser.parse_args()

    secret = new_secret()
    with benchmark_database("opp_bench_receiver") as url:
        dsn = psycopg_dsn(url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {RAW_TABLE} (LIKE webhook_events INCLUDING ALL)")
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
        from openphone_pipelines.settings import load_settings

        workers = args.workers or load_settings().receiver_worker_count
        extra = {"RECEIVER_THREADS": str(args.threads), "RECEIVER_LOG_LEVEL": "WARNING"}
        rows = []
        with running_receiver(url, [secret], workers=workers, extra_env=extra) as rx:
            for connections in LEVELS:
                measure("receiver", rx.webhook_url, secret, connections, min(args.seconds, 1.0))  # warm-up
                recv = measure("receiver", rx.webhook_url, secret, connections, args.seconds)
                raw = measure("raw", dsn, secret, connections, args.seconds)
                rows.append((connections, recv, raw))

    mode = f"gunicorn {'gthread' if args.threads > 1 else 'sync'}, {workers} workers x {args.threads} threads"
    print(f"\nReceiver vs raw durable inserts ({mode}; synchronous_commit={sync_commit}; "
          f"{args.seconds:g} s per cell; client on the same host)")
    header = (f"{'conns':>5} | {'receiver req/s':>14} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} | "
              f"{'raw ins/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}")
    print(header)
    print("-" * len(header))
    for connections, recv, raw in rows:
        ratio = recv["rps"] / raw["rps"] if raw["rps"] else float("nan")
        print(f"{connections:>5} | {recv['rps']:>14.0f} {recv['p50']:>7.2f} {recv['p99']:>7.2f} "
              f"{recv['errors']:>4} | {raw['rps']:>10.0f} {raw['p50']:>7.2f} {raw['p99']:>7.2f} | {ratio:>5.2f}")
    print("\ntarget: ratio >= 0.50 and receiver p99 < 50 ms at 10 connections")


if __name__ == "__main__":
    main()
