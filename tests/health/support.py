"""Helpers for the health-check tests: Dagster resources pointed at the sandbox and the test SMTP."""

from __future__ import annotations

import time

import dagster as dg
from sqlalchemy import Engine, text

from openphone_pipelines.jobs.health_probe_job import webhook_health_probe_job
from openphone_pipelines.resources import AppDatabase, NotifierResource, OpenPhoneResource
from openphone_pipelines.sensors.probe_verification_sensor import webhook_health_probe_sensor
from tests.recovery.support import RECIPIENT


def health_resources(app_db_url: str, smtp_server, sandbox=None) -> dict:
    app_db = AppDatabase(url=app_db_url)
    out: dict = {
        "app_db": app_db,
        "notifier": NotifierResource(host=smtp_server.host, port=smtp_server.port, recipients=RECIPIENT),
    }
    if sandbox is not None:
        out["openphone"] = OpenPhoneResource(api_key=sandbox.api_key, base_url=sandbox.base_url, app_db=app_db)
    return out


def probe_env(monkeypatch, sandbox, timeout: int | None = None) -> None:
    """The sandbox's dedicated probe line texts its main line, as in production."""
    monkeypatch.setenv("OPENPHONE_PROBE_FROM", sandbox.probe_line.id)
    monkeypatch.setenv("OPENPHONE_PROBE_TO", sandbox.main_line.number)
    if timeout is not None:
        monkeypatch.setenv("OPENPHONE_PROBE_TIMEOUT_SECONDS", str(timeout))


def run_probe_job(instance, resources: dict) -> dict:
    result = webhook_health_probe_job.execute_in_process(instance=instance, resources=resources)
    assert result.success
    return result.output_for_node("send_health_probe")


def tick_health_sensor(instance, resources: dict) -> str:
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        result = webhook_health_probe_sensor.evaluate_tick(ctx)
    assert result.run_requests == []
    return result.skip_message or ""


def probe_row(engine: Engine, probe_id: int):
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM webhook_health_checks WHERE id = :id"), {"id": probe_id}).one()


def wait_for_status(engine: Engine, probe_id: int, status: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        row = probe_row(engine, probe_id)
        if row.status == status or time.monotonic() > deadline:
            return row
        time.sleep(0.1)
