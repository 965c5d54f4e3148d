"""Migrations build the schema from an empty database, are idempotent and can be rolled back."""

from alembic import command
from sqlalchemy import inspect, text

from openphone_pipelines.store.db import alembic_config, make_engine, upgrade
from openphone_pipelines.store.schema import metadata


def test_upgrade_from_empty_creates_every_table(pg_server):
    url = pg_server.url_for(pg_server.create_database("opp_migr"))
    upgrade(url)
    upgrade(url)  # second run is a no-op
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
            assert conn.execute(text("SELECT message_status_rank('delivered')")).scalar() == 3
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("failed_webhook_queue")}
            assert "ix_failed_webhook_queue_due" in indexes
            uniques = inspect(conn).get_unique_constraints("webhook_events")
            assert [u["column_names"] for u in uniques] == [["event_id"]]
    finally:
        engine.dispose()


def test_downgrade_then_upgrade_round_trips(pg_server):
    url = pg_server.url_for(pg_server.create_database("opp_migr"))
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    try:
        assert "messages" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    upgrade(url)
