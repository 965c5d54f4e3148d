"""Replay failed webhooks (by queue id, receive-time range or all dead) or discard them, directly on DATABASE_URL.

Works without Dagster, so it is usable when the daemon is down. Replaying a resolved row is a
no-op. Exit status: 0 when every replayed row resolved (or there was nothing to replay), 1 when
some are still failing, 2 on bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import sys

from openphone_pipelines import recovery
from openphone_pipelines.settings import load_settings
from openphone_pipelines.store import retry_queue
from openphone_pipelines.store.db import make_engine


def _ids(value: str) -> list[int]:
    try:
        ids = [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ids must be comma-separated integers, got {value!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("no ids given")
    return ids


def _when(value: str):
    try:
        return recovery.parse_when(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pick = parser.add_mutually_exclusive_group(required=True)
    pick.add_argument("--ids", type=_ids, help="failed_webhook_queue ids, comma-separated (e.g. 1,2)")
    pick.add_argument("--from", dest="received_from", type=_when,
                      help="replay events received at or after this ISO time (UTC when naive)")
    pick.add_argument("--all-dead", action="store_true", help="replay every dead row")
    pick.add_argument("--discard", type=_ids, metavar="IDS", help="give up on these rows (needs --note)")
    parser.add_argument("--to", dest="received_to", type=_when,
                        help="with --from: events received before this ISO time")
    parser.add_argument("--note", help="why the rows are discarded (recorded on each row)")
    parser.add_argument("--url", help="SQLAlchemy URL of the app database (default: DATABASE_URL)")


def run(args: argparse.Namespace) -> int:
    if args.received_to is not None and args.received_from is None:
        print("--to needs --from", file=sys.stderr)
        return 2
    if args.discard and not (args.note or "").strip():
        print("--discard needs --note TEXT (why the rows are given up)", file=sys.stderr)
        return 2
    engine = make_engine(args.url or load_settings().require_database_url())
    try:
        if args.discard:
            n = retry_queue.discard(engine, args.discard, args.note.strip())
            print(f"discarded {n} of {len(args.discard)} row(s) (only dead or pending rows can be discarded)")
            return 0
        result = recovery.replay(engine, queue_ids=args.ids, received_from=args.received_from,
                               received_to=args.received_to, all_dead=args.all_dead)
    finally:
        engine.dispose()
    if args.ids:
        skipped = sorted(set(args.ids) - set(result.reset_ids))
        if skipped:
            print(f"not replayed (already resolved, processing, or unknown): {','.join(map(str, skipped))}")
    if not result.reset_ids:
        print("nothing to replay")
        return 0
    print(f"replayed {len(result.reset_ids)} row(s): {len(result.resolved)} resolved, "
          f"{len(result.unresolved)} still failing")
    for row in result.unresolved:
        print(f"  queue id {row.id} (event {row.webhook_event_id}): {row.status}, "
              f"attempts {row.attempts}: {row.last_error or ''}")
    return 1 if result.unresolved else 0
