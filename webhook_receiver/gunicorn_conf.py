"""gunicorn settings for the receiver, read from the environment (`-c python:webhook_receiver.gunicorn_conf`).

RECEIVER_BIND (default 127.0.0.1:8000), RECEIVER_WORKERS (default 2 x cores + 1, at most 4),
RECEIVER_THREADS (default 1: sync workers; more switches to gthread), RECEIVER_TIMEOUT (30 s),
RECEIVER_LOG_LEVEL (INFO). The app is created per worker (no preload), so each worker has its
own database pool.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from openphone_pipelines.settings import env_int, env_str
from webhook_receiver.logs import logconfig_dict as _logconfig_dict

OWNED_METRICS_DIR_ENV = "OPENPHONE_RECEIVER_OWNS_METRICS_DIR"


def default_workers() -> int:
    """2 x cores + 1 (gunicorn's rule), capped at 4: on small boxes more only adds queueing."""
    return max(1, min(2 * (os.cpu_count() or 1) + 1, 4))


wsgi_app = "webhook_receiver.app:create_app()"
bind = env_str("RECEIVER_BIND", "127.0.0.1:8000")
workers = env_int("RECEIVER_WORKERS", default_workers(), minimum=1, maximum=64)
threads = env_int("RECEIVER_THREADS", 1, minimum=1, maximum=64)
worker_class = "gthread" if threads > 1 else "sync"
timeout = env_int("RECEIVER_TIMEOUT", 30, minimum=1, maximum=600)
graceful_timeout = 10
keepalive = 5
preload_app = False
accesslog = None
logconfig_dict = _logconfig_dict(env_str("RECEIVER_LOG_LEVEL", "INFO") or "INFO")
proc_name = "openphone-receiver"
# gunicorn >= 25 opens one control socket at a fixed per-user path, so two receivers on one host
# would fight over it; it is off unless RECEIVER_CONTROL_SOCKET names a path.
_control_socket = env_str("RECEIVER_CONTROL_SOCKET")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Fail fast on bad configuration (ConfigError names the variable) and reset metric files."""
    from webhook_receiver.config import load_config

    load_config()
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        path = Path(metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counters of a previous run must not leak into this one
            stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:  # noqa: ANN001
    """A dead worker's live gauges are dropped; its counters stay summed (prometheus multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001
    """Remove the metrics folder when `openphone-receiver` created it for this run."""
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir and os.environ.get(OWNED_METRICS_DIR_ENV) == "1":
        shutil.rmtree(metrics_dir, ignore_errors=True)
