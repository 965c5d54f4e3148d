"""`openphone-local demo` (`make demo`): the whole product on one machine, nothing to configure.

Starts (or reuses) an embedded PostgreSQL with the app and Dagster databases, migrates, then runs
the OpenPhone sandbox (history + live traffic, some webhooks dropped and duplicated), the webhook
receiver under gunicorn, a local SMTP mailbox for alerts, and `dagster dev` (webserver + daemon).
Ctrl-C stops everything it started. Set DATABASE_URL and DAGSTER_PG_URL to use your own server.

Everything it writes goes to the demo folder (`./.local`, or OPENPHONE_DEMO_DIR); everything it
reads comes from the installed packages, so it works the same from a checkout or a wheel.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx

from openphone_local.localpg import LocalPostgres, demo_dir, free_port, project_postgres

BIN = Path(sys.executable).parent  # console scripts of the same installation
SANDBOX_API_KEY = "sandbox-demo-key"
HISTORY_DAYS = 3
LOCATION_NAME = "openphone_pipelines"
WORKSPACE = f"""# Written by openphone-local demo: the code location, loaded from the installed package.
load_from:
  - python_module:
      module_name: openphone_pipelines.definitions
      location_name: {LOCATION_NAME}
"""


def _wait_http(url: str, what: str, logs: Path, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {logs}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f}s; see {logs}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _secret(path: Path) -> str:
    """A webhook signing secret kept between demo runs (base64, like OpenPhone's `key`)."""
    if not path.exists():
        path.write_text(base64.b64encode(os.urandom(32)).decode())
    return path.read_text().strip()


def packaged_dagster_yaml() -> str:
    """The demo's Dagster instance configuration, shipped inside this package."""
    return resources.files("openphone_local").joinpath("dagster.yaml").read_text()


def write_dagster_files(local: Path) -> tuple[Path, Path]:
    """DAGSTER_HOME (with the packaged dagster.yaml) and a workspace file, both in the demo folder."""
    dagster_home = local / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(packaged_dagster_yaml())
    workspace = local / "workspace.yaml"
    workspace.write_text(WORKSPACE)
    return dagster_home, workspace


class Processes:
    """Children started in their own process groups, all stopped together."""

    def __init__(self, logs: Path) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        """Ctrl-C each child's whole process group (what `dagster dev` expects), then insist:
        SIGTERM, then SIGKILL, until no process of any group is left (code servers included)."""
        groups = [proc.pid for _name, proc in reversed(self.children)]
        for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            alive = [pgid for pgid in groups if _group_alive(pgid)]
            if not alive:
                return
            for pgid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in alive):
                for _name, proc in self.children:
                    proc.poll()  # reap the leaders so their groups can empty
                time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _lines(base_url: str) -> tuple[dict, dict]:
    """The sandbox's probe line and the monitored (main) line, as the sandbox describes itself."""
    info = httpx.get(f"{base_url}/_sandbox/info", timeout=10).json()
    return info["probeLine"], info["mainLine"]


def _first_look(dagster_url: str, history_days: int) -> list[str]:
    """Give a newcomer something to look at at once: reconcile the sandbox's history days (an asset
    backfill, exactly as from the UI) and send one health probe instead of waiting for :00."""
    from openphone_pipelines.commands.backfill import BackfillError, build_variables, launch_backfill

    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(history_days, -1, -1)]
    notes = []
    try:
        backfill_id = launch_backfill(dagster_url, build_variables(days, title="demo: reconcile history"))
        notes.append(f"  first backfill      {dagster_url}/overview/backfills/{backfill_id}  ({days[0]} .. {days[-1]})")
    except BackfillError as exc:
        notes.append(f"  (could not launch the first backfill: {exc})")
    launch = httpx.post(f"{dagster_url}/graphql", timeout=30, json={
        "query": "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename"
                 " ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }",
        "variables": {"p": {"selector": {"repositoryLocationName": LOCATION_NAME,
                                         "repositoryName": "__repository__",
                                         "jobName": "webhook_health_probe_job"}, "runConfigData": {}}},
    }).json()
    result = (launch.get("data") or {}).get("launchRun") or {}
    if result.get("__typename") == "LaunchRunSuccess":
        notes.append(f"  first health probe  {dagster_url}/runs/{result['run']['runId']}")
    else:
        notes.append(f"  (could not launch the first health probe: {result or launch.get('errors')})")
    return notes


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _databases(env: dict[str, str], local: Path) -> LocalPostgres | None:
    """Use DATABASE_URL/DAGSTER_PG_URL when set, else start the embedded server; migrate the app DB."""
    from openphone_pipelines.store.db import upgrade

    pg = None
    if not env.get("DATABASE_URL"):
        pg = project_postgres(local)
        print(f"starting embedded PostgreSQL in {pg.data_dir} (port {pg.port}) ...", flush=True)
        pg.start()
        pg.create_database("openphone_app")
        pg.create_database("dagster")
        env["DATABASE_URL"] = pg.url("openphone_app")
        env.setdefault("DAGSTER_PG_URL", pg.url("dagster", driver="psycopg2"))
    elif not env.get("DAGSTER_PG_URL"):
        raise SystemExit("DATABASE_URL is set but DAGSTER_PG_URL is not: name a separate database for Dagster")
    upgrade(env["DATABASE_URL"])
    print("app database migrated", flush=True)
    return pg


def _start_everything(procs: Processes, env: dict[str, str], local: Path) -> list[str]:
    """Start the mailbox, receiver, sandbox and Dagster (in that order); return the banner lines."""
    dagster_home, workspace = write_dagster_files(local)
    sandbox_port, receiver_port, smtp_port = free_port(), free_port(), free_port()
    dagster_port = int(env.get("DAGSTER_PORT") or (3000 if _port_is_free(3000) else free_port()))
    secret = _secret(local / "webhook_secret")
    sandbox_url, receiver_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    env.update(
        DAGSTER_HOME=str(dagster_home),
        OPENPHONE_API_KEY=SANDBOX_API_KEY,
        OPENPHONE_BASE_URL=sandbox_url,
        OPENPHONE_WEBHOOK_SECRETS=secret,
        RECEIVER_BIND=f"127.0.0.1:{receiver_port}",
        RECEIVER_WORKERS=env.get("RECEIVER_WORKERS", "2"),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        ALERT_EMAIL_TO=env.get("ALERT_EMAIL_TO", "operator@example.com"),
        DAGSTER_WEBSERVER_URL=dagster_url,
    )
    mailbox = local / "mailbox"
    procs.start("smtp", [str(BIN / "python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                         "-c", "aiosmtpd.handlers.Mailbox", str(mailbox)], env)
    receiver = procs.start("receiver", [str(BIN / "openphone-receiver")], env)
    _wait_http(f"{receiver_url}/healthz", "the webhook receiver", procs.logs, proc=receiver)
    sandbox = procs.start("sandbox", [
        str(BIN / "openphone-sandbox"), "serve", "--host", "127.0.0.1", "--port", str(sandbox_port),
        "--seed", "7", "--api-key", SANDBOX_API_KEY, "--webhook-url", f"{receiver_url}/webhooks/openphone",
        "--webhook-secret", secret, "--history-days", str(HISTORY_DAYS), "--messages-per-day", "300",
        "--history-webhooks", "--live-rate", "0.2", "--drop-rate", "0.1", "--duplicate-rate", "0.05",
    ], env)
    _wait_http(f"{sandbox_url}/_sandbox/info", "the OpenPhone sandbox", procs.logs, proc=sandbox)
    probe, main_line = _lines(sandbox_url)
    env.update(OPENPHONE_PROBE_FROM=probe["id"], OPENPHONE_PROBE_TO=main_line["number"],
               OPENPHONE_PROBE_LINE_ID=probe["id"])
    dagster = procs.start("dagster", [str(BIN / "dagster"), "dev", "-w", str(workspace),
                                      "-h", "127.0.0.1", "-p", str(dagster_port)], env)
    _wait_http(f"{dagster_url}/server_info", "Dagster", procs.logs, timeout=180, proc=dagster)
    return [
        f"  Dagster UI          {dagster_url}  (Assets > openphone_messages > Materialize)",
        f"  webhook receiver    {receiver_url}/webhooks/openphone  (metrics: {receiver_url}/metrics)",
        f"  OpenPhone sandbox   {sandbox_url}/v1  (truth: {sandbox_url}/_sandbox/ground-truth)",
        f"  alert mailbox       {mailbox}  (SMTP 127.0.0.1:{smtp_port})",
        f"  app database        {env['DATABASE_URL']}",
        f"  logs                {procs.logs}",
        *_first_look(dagster_url, HISTORY_DAYS),
    ]


def main() -> int:
    # Ctrl-C (SIGINT) and a plain kill (SIGTERM) both stop everything, even when the demo was
    # started from a script that left SIGINT ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    local = demo_dir()
    local.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    pg = _databases(env, local)
    procs = Processes(local / "logs")
    try:
        banner = _start_everything(procs, env, local)
        print("\nopenphone_pipelines demo is running:\n" + "\n".join(banner) + "\nPress Ctrl-C to stop everything.",
              flush=True)
        while all(proc.poll() is None for _name, proc in procs.children):
            time.sleep(1)
        dead = [name for name, proc in procs.children if proc.poll() is not None]
        print(f"stopped because {', '.join(dead)} exited; see {procs.logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        procs.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
