"""Shared set-up for benchmarks: a real Postgres (DATABASE_URL's server or an embedded one)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from openphone_local.localpg import LocalPostgres, free_port
from openphone_pipelines.store.db import normalize_url, upgrade


@contextmanager
def benchmark_database(prefix: str = "opp_bench") -> Iterator[str]:
    """Yield the URL of a fresh, migrated app database; drop the embedded server afterwards."""
    external = os.environ.get("DATABASE_URL")
    local = None
    data_dir = None
    if external:
        admin = make_url(normalize_url(external))
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="opp-bench-pg-"))
        local = LocalPostgres(data_dir, free_port())
        local.start()
        admin = make_url(local.url())
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        if local is not None:
            local.stop(mode="immediate")
            shutil.rmtree(data_dir, ignore_errors=True)


def psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
