"""gunicorn settings for the receiver, from the settings (`-c python:webhook_receiver.gunicorn_conf`).

RECEIVER_BIND (default 127.0.0.1:8000), RECEIVER_WORKERS (default 2 x cores + 1, at most 4),
RECEIVER_THREADS (default 1: sync workers; more switches to gthread), RECEIVER_TIMEOUT (30 s),
RECEIVER_LOG_LEVEL (INFO). The app is created per worker (no preload), so each worker has its
own database pool.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from openphone_pipelines.settings import load_settings
from webhook_receiver.logs import logconfig_dict as _logconfig_dict

_settings = load_settings()

wsgi_app = "webhook_receiver.app:create_app()"
bind = _settings.receiver_bind
workers = _settings.receiver_worker_count
threads = _settings.receiver_threads
worker_class = "gthread" if threads > 1 else "sync"
timeout = _settings.receiver_timeout
graceful_timeout = 10
keepalive = 5
preload_app = False
accesslog = None
logconfig_dict = _logconfig_dict(_settings.receiver_log_level)
proc_name = "openphone-receiver"
# gunicorn >= 25 opens one control socket at a fixed per-user path, so two receivers on one host
# would fight over it; it is off unless RECEIVER_CONTROL_SOCKET names a path.
if _settings.receiver_control_socket:
    control_socket = _settings.receiver_control_socket
else:
    control_socket_disable = True


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's Arbiter
    """Fail fast on bad configuration (ConfigError names the variable) and reset metric files."""
    from webhook_receiver.config import load_config

    metrics_dir = load_config().metrics_dir
    if metrics_dir:
        path = Path(metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counters of a previous run must not leak into this one
            stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:  # noqa: ANN001
    """A dead worker's live gauges are dropped; its counters stay summed (prometheus multiprocess)."""
    if _settings.prometheus_multiproc_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001
    """Remove the metrics folder when `openphone-receiver` created it for this run."""
    if _settings.prometheus_multiproc_dir and _settings.receiver_owns_metrics_dir:
        shutil.rmtree(_settings.prometheus_multiproc_dir, ignore_errors=True)
