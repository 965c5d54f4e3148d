"""Batch-upsert throughput beside COPY into the same table shape, measured in the same run.

Run: .venv/bin/python benchmarks/upsert.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import benchmark_database, psycopg_dsn  # noqa: E402
from openphone_pipelines.openphone.models import Message  # noqa: E402
from openphone_pipelines.store.db import make_engine  # noqa: E402
from openphone_pipelines.store.messages import upsert_messages  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def make_messages(n: int, status: str, minutes: int) -> list[Message]:
    return [
        Message.model_validate({
            "id": f"AC{i:032x}", "direction": "outgoing", "from": "+15550000001", "to": ["+15550000002"],
            "text": "benchmark message body of a typical length, about sixty characters",
            "status": status, "phoneNumberId": "PNbench001", "conversationId": f"CN{i % 1000:032x}",
            "userId": "USbench001", "createdAt": (T0 + timedelta(seconds=i)).isoformat(),
            "updatedAt": (T0 + timedelta(seconds=i, minutes=minutes)).isoformat(),
        })
        for i in range(n)
    ]


def copy_baseline(url: str, messages: list[Message]) -> float:
    """COPY the same rows into an empty table of the same shape (indexes included)."""
    with psycopg.connect(psycopg_dsn(url)) as conn:
        conn.execute("CREATE TABLE messages_copy (LIKE messages INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY messages_copy (id, phone_number_id, conversation_id, direction, from_number, to_numbers,"
            " text, status, user_id, created_at, updated_at, first_seen_via) FROM STDIN"
        ) as copy:
            for m in messages:
                copy.write_row((m.id, m.phone_number_id, m.conversation_id, m.direction, m.from_number,
                                m.to_numbers, m.text, m.status, m.user_id, m.created_at, m.updated_at,
                                "reconciliation"))
        conn.commit()
        return time.perf_counter() - started


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    n = args.rows
    queued, delivered = make_messages(n, "queued", 0), make_messages(n, "delivered", 5)
    with benchmark_database() as url:
        engine = make_engine(url)
        t_copy = copy_baseline(url, queued)
        t_insert, c1 = timed(lambda: upsert_messages(engine, queued, via="webhook"))
        t_same, c2 = timed(lambda: upsert_messages(engine, queued, via="reconciliation"))
        t_advance, c3 = timed(lambda: upsert_messages(engine, delivered, via="reconciliation"))
        engine.dispose()
    print(f"rows per run: {n:,} (batches of 1,000, one statement each)")
    print(f"{'operation':<44}{'seconds':>9}{'rows/s':>12}{'vs COPY':>9}")
    for label, seconds in (
        ("COPY into same table shape (baseline)", t_copy),
        (f"upsert, all new ({c1.inserted:,} inserted)", t_insert),
        (f"upsert, all unchanged ({c2.unchanged:,} unchanged)", t_same),
        (f"upsert, status advanced ({c3.updated:,} updated)", t_advance),
    ):
        print(f"{label:<44}{seconds:>9.3f}{n / seconds:>12,.0f}{t_copy / seconds:>9.2f}")


if __name__ == "__main__":
    main()
