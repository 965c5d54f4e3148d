"""The code location loads as the webserver and daemon load it, with every job, schedule and sensor."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from openphone_pipelines.definitions import defs


def test_definitions_validate_loadable():
    dg.Definitions.validate_loadable(defs)


def test_every_schedule_and_sensor_resolves_with_its_target():
    repo = defs.get_repository_def()
    for schedule in repo.schedule_defs:
        assert defs.resolve_schedule_def(schedule.name).job_name
    for sensor in repo.sensor_defs:
        assert defs.resolve_sensor_def(sensor.name) is not None
    for job in repo.get_all_jobs():
        assert defs.resolve_job_def(job.name) is not None


def test_resources_read_secrets_through_env_vars():
    app_db = defs.resources["app_db"]
    openphone = defs.resources["openphone"]
    assert isinstance(app_db.url, dg.EnvVar) or "EnvVar" in repr(app_db)
    assert "OPENPHONE_API_KEY" in repr(openphone)


def test_dagster_cli_validates_the_location():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "openphone_pipelines.definitions"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_config_value_stops_loading_with_the_variable_named():
    env = {"OPENPHONE_RATE_LIMIT_RPS": "ten", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import openphone_pipelines.definitions"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode != 0
    assert "OPENPHONE_RATE_LIMIT_RPS" in result.stderr
