"""Reconciliation of one busy day: throttled efficiency at 10 req/s, and throughput with the limit lifted.

Run: .venv/bin/python benchmarks/reconcile.py [--messages 20000] [--conversations 1000] [--rate 10]

Figures printed:
- efficiency = wall time / (API calls / rate) at the real limit (the sandbox enforces it, our
  Postgres-shared limiter paces us); 1.00 would mean not a single request slot was wasted.
- messages reconciled per second with both limits lifted (API walk + batch upsert into Postgres).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import benchmark_database  # noqa: E402
from openphone_pipelines.openphone.client import OpenPhoneClient  # noqa: E402
from openphone_pipelines.openphone.ratelimit import NoLimit  # noqa: E402
from openphone_pipelines.reconciliation import reconcile_window  # noqa: E402
from openphone_pipelines.store.db import make_engine  # noqa: E402
from openphone_pipelines.store.rate_budget import PostgresRateLimiter  # noqa: E402
from openphone_sandbox.testing import start_sandbox  # noqa: E402

ANCHOR = "2026-11-02T00:30:00Z"  # the full day 2026-11-01 is history
DAY = datetime(2026, 11, 1, tzinfo=UTC)


def one_run(url: str, *, messages: int, conversations: int, rate: float | None, concurrency: int) -> dict:
    lines = 2  # the sandbox's traffic lines (main, support)
    options = dict(seed=42, now=ANCHOR, history_days=1, messages_per_day=messages,
                   conversations_per_line=conversations // lines, contacts=min(1500, conversations + 200),
                   group_fraction=0.05, near_midnight_fraction=0.0, rate_limit=rate or 1_000_000)
    engine = make_engine(url, pool_size=concurrency + 2)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE messages, conversations, phone_numbers, api_rate_slots")
    with start_sandbox(**options) as sandbox:
        limiter = PostgresRateLimiter(engine, sandbox.api_key, rate) if rate else NoLimit()
        with OpenPhoneClient(sandbox.api_key, sandbox.base_url, rate_limiter=limiter) as client:
            began = time.monotonic()
            report = reconcile_window(client, engine, DAY, DAY + timedelta(days=1), concurrency=concurrency)
            wall = time.monotonic() - began
    engine.dispose()
    return {"wall": wall, "report": report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with benchmark_database("opp_bench_reconcile") as url:
        throttled = one_run(url, messages=args.messages, conversations=args.conversations, rate=args.rate,
                            concurrency=args.concurrency)
        lifted = one_run(url, messages=args.messages, conversations=args.conversations, rate=None,
                         concurrency=args.concurrency)
    r = throttled["report"]
    ideal = r.api_calls / args.rate
    print(f"day of {r.messages_seen} messages in {r.conversations_scanned} conversations "
          f"({r.lines_scanned} lines), concurrency {args.concurrency}")
    print(f"throttled at {args.rate:g} req/s: {r.api_calls} API calls, {r.pages} pages, {r.rate_limited} x 429, "
          f"wall {throttled['wall']:.1f}s, ideal {ideal:.1f}s -> efficiency {throttled['wall'] / ideal:.3f} "
          f"(target <= 1.15)")
    f = lifted["report"]
    print(f"limit lifted: {f.messages_seen} messages, {f.inserted} inserted, {f.api_calls} API calls in "
          f"{lifted['wall']:.1f}s -> {f.messages_seen / lifted['wall']:.0f} messages reconciled/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
