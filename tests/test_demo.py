"""`make demo`'s program end to end: everything starts, does its first work, and Ctrl-C stops it all.

Runs the real demo (embedded Postgres, sandbox, gunicorn receiver, SMTP mailbox, `dagster dev`)
in a temporary folder and on free ports, so it never touches a developer's own demo.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import NullPool, create_engine, text

from openphone_local.localpg import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    """Wait for the demo, giving up at once if it exited; failures show the end of its output."""
    return wait_until(predicate, timeout, what, interval=0.5,
                      stop_if=lambda: proc.poll() is not None and f"demo exited ({proc.returncode})",
                      detail=lambda: log.read_text()[-3000:])


def _count(url: str, sql: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_demo_starts_everything_reconciles_probes_and_stops_on_ctrl_c(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_PG_URL", "DAGSTER_HOME")}
    env.update(OPENPHONE_DEMO_DIR=str(tmp_path / "demo"), DAGSTER_PORT=str(free_port()))
    log = tmp_path / "demo.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "openphone_local", "demo"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        banner = _wait(lambda: "Press Ctrl-C" in log.read_text() and log.read_text(), 420, "the banner", proc, log)
        urls = dict(re.findall(r"^\s+(Dagster UI|webhook receiver|app database)\s+(\S+)", banner, re.M))
        dagster, receiver, app_db = urls["Dagster UI"], urls["webhook receiver"], urls["app database"]
        assert "first backfill" in banner and "first health probe" in banner
        assert httpx.get(dagster + "/server_info", timeout=10).status_code == 200
        assert httpx.get(receiver.replace("/webhooks/openphone", "/healthz"), timeout=10).status_code == 200

        # the live sandbox traffic reaches the receiver, the first backfill reconciles what the
        # dropped webhooks missed, and the first probe comes back through the receiver
        _wait(lambda: _count(app_db, "SELECT count(*) FROM messages WHERE first_seen_via = 'webhook'"),
              120, "webhook-fed messages", proc, log)
        _wait(lambda: _count(app_db, "SELECT count(*) FROM messages WHERE first_seen_via = 'reconciliation'"),
              300, "the first backfill's inserts", proc, log)
        _wait(lambda: _count(app_db, "SELECT count(*) FROM webhook_health_checks WHERE status = 'received'"),
              300, "the first probe's webhook", proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the demo did not stop within 120 s of Ctrl-C")
    assert "stopping" in log.read_text()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True).stdout
    detail = subprocess.run(["ps", "-o", "pid,stat,cmd", "-p", ",".join(leftovers.split()) or "1"], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", f"processes still running after Ctrl-C: {detail}"
