"""Probe failures: a dropped webhook fails at the timeout with exactly one email; a send whose
outcome is unknown is recorded failed and never resent; a long outage alerts once."""

from __future__ import annotations

import time

import dagster as dg
from sqlalchemy import text

from openphone_pipelines.jobs.health_probe_job import webhook_health_probe_job
from openphone_pipelines.resources import OpenPhoneResource
from openphone_sandbox.testing import start_sandbox
from tests.health.support import probe_env, probe_row, run_probe_job, tick_health_sensor
from tests.support.resources import dagster_resources
from tests.support.waiting import wait_until


def test_dropped_probe_webhook_fails_at_timeout_with_one_email(db, fresh, app_db_url, smtp_server, monkeypatch):
    # Every webhook is dropped by the sandbox (fault injection): the probe can never come back.
    with start_sandbox(webhook_url="http://127.0.0.1:9/unreachable", drop_rate=1.0, history_days=0) as sandbox:
        probe_env(monkeypatch, sandbox, timeout=3)
        resources = dagster_resources(app_db_url, smtp_server, sandbox)
        with dg.instance_for_test() as instance:
            sent = run_probe_job(instance, resources)
            assert sent["status"] == "sent"
            assert "1 probe(s) awaiting" in tick_health_sensor(instance, resources)  # within the timeout
            assert probe_row(fresh, sent["probe_id"]).status == "sent"
            # the probe's message.received is emitted ~1.5 s after the send, and dropped
            wait_until(lambda: sandbox.stats()["by_event"].get("message.received", {}).get("dropped", 0) >= 1,
                       10, "the probe's webhook to be dropped", detail=lambda: str(sandbox.stats()))

            time.sleep(3.2)
            message = tick_health_sensor(instance, resources)
            assert f"timed out: [{sent['probe_id']}]" in message
            for _ in range(3):  # later ticks: nothing new
                tick_health_sensor(instance, resources)
    row = probe_row(fresh, sent["probe_id"])
    assert row.status == "failed" and "no webhook within 3 s" in row.error and row.alerted_at is not None
    mails = smtp_server.wait_for(1)
    time.sleep(0.3)
    assert len(smtp_server.messages) == 1
    assert f"probe {sent['probe_id']} failed" in mails[0]["Subject"]
    assert sandbox.main_line.number not in mails[0].get_payload()  # no phone numbers in alerts


def test_send_outcome_unknown_is_failed_and_never_resent(db, fresh, app_db_url, smtp_server, monkeypatch):
    # OpenPhone answers 500 but (as the real API may) sends the text anyway.
    with start_sandbox(error_5xx_rate=1.0, send_commit_on_5xx=1.0, history_days=0) as sandbox:
        probe_env(monkeypatch, sandbox)
        resources = dagster_resources(app_db_url, smtp_server, sandbox)
        before = len(sandbox.ground_truth(phoneNumberId=sandbox.probe_line.id))
        with dg.instance_for_test() as instance:
            sent = run_probe_job(instance, resources)
            tick_health_sensor(instance, resources)
            tick_health_sensor(instance, resources)
        after = len(sandbox.ground_truth(phoneNumberId=sandbox.probe_line.id))
    assert sent["status"] == "failed"
    row = probe_row(fresh, sent["probe_id"])
    assert row.status == "failed" and row.error.startswith("send outcome unknown")
    assert after - before == 1  # sent once by OpenPhone, and not a second time by us
    assert len(smtp_server.wait_for(1)) == 1
    time.sleep(0.3)
    assert len(smtp_server.messages) == 1  # the job's email; the sensor sees it was alerted


def _probe(conn, nonce: str, status: str, age: str, *, received: bool = False) -> None:
    conn.execute(text(
        "INSERT INTO webhook_health_checks (nonce, from_line, to_number, status, sent_at, received_at,"
        " latency_ms, alerted_at)"
        f" VALUES (:n, 'PNprobe', '+15550000000', :s, now() - interval '{age}',"
        f" CASE WHEN :r THEN now() - interval '{age}' + interval '3 seconds' END, CASE WHEN :r THEN 3000 END,"
        " CASE WHEN :s = 'failed' THEN now() END)"
    ), {"n": nonce, "s": status, "r": received})


def test_no_success_for_two_hours_alerts_once_per_outage(db, app_db_url, smtp_server):
    resources = dagster_resources(app_db_url, smtp_server)
    with dg.instance_for_test() as instance:
        tick_health_sensor(instance, resources)  # a fresh install with no probes is not an outage
        with db.begin() as conn:
            _probe(conn, "ok1", "received", "3 hours", received=True)
            _probe(conn, "bad1", "failed", "2 hours")
            _probe(conn, "bad2", "failed", "1 hour")
        assert "no success for 3.0 h (alerted)" in tick_health_sensor(instance, resources)
        assert "(alerted)" not in tick_health_sensor(instance, resources)
        assert len(smtp_server.wait_for(1)) == 1

        with db.begin() as conn:  # recovery, then a second outage later
            _probe(conn, "ok2", "received", "10 minutes", received=True)
        assert "no success" not in tick_health_sensor(instance, resources)
        with db.begin() as conn:
            conn.execute(text("UPDATE webhook_health_checks SET sent_at = sent_at - interval '2 hours',"
                              " received_at = received_at - interval '2 hours' WHERE nonce = 'ok2'"))
        assert "(alerted)" in tick_health_sensor(instance, resources)
        tick_health_sensor(instance, resources)
    mails = smtp_server.wait_for(2)
    time.sleep(0.3)
    assert len(smtp_server.messages) == 2
    assert all("no successful webhook health probe" in m["Subject"] for m in mails)


def test_probe_job_without_lines_configured_fails_naming_the_variable(db, fresh, app_db_url, smtp_server,
                                                                     monkeypatch):
    monkeypatch.delenv("OPENPHONE_PROBE_FROM", raising=False)
    monkeypatch.setenv("OPENPHONE_PROBE_TO", "+15550000000")
    resources = dagster_resources(app_db_url, smtp_server)
    resources["openphone"] = OpenPhoneResource(api_key="unused", base_url="http://127.0.0.1:9",
                                               app_db=resources["app_db"])
    with dg.instance_for_test() as instance:
        result = webhook_health_probe_job.execute_in_process(instance=instance, resources=resources,
                                                             raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("send_health_probe")
    assert "OPENPHONE_PROBE_FROM" in str(failure.error)
    with fresh.connect() as conn:  # nothing half-recorded
        assert conn.execute(text("SELECT count(*) FROM webhook_health_checks")).scalar_one() == 0
