"""A probe through the sandbox's API, delivered by its webhook engine to the real receiver (gunicorn),
marked received with its latency, and counted in the hourly history, never as a customer message."""

from __future__ import annotations

import base64
import os

import dagster as dg
import pytest
from sqlalchemy import text

from openphone_pipelines.assets.webhook_health_history import webhook_health_history
from openphone_sandbox.testing import start_sandbox
from tests.health.support import probe_env, probe_row, run_probe_job, tick_health_sensor
from tests.support.receiver_server import running_receiver
from tests.support.resources import dagster_resources
from tests.support.waiting import wait_until


@pytest.mark.slow
def test_probe_round_trip_marks_received_with_latency(db, fresh, app_db_url, smtp_server, monkeypatch):
    secret = base64.b64encode(os.urandom(32)).decode()
    with running_receiver(app_db_url, [secret], workers=1) as rx, \
            start_sandbox(webhook_url=rx.webhook_url, webhook_secret=secret, history_days=0) as sandbox:
        probe_env(monkeypatch, sandbox)
        resources = dagster_resources(app_db_url, smtp_server, sandbox)
        with dg.instance_for_test() as instance:
            sent = run_probe_job(instance, resources)
            assert sent["status"] == "sent"
            row = wait_until(lambda: (r := probe_row(fresh, sent["probe_id"])).status == "received" and r, 20,
                             "the probe's webhook", detail=rx.log_tail)
            assert row.sent_message_id and row.received_at is not None
            assert 0 < row.latency_ms < 20_000

            assert "0 probe(s) awaiting" in tick_health_sensor(instance, resources)
            result = dg.materialize([webhook_health_history], instance=instance, resources=resources)
            assert result.success
    with fresh.connect() as conn:
        # Rule 7: the probe's webhook was stored and recognised, but is not customer traffic.
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 0
        assert conn.execute(text(
            "SELECT count(*) FROM webhook_events WHERE processing_status = 'probe'"
        )).scalar_one() >= 1
    metadata = result.asset_materializations_for_node("webhook_health_history")[0].metadata
    assert metadata["success_rate_24h"].value == 1.0
    assert metadata["latency_p50_ms_24h"].value == row.latency_ms
    assert "| 24 h | 1 | 1 | 0 |" in metadata["summary"].value
    assert smtp_server.messages == []
