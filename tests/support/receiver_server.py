"""Run the real receiver (`openphone-receiver`: granian serving the Flask app) as a subprocess for end-to-end tests.

    with running_receiver(app_db_url, [secret]) as rx:
        httpx.post(rx.webhook_url, ...)

The server listens on a free 127.0.0.1 port; the block starts once /healthz answers 200 and every
worker has booted, and the server is stopped (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from openphone_local.localpg import free_port
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Live child pids of `pid` (Linux /proc), i.e. the server's workers."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(set(out))


@dataclass
class RunningReceiver:
    """A live receiver: base `url`, `webhook_url`, master `pid`, and where its log goes."""

    url: str
    webhook_url: str
    pid: int
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def worker_pids(self) -> list[int]:
        return _children(self.pid)

    def wait_for_workers(self, count: int, timeout: float = 30.0, exclude: set[int] | None = None) -> list[int]:
        """Wait until `count` workers (none of `exclude`) are alive and /healthz answers."""

        def ready() -> list[int]:
            pids = [p for p in self.worker_pids() if p not in (exclude or set())]
            return pids if len(pids) >= count and _healthy(self.url) else []

        return wait_until(ready, timeout, f"{count} healthy receiver worker(s)", detail=self.log_tail)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_receiver(
    database_url: str,
    secrets: list[str],
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[RunningReceiver]:
    """Start `python -m webhook_receiver.launcher` on a free port; yield once it is healthy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "DATABASE_URL": database_url,
        "OPENPHONE_WEBHOOK_SECRETS": ",".join(secrets),
        "RECEIVER_BIND": f"127.0.0.1:{port}",
        "RECEIVER_WORKERS": str(workers),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log_dir = Path(tempfile.mkdtemp(prefix="opp-receiver-"))
    log_path = log_dir / "receiver.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webhook_receiver.launcher"], cwd=REPO_ROOT, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    rx = RunningReceiver(base, base + "/webhooks/openphone", proc.pid, log_path, proc)
    try:
        wait_until(lambda: _healthy(base) and len(rx.worker_pids()) >= workers, startup_timeout, "the receiver to start",
                   stop_if=lambda: proc.poll() is not None and f"receiver exited with {proc.returncode}",
                   detail=rx.log_tail)
        yield rx
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
