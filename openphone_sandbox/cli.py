"""`openphone-sandbox` command line: `serve` (default) and `ground-truth`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from .config import GENERATIONS, SandboxConfig


def _traffic_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="traffic seed (same seed + --now = same history)")
    p.add_argument("--now", default=None, help="ISO anchor for history (default: wall clock)")
    p.add_argument("--history-days", type=int, default=3, help="full UTC days of history before today")
    p.add_argument("--messages-per-day", type=int, default=40, help="history messages per UTC day (0 = none)")
    p.add_argument("--no-history", action="store_true", help="start with an empty history (= --messages-per-day 0)")
    p.add_argument("--contacts", type=int, default=40)
    p.add_argument("--conversations-per-line", type=int, default=12)
    p.add_argument("--undelivered-rate", type=float, default=0.05)


EDGES = ("inclusive", "exclusive")
EDGE_DEFAULTS = {"created_after": "inclusive", "created_before": "exclusive",
                 "updated_after": "inclusive", "updated_before": "exclusive"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def _receiver_down(value: str) -> tuple[float, float]:
    a, _, b = value.partition(":")
    return float(a), float(b)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openphone-sandbox", description="Local fake OpenPhone v1 API")
    sub = parser.add_subparsers(dest="command")

    s = sub.add_parser("serve", help="run the API and webhook sender (default)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8790)
    _traffic_args(s)
    s.add_argument("--api-key", default="sandbox-api-key")
    s.add_argument("--webhook-url", default=None)
    s.add_argument("--webhook-secret", default=None, help="base64 (whsec_ prefix for 2026-03-30); generated if absent")
    s.add_argument("--payload-generation", choices=GENERATIONS, default="v2")
    s.add_argument("--drop-rate", type=float, default=0.0)
    s.add_argument("--duplicate-rate", type=float, default=0.0)
    s.add_argument("--reorder-window", type=int, default=0, help="events held and released shuffled")
    s.add_argument("--delay-ms", type=float, default=0.0, help="extra delivery delay, uniform 0..N ms")
    s.add_argument("--receiver-down", type=_receiver_down, action="append", default=[],
                   metavar="START:END", help="seconds after start during which the receiver is 'down'")
    s.add_argument("--retry-schedule", default="0.2,0.5,1,2,5", help="comma-separated seconds")
    s.add_argument("--max-attempts", type=int, default=6)
    s.add_argument("--live-rate", type=float, default=0.0, help="generated messages per second")
    s.add_argument("--rate-limit", type=float, default=10.0, help="requests per second per key")
    s.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    s.add_argument("--error-shape", choices=("flat", "nested"), default="flat")
    s.add_argument("--5xx-rate", dest="error_5xx_rate", type=float, default=0.0)
    s.add_argument("--slow-rate", type=float, default=0.0)
    s.add_argument("--slow-delay-ms", type=float, default=2000.0)
    s.add_argument("--history-webhooks", action="store_true", help="deliver webhooks for history at start")
    s.add_argument("--allow-group-send", action="store_true", help="POST /v1/messages accepts up to 10 `to`")
    s.add_argument("--sent-after", type=float, default=0.5, help="seconds queued -> sent")
    s.add_argument("--delivered-after", type=float, default=1.0, help="seconds sent -> final")
    for edge, default in EDGE_DEFAULTS.items():
        s.add_argument(f"--{edge.replace('_', '-')}-edge", choices=EDGES, default=default,
                       help=f"whether a record exactly on {_camel(edge)} is listed (default {default})")

    g = sub.add_parser("ground-truth", help="print history ground truth as JSON")
    _traffic_args(g)
    g.add_argument("--url", default=None, help="read from a running sandbox instead of generating offline")
    g.add_argument("--created-after", default=None)
    g.add_argument("--created-before", default=None)
    return parser


def _traffic_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SandboxConfig options shared by `serve` and offline `ground-truth`."""
    return {"seed": args.seed, "now": args.now, "history_days": args.history_days,
            "messages_per_day": 0 if args.no_history else args.messages_per_day, "contacts": args.contacts,
            "conversations_per_line": args.conversations_per_line, "undelivered_rate": args.undelivered_rate}


def config_from_args(args: argparse.Namespace, started_at: float) -> SandboxConfig:
    """The SandboxConfig `serve` runs with; receiver-down windows count from started_at (epoch s)."""
    edges = {f"{edge}_inclusive": getattr(args, f"{edge}_edge") == "inclusive" for edge in EDGE_DEFAULTS}
    return SandboxConfig.from_options(
        **_traffic_options(args), **edges, api_key=args.api_key, webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret, payload_generation=args.payload_generation,
        live_rate=args.live_rate, rate_limit=args.rate_limit, retry_after=args.retry_after,
        error_shape=args.error_shape, error_5xx_rate=args.error_5xx_rate, slow_rate=args.slow_rate,
        slow_delay_ms=args.slow_delay_ms, history_webhooks=args.history_webhooks,
        allow_group_send=args.allow_group_send, sent_after_s=args.sent_after,
        delivered_after_s=args.delivered_after,
        retry_schedule=[float(x) for x in args.retry_schedule.split(",") if x.strip()],
        max_attempts=args.max_attempts, drop_rate=args.drop_rate, duplicate_rate=args.duplicate_rate,
        reorder_window=args.reorder_window, delay_ms=args.delay_ms,
        receiver_down=[(started_at + a, started_at + b) for a, b in args.receiver_down],
    )


def _serve(args: argparse.Namespace) -> int:
    import time

    from .server import SandboxServer

    try:
        cfg = config_from_args(args, time.time())
    except ValueError as exc:
        print(f"openphone-sandbox: bad setting: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer(cfg, host=args.host, port=args.port)
    info = server.sandbox.describe()
    info["baseUrl"] = server.base_url
    info["apiUrl"] = server.base_url + "/v1"
    print(json.dumps(info), flush=True)
    print(f"openphone-sandbox listening on {server.base_url} (API under /v1)", file=sys.stderr, flush=True)

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
    return 0


def _ground_truth(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("createdAfter", args.created_after), ("createdBefore", args.created_before)) if v}
    if args.url:
        import httpx

        resp = httpx.get(args.url.rstrip("/") + "/_sandbox/ground-truth", params=params, timeout=60)
        resp.raise_for_status()
        json.dump(resp.json(), sys.stdout, indent=1)
        print()
        return 0
    from .state import Sandbox
    from .truth import ground_truth
    from .util import parse_iso

    sb = Sandbox(SandboxConfig(**_traffic_options(args), webhook_secret=""))  # not started: no threads
    after = parse_iso(args.created_after) if args.created_after else None
    before = parse_iso(args.created_before) if args.created_before else None
    msgs = ground_truth(sb, after, before)
    json.dump({"messages": msgs, "count": len(msgs), "lines": sb.describe()["lines"],
               "anchor": sb.describe()["anchor"]}, sys.stdout, indent=1)
    print()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "ground-truth", "-h", "--help"):
        argv = ["serve", *argv]
    args = build_parser().parse_args(argv)
    if args.command == "ground-truth":
        return _ground_truth(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
