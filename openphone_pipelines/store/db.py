"""Engine creation and schema migration for the app database.

Every URL names its driver (SQLAlchemy 2.1 would otherwise pick psycopg 3 for one library and
psycopg2 for another). The app uses psycopg 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Name the psycopg 3 driver when the URL leaves it out; reject anything that is not Postgres."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got backend {parsed.get_backend_name()!r}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5, connect_timeout: int = 5, pre_ping: bool = True,
                **kwargs) -> Engine:
    """A pooled engine whose connections fail fast when the server is gone (the receiver answers 503).

    `pre_ping=False` saves a round trip per checkout on hot paths that retry a statement once
    themselves when its pooled connection turns out to be dead (see `retry_on_stale_connection`)."""
    url = normalize_url(url)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", connect_timeout)
    return create_engine(
        url,
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=kwargs.pop("max_overflow", 10),
        connect_args=connect_args,
        **kwargs,
    )


def retry_on_stale_connection(action: Callable[[], T]) -> T:
    """Run `action`; if it failed only because a pooled connection had died (Postgres restarted),
    SQLAlchemy has already invalidated the pool, so run it once more on a fresh connection.
    Only for idempotent actions."""
    try:
        return action()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return action()


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent: already-applied revisions are skipped)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
