"""Pins what must agree between Python and the migrated database: the forward-only status order
(STATUS_RANK and SQL's message_status_rank()) and the ORM models, column by column."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.dialects import postgresql

from openphone_pipelines.openphone.models import STATUS_RANK, UNSETTLED_STATUSES
from openphone_pipelines.store.schema import metadata


@pytest.mark.parametrize("status", sorted(STATUS_RANK))
def test_python_and_sql_rank_every_status_alike(fresh: Engine, status: str) -> None:
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT message_status_rank(:s)"), {"s": status}).scalar_one() == STATUS_RANK[status]


def test_the_status_sets_agree(fresh: Engine) -> None:
    """The statuses Python ranks are exactly those the table accepts; anything else ranks 0 in SQL."""
    with fresh.connect() as conn:
        accepted = conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_messages_status'"
        )).scalar_one()
        unknown = conn.execute(text("SELECT message_status_rank('bogus')")).scalar_one()
    assert {s for s in accepted.split("'")[1::2]} == set(STATUS_RANK)
    assert unknown == 0 and min(STATUS_RANK.values()) > 0
    assert set(UNSETTLED_STATUSES) < set(STATUS_RANK)


def test_orm_models_match_the_migrated_database(fresh: Engine) -> None:
    """Alembic's autogenerate finds nothing to migrate (tables, columns, types, defaults, indexes)."""
    with fresh.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []


def test_every_column_matches_in_type_nullability_and_default(fresh: Engine) -> None:
    """The same, spelled out per column, so a difference autogenerate overlooks still shows."""
    inspector = inspect(fresh)
    for table in metadata.sorted_tables:
        live = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(live) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            db_column = live[column.name]
            where = f"{table.name}.{column.name}"
            dialect = postgresql.dialect()
            assert db_column["type"].compile(dialect=dialect) == column.type.compile(dialect=dialect), where
            assert db_column["nullable"] == column.nullable, where
            assert (db_column["default"] is not None) == (
                column.server_default is not None or (column.primary_key and column.autoincrement is True)
            ), where
        checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert checks == {c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"}, table.name
