"""Receiver throughput and latency over HTTP, three HTTP servers side by side, next to raw durable
single-row inserts, all in the same run on the same database.

1. Servers: the same app (`webhook_receiver.app:create_app`) under gunicorn sync, gunicorn gthread
   and granian WSGI (what `openphone-receiver` runs), measured in turns at 1, 10 and 50 connections:
   req/s, p50, p99 and the servers' own CPU per request (from /proc: the least noisy figure on a
   shared machine). Baseline: one autocommit `INSERT ... ON CONFLICT DO NOTHING` per row into a
   table shaped like webhook_events, synchronous_commit on.
2. Signature cost: the worst unsigned request (a body at the cap, the signature header at its size
   cap full of well-formed in-window entries with distinct timestamps) against a valid delivery,
   sequentially over HTTP on the shipped server: its latency relative to a valid one.
3. /metrics with 300,000 retry-queue rows: the per-scrape GROUP BY the receiver used to run, next to
   a scrape now (queue depth cached per worker).
The load generator runs on the same machine (processes x threads), so figures are a lower bound.

Run: .venv/bin/python benchmarks/receiver.py [--seconds 5]
(uses DATABASE_URL's server when set, otherwise an embedded Postgres in a temp folder)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import benchmark_database, psycopg_dsn  # noqa: E402
from openphone_local.localpg import free_port  # noqa: E402
from tests.support.events import message_event, new_secret, sign  # noqa: E402
from tests.support.receiver_server import REPO_ROOT as ROOT  # noqa: E402
from tests.support.receiver_server import running_receiver  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

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


SERVERS = {
    "gunicorn sync": ["-m", "gunicorn", "-k", "sync", "-w", "{workers_sync}"],
    "gunicorn gthread": ["-m", "gunicorn", "-k", "gthread", "-w", "{workers}", "--threads", "{threads}"],
}


@contextlib.contextmanager
def gunicorn_server(kind: str, url: str, secret: str, workers: int, threads: int) -> Iterator[str]:
    """The same app under gunicorn (what the receiver ran before), for the comparison only."""
    port = free_port()
    args = [a.format(workers=workers, threads=threads, workers_sync=4) for a in SERVERS[kind]]
    env = {**os.environ, "DATABASE_URL": url, "OPENPHONE_WEBHOOK_SECRETS": secret, "RECEIVER_LOG_LEVEL": "WARNING",
           "RECEIVER_THREADS": str(threads if "gthread" in kind else 1),
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-metrics-")}
    proc = subprocess.Popen([sys.executable, *args, "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                             "webhook_receiver.app:create_app()"], env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(base), 30, f"{kind} to start")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        return _get(base, "/healthz")[0] == 200
    except OSError:
        return False


def _get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    target = urlsplit(base)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and all its descendants (Linux /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").glob("*"):
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total


def _server_pid(base: str) -> int:
    port = urlsplit(base).port
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split("pid=")[1].split(",")[0])


def _root_pid(pid: int) -> int:
    """Walk up to the server's master (the process whose parent is not a server process)."""
    while True:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        cmd = Path(f"/proc/{parent}/cmdline").read_bytes()
        if b"gunicorn" not in cmd and b"webhook_receiver" not in cmd:
            return pid
        pid = parent


def worst_unsigned_vs_valid(base: str, secret: str, cap: int, n: int = 60) -> tuple[float, float]:
    """Median latency (ms) of the worst unsigned request and of a valid delivery, sequentially."""
    target = urlsplit(base)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    body = b'{"id":"EVworst","pad":"' + b"x" * (cap - 40) + b'"}'
    now_ms = int(time.time() * 1000)
    entries, header = [], ""
    while True:  # in-window, well-formed, distinct timestamps: every one would be worth an HMAC
        entry = f"hmac;1;{now_ms - len(entries)};{base64.b64encode(os.urandom(32)).decode()}"
        if len(header) + len(entry) + 1 > 4096:
            break
        entries.append(entry)
        header = ",".join(entries)
    worst, valid = [], []
    for _ in range(n):
        for kind in ("worst", "valid"):
            if kind == "worst":
                payload, headers = body, {"openphone-signature": header}
            else:
                _, _, payload = message_event("v2")
                headers = sign(payload, secret, "v2").headers
            t0 = time.perf_counter()
            conn.request("POST", "/webhooks/openphone", body=payload, headers=headers)
            resp = conn.getresponse()
            resp.read()
            (worst if kind == "worst" else valid).append((time.perf_counter() - t0) * 1000)
            assert resp.status == (401 if kind == "worst" else 200), resp.status
    conn.close()
    return statistics.median(worst), statistics.median(valid)


def scrape_cost(base: str, dsn: str, token: str, rows: int = 300_000) -> tuple[float, float]:
    """(ms of the GROUP BY each scrape used to run, ms of a scrape now) with `rows` queue rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO webhook_events (event_id, signature_scheme, raw_body, processing_status)"
                     " SELECT 'EVscrape' || g, 'openphone-legacy', '\\x00', 'failed' FROM generate_series(1, %s) g",
                     (rows,))
        conn.execute("INSERT INTO failed_webhook_queue (webhook_event_id, error_class, status)"
                     " SELECT id, 'permanent', 'dead' FROM webhook_events WHERE event_id LIKE 'EVscrape%%'")
        conn.execute("ANALYZE failed_webhook_queue")
        group_by = []
        for _ in range(20):
            t0 = time.perf_counter()
            conn.execute("SELECT status, count(*) FROM failed_webhook_queue GROUP BY status").fetchall()
            group_by.append((time.perf_counter() - t0) * 1000)
    scrapes = []
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(50):
        t0 = time.perf_counter()
        status, _ = _get(base, "/metrics", auth)
        scrapes.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    return statistics.median(group_by), statistics.median(scrapes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--threads", type=int, default=16, help="threads per gthread/granian worker")
    args = parser.parse_args()

    secret = new_secret()
    token = "bench-token"
    from openphone_pipelines.settings import load_settings

    workers = load_settings().receiver_worker_count
    cap = load_settings().receiver_max_body_bytes
    with benchmark_database("opp_bench_receiver") as url:
        dsn = psycopg_dsn(url)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {RAW_TABLE} (LIKE webhook_events INCLUDING ALL)")
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
        extra = {"RECEIVER_THREADS": str(args.threads), "RECEIVER_LOG_LEVEL": "WARNING",
                 "RECEIVER_METRICS_TOKEN": token, "RECEIVER_DB_POOL_SIZE": "9"}
        with contextlib.ExitStack() as stack:
            bases = {
                "gunicorn sync": stack.enter_context(gunicorn_server("gunicorn sync", url, secret, workers,
                                                                     args.threads)),
                "gunicorn gthread": stack.enter_context(gunicorn_server("gunicorn gthread", url, secret, workers,
                                                                        args.threads)),
                "granian (shipped)": stack.enter_context(running_receiver(url, [secret], workers=workers,
                                                                          extra_env=extra)).url,
            }
            pids = {name: _root_pid(_server_pid(base)) for name, base in bases.items()}
            rows = []
            for connections in LEVELS:
                for name, base in bases.items():
                    webhook = base + "/webhooks/openphone"
                    measure("receiver", webhook, secret, connections, min(args.seconds, 1.0))  # warm-up
                    cpu0 = server_cpu_seconds(pids[name])
                    result = measure("receiver", webhook, secret, connections, args.seconds)
                    result["cpu_ms"] = (server_cpu_seconds(pids[name]) - cpu0) * 1000 / max(result["n"], 1)
                    rows.append((connections, name, result))
                rows.append((connections, "raw insert (baseline)", measure("raw", dsn, secret, connections,
                                                                           args.seconds)))
            shipped = bases["granian (shipped)"]
            worst_ms, valid_ms = worst_unsigned_vs_valid(shipped, secret, cap)
            group_by_ms, scrape_ms = scrape_cost(shipped, dsn, token)

    print(f"\nReceiver: three HTTP servers, same app, same database, same run ({workers} workers each; "
          f"gthread/granian {args.threads} threads; synchronous_commit={sync_commit}; {args.seconds:g} s per cell; "
          "client on the same host)")
    header = (f"{'conns':>5} | {'server':<22} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} {'err':>4} "
              f"{'CPU ms/req':>10} | {'vs raw':>6}")
    print(header)
    print("-" * len(header))
    raw_rps = {c: r["rps"] for c, name, r in rows if name.startswith("raw")}
    for connections, name, r in rows:
        cpu = f"{r['cpu_ms']:>10.2f}" if "cpu_ms" in r else f"{'':>10}"
        print(f"{connections:>5} | {name:<22} {r['rps']:>7.0f} {r['p50']:>7.2f} {r['p99']:>8.2f} {r['errors']:>4} "
              f"{cpu} | {r['rps'] / raw_rps[connections]:>6.3f}")
    print(f"\nworst unsigned request (body {cap} B, signature header 4 KB of in-window entries): "
          f"{worst_ms:.2f} ms vs valid delivery {valid_ms:.2f} ms = {worst_ms / valid_ms:.2f}x (median, sequential)")
    print(f"/metrics with 300,000 queue rows: per-scrape GROUP BY (before) {group_by_ms:.1f} ms; "
          f"scrape now (cached depth) {scrape_ms:.2f} ms")


if __name__ == "__main__":
    main()
