"""The one settings object: today's defaults, one parser per variable, errors that name the variable
and never echo a secret, and a README that names every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.openphone.ratelimit import process_limiter
from openphone_pipelines.settings import ConfigError, Settings, check_cron, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No product variable set: what a fresh shell has."""
    for field in Settings.model_fields.values():
        monkeypatch.delenv(field.alias, raising=False)
    return monkeypatch


def test_defaults_are_todays_values(clean_env) -> None:
    s = load_settings()
    assert (s.rate_limit_rps, s.reconcile_overlap_minutes, s.settle_after_minutes, s.webhook_coverage_min) == (
        10.0, 10, 120, 0.95)
    assert (s.probe_timeout_seconds, s.alert_failure_rate, s.alert_dead_letters) == (120, 0.05, 1)
    assert (s.smtp_host, s.smtp_port, s.smtp_security) == ("127.0.0.1", 25, "none")
    assert (s.reconcile_cron, s.probe_cron, s.probe_history_cron, s.retry_sweep_cron) == (
        "0 2 * * *", "0 * * * *", "5 * * * *", "*/5 * * * *")
    assert (s.failure_monitor_cron, s.weekly_integrity_cron, s.probe_retention_cron, s.retry_retention_cron) == (
        "0 * * * *", "0 3 * * 0", "0 3 * * *", "0 4 * * 0")
    assert (s.probe_sensor_seconds, s.retry_sensor_seconds, s.alert_sensor_seconds) == (30, 30, 60)
    assert (s.receiver_bind, s.receiver_threads, s.receiver_pool_size, s.receiver_max_body_bytes) == (
        "127.0.0.1:8000", 32, 9, 262144)
    assert 1 <= s.receiver_worker_count <= 4


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "nan", "inf"])
def test_rate_rejects_bad_values_naming_the_variable(clean_env, raw: str) -> None:
    clean_env.setenv("OPENPHONE_RATE_LIMIT_RPS", raw)
    with pytest.raises(ConfigError, match="OPENPHONE_RATE_LIMIT_RPS"):
        load_settings()


def test_rate_is_read_from_the_environment_and_used_by_a_client_without_a_limiter(clean_env) -> None:
    assert load_settings().rate_limit_rps == 10.0
    clean_env.setenv("OPENPHONE_RATE_LIMIT_RPS", "4.5")
    assert load_settings().rate_limit_rps == 4.5
    with OpenPhoneClient("key", "http://127.0.0.1:9") as client:
        assert client.rate_limiter is process_limiter(4.5)


def test_blank_means_unset_and_overrides_win(clean_env) -> None:
    clean_env.setenv("SMTP_PORT", "  ")
    clean_env.setenv("RECEIVER_THREADS", "3")
    s = load_settings({"RECEIVER_MAX_BODY_BYTES": "4096"})
    assert (s.smtp_port, s.receiver_threads, s.receiver_pool_size, s.receiver_max_body_bytes) == (25, 3, 4, 4096)


@pytest.mark.parametrize("variable, value", [
    ("SMTP_PORT", "70000"), ("SMTP_SECURITY", "tls"), ("RECEIVER_THREADS", "0"), ("RECEIVER_LOG_LEVEL", "loud"),
    ("OPENPHONE_PROBE_TIMEOUT_SECONDS", "0"), ("OPENPHONE_ALERT_DEAD_LETTERS", "0"),
    ("OPENPHONE_RECONCILE_START_DATE", "yesterday"), ("OPENPHONE_PROBE_FROM", "5550100"),
    ("OPENPHONE_PROBE_TO", "PN123"), ("OPENPHONE_PROBE_SENSOR_SECONDS", "0"),
])
def test_a_bad_value_names_its_variable(clean_env, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_secrets_are_never_echoed(clean_env) -> None:
    clean_env.setenv("DATABASE_URL", "mysql://app:hunter2@db/app")
    clean_env.setenv("OPENPHONE_WEBHOOK_SECRETS", "c2VjcmV0,not-base64-s3cr3t!")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "DATABASE_URL" in message and "OPENPHONE_WEBHOOK_SECRETS" in message and "secret #2" in message
    assert "hunter2" not in message and "s3cr3t" not in message
    clean_env.setenv("DATABASE_URL", "postgresql://app:hunter2@db/app")
    clean_env.setenv("OPENPHONE_WEBHOOK_SECRETS", "c2VjcmV0")
    clean_env.setenv("SMTP_PASSWORD", "hunter3")
    s = load_settings()
    assert "hunter2" not in repr(s) and "hunter3" not in repr(s)
    assert s.require_database_url() == "postgresql+psycopg://app:hunter2@db/app"  # driver named


def test_what_only_some_processes_need_is_demanded_by_them(clean_env) -> None:
    s = load_settings()
    for demand, variable in ((s.require_database_url, "DATABASE_URL"),
                             (s.require_webhook_secrets, "OPENPHONE_WEBHOOK_SECRETS"),
                             (s.require_probe_lines, "OPENPHONE_PROBE_FROM")):
        with pytest.raises(ConfigError, match=variable):
            demand()
    lines = load_settings({"OPENPHONE_PROBE_FROM": "PN1", "OPENPHONE_PROBE_TO": "+15550100"}).require_probe_lines()
    assert (lines.from_line, lines.to_number) == ("PN1", "+15550100") and "+1555" not in repr(lines)


@pytest.mark.parametrize("cron", ["0 2 * * *", "*/5 * * * *", "0 3 * * 0", "0,30 8-18 * * MON-FRI", "15 4 1 JAN *"])
def test_valid_cron_expressions_pass(cron: str) -> None:
    assert check_cron(cron) == cron


@pytest.mark.parametrize("cron", ["every hour", "* * * *", "61 * * * *", "0 24 * * *", "*/0 * * * *", "5-1 * * * *"])
def test_an_invalid_cron_names_its_variable(clean_env, cron: str) -> None:
    clean_env.setenv("OPENPHONE_RETRY_SWEEP_CRON", cron)
    with pytest.raises(ConfigError, match="OPENPHONE_RETRY_SWEEP_CRON"):
        load_settings()


def test_readme_configuration_table_names_every_variable() -> None:
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    internal = {"OPENPHONE_RECEIVER_OWNS_METRICS_DIR"}  # set by openphone-receiver for its server, not by people
    missing = {f.alias for f in Settings.model_fields.values()} - documented - internal
    assert not missing, f"README's configuration table does not name: {sorted(missing)}"
