"""`openphone_local` works from an installed wheel: nothing is looked up in the checkout.

The wheel is built from this checkout and installed (without dependencies) into a temporary folder
that goes first on PYTHONPATH; every command then runs from an unrelated working directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("openphone_pipelines", "webhook_receiver", "openphone_sandbox", "openphone_local")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages-like folder holding this project installed from its wheel (built from a copy of
    the sources, so the build leaves nothing behind in the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = (base / "dist").glob("openphone_pipelines-*.whl")
    site = base / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return site


def _run(site: Path, cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENPHONE_DEMO_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_reads_its_files_from_the_installed_package(installed: Path, tmp_path: Path) -> None:
    out = _run(installed, tmp_path, "-c",
               "import openphone_local.demo as d; from pathlib import Path;"
               "home, ws = d.write_dagster_files(Path('.local'));"
               "print(d.__file__); print((home / 'dagster.yaml').read_text()); print(ws.read_text())")
    module_file, _, written = out.partition("\n")
    assert Path(module_file).is_relative_to(installed)  # not the checkout's copy
    assert "env: DAGSTER_PG_URL" in written  # the packaged dagster.yaml, copied into DAGSTER_HOME
    assert "module_name: openphone_pipelines.definitions" in written
    assert (tmp_path / ".local" / "dagster_home" / "dagster.yaml").exists()


def test_postgres_url_uses_a_demo_folder_under_the_current_directory(installed: Path, tmp_path: Path) -> None:
    url = _run(installed, tmp_path, "-m", "openphone_local", "postgres", "url", "--database", "openphone_app").strip()
    port = (tmp_path / ".local" / "postgres.port").read_text().strip()
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/openphone_app"
