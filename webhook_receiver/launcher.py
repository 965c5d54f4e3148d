"""`openphone-receiver`: validate the configuration, then exec the granian server (webhook_receiver/serving.py).

Exec (not a child process) keeps one pid for supervisors and signals: SIGTERM to this pid is a
graceful shutdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from openphone_pipelines.settings import ConfigError, child_environment


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="openphone-receiver",
        description="Run the OpenPhone webhook receiver under granian (configured by environment; "
                    "see webhook_receiver/README.md). Options override the matching variables.",
    )
    parser.add_argument("--bind", help="host:port (RECEIVER_BIND, default 127.0.0.1:8000)")
    parser.add_argument("--workers", type=int, help="worker processes (RECEIVER_WORKERS)")
    parser.add_argument("--threads", type=int, help="Python threads per worker (RECEIVER_THREADS)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # The server and its workers read the settings from the environment this process hands over.
    env = child_environment(RECEIVER_BIND=args.bind,
                            RECEIVER_WORKERS=None if args.workers is None else str(args.workers),
                            RECEIVER_THREADS=None if args.threads is None else str(args.threads))
    try:
        from webhook_receiver.config import load_config

        config = load_config(env)  # every variable, RECEIVER_* included, plus what the receiver requires
    except ConfigError as exc:
        print(f"openphone-receiver: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print("openphone-receiver: configuration OK")
        return 0
    if not config.metrics_dir:
        # Several workers: metrics must be merged across processes (see metrics.py).
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="openphone-receiver-metrics-")
        env["OPENPHONE_RECEIVER_OWNS_METRICS_DIR"] = "1"
    cmd = [sys.executable, "-m", "webhook_receiver.serving"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
