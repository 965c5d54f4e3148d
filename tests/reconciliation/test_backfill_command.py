"""`openphone-pipelines backfill` against a real dagster-webserver subprocess on Postgres storage."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openphone_local.localpg import free_port
from openphone_pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status partitionNames title }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, dagster_pg_url: str, app_db_url: str) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: \"{dagster_pg_url}\"\ntelemetry:\n  enabled: false\n"
    )
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATABASE_URL": app_db_url, "OPENPHONE_API_KEY": "test-key"}
    log = open(home / "webserver.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-m", "openphone_pipelines.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "webserver.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_backfill_launches_an_asset_backfill_of_the_range(webserver: str, capsys) -> None:
    assert main(["backfill", "--from", "2026-11-01", "--to", "2026-11-03", "--url", webserver]) == 0
    out = capsys.readouterr().out
    backfill_id = out.split()[1]
    assert f"{webserver}/overview/backfills/{backfill_id}" in out
    answer = httpx.post(webserver + "/graphql", json={"query": BACKFILL_QUERY, "variables": {"id": backfill_id}}).json()
    backfill = answer["data"]["partitionBackfillOrError"]
    assert backfill["__typename"] == "PartitionBackfill"
    assert backfill["partitionNames"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert backfill["status"] == "REQUESTED"  # the daemon (not running here) picks it up


def test_backfill_reports_server_side_refusal_and_bad_arguments(webserver: str, capsys) -> None:
    assert main(["backfill", "--from", "2019-01-01", "--to", "2019-01-02", "--url", webserver]) == 1
    assert "backfill not launched" in capsys.readouterr().err
    assert main(["backfill", "--from", "2026-11-03", "--to", "2026-11-01", "--url", webserver]) == 1
    assert "before --from" in capsys.readouterr().err


def test_backfill_reports_an_unreachable_webserver(capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["backfill", "--from", "2026-11-01", "--to", "2026-11-01", "--url", url]) == 1
    assert "cannot reach the Dagster webserver" in capsys.readouterr().err
