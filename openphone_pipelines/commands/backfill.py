"""Launch an asset backfill of daily reconciliation partitions through the webserver's GraphQL API.

Same as a backfill launched from the UI: the daemon runs it and honours the asset's
BackfillPolicy (up to 7 days per run), unlike `dagster job backfill`, which makes one run per partition.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from typing import Any

import httpx

from openphone_pipelines.settings import load_settings

DEFAULT_ASSET = "openphone_messages"
MAX_DAYS = 3660

LAUNCH_BACKFILL = """
mutation LaunchReconciliationBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


class BackfillError(Exception):
    """The backfill could not be launched; the message says why, for the operator."""


def partition_names(first: date, last: date) -> list[str]:
    """Daily partition keys from `first` to `last`, both included."""
    if last < first:
        raise BackfillError(f"--to ({last}) is before --from ({first})")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BackfillError(f"{days} days requested; at most {MAX_DAYS} at once")
    return [(first + timedelta(days=i)).isoformat() for i in range(days)]


def build_variables(partitions: list[str], asset: str = DEFAULT_ASSET, title: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "partitionNames": partitions,
        "assetSelection": [{"path": asset.split("/")}],
        "title": title or f"reconcile {partitions[0]} .. {partitions[-1]}",
        "tags": [{"key": "openphone/launched_by", "value": "cli"}],
    }
    return {"backfillParams": params}


def launch_backfill(url: str, variables: dict[str, Any], *, timeout: float = 30.0,
                    transport: httpx.BaseTransport | None = None) -> str:
    """POST the mutation; returns the backfill id or raises BackfillError with the server's reason."""
    endpoint = url.rstrip("/") + "/graphql"
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.post(endpoint, json={"query": LAUNCH_BACKFILL, "variables": variables})
    except httpx.HTTPError as exc:
        raise BackfillError(f"cannot reach the Dagster webserver at {endpoint}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise BackfillError(f"{endpoint} answered HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
    except ValueError as exc:
        raise BackfillError(f"{endpoint} did not answer JSON (is this a Dagster webserver?)") from exc
    if body.get("errors"):
        raise BackfillError("GraphQL error: " + "; ".join(str(e.get("message")) for e in body["errors"]))
    result = (body.get("data") or {}).get("launchPartitionBackfill") or {}
    if result.get("__typename") == "LaunchBackfillSuccess":
        return str(result["backfillId"])
    raise BackfillError(f"{result.get('__typename', 'unknown answer')}: {result.get('message', result)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="first", required=True, type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", required=True, type=date.fromisoformat, help="last day, included")
    parser.add_argument("--url", help="Dagster webserver (default: DAGSTER_WEBSERVER_URL, http://127.0.0.1:3000)")
    parser.add_argument("--asset", default=DEFAULT_ASSET, help="asset key, '/'-separated")
    parser.add_argument("--title", default=None, help="backfill title shown in the UI")


def run(args: argparse.Namespace) -> int:
    args.url = args.url or load_settings().dagster_webserver_url
    try:
        partitions = partition_names(args.first, args.last)
        backfill_id = launch_backfill(args.url, build_variables(partitions, args.asset, args.title))
    except BackfillError as exc:
        print(f"backfill not launched: {exc}", file=sys.stderr)
        return 1
    print(f"backfill {backfill_id} launched: {len(partitions)} partition(s) {partitions[0]} .. {partitions[-1]}")
    print(f"{args.url.rstrip('/')}/overview/backfills/{backfill_id}")
    return 0
