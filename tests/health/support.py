"""Helpers for the health-probe tests: probe lines from the sandbox, the job and the sensor run the
Dagster way, and the probe's row as stored."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import Engine, text

from openphone_pipelines.jobs.health_probe_job import webhook_health_probe_job
from openphone_pipelines.sensors.probe_verification_sensor import webhook_health_probe_sensor


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
