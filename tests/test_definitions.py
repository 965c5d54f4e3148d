"""The code location loads as the webserver and daemon load it, with every job, schedule and sensor."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from openphone_pipelines.definitions import defs

JOBS = {"openphone_reconciliation_job", "openphone_weekly_integrity_job", "webhook_health_probe_job",
        "retry_sweep_job", "replay_failed_webhooks_job", "webhook_failure_monitor_job", "health_probe_cleanup_job",
        "retry_queue_cleanup_job"}
SENSORS = {"webhook_health_probe_sensor", "retry_sweep_sensor", "openphone_check_failure_alerts",
           "openphone_run_failure_alerts"}


def test_definitions_validate_loadable_with_everything_the_location_holds():
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} >= {
        "openphone_messages", "openphone_messages_weekly", "webhook_health_history"}
    assert {job.name for job in repo.get_all_jobs()} >= JOBS
    assert {s.name for s in repo.sensor_defs} == SENSORS
    assert len(repo.schedule_defs) == 8


def test_every_schedule_and_sensor_resolves_with_its_target():
    repo = defs.get_repository_def()
    for schedule in repo.schedule_defs:
        assert defs.resolve_schedule_def(schedule.name).job_name
    for sensor in repo.sensor_defs:
        assert defs.resolve_sensor_def(sensor.name) is not None
    for job in repo.get_all_jobs():
        assert defs.resolve_job_def(job.name) is not None


def test_resources_read_secrets_through_env_vars():
    assert isinstance(defs.resources["app_db"].url, dg.EnvVar)
    assert defs.resources["app_db"].url == "DATABASE_URL"
    assert isinstance(defs.resources["openphone"].api_key, dg.EnvVar)
    assert defs.resources["openphone"].api_key == "OPENPHONE_API_KEY"


def test_dagster_cli_validates_the_location():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "openphone_pipelines.definitions"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variable, value", [("OPENPHONE_RATE_LIMIT_RPS", "ten"),
                                             ("OPENPHONE_PROBE_CRON", "every hour"),
                                             ("OPENPHONE_ALERT_SENSOR_SECONDS", "soon")])
def test_a_bad_config_value_stops_loading_with_the_variable_named(variable: str, value: str):
    env = {variable: value, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [sys.executable, "-c", "import openphone_pipelines.definitions"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and variable in result.stderr
