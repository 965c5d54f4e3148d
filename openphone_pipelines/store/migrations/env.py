"""Alembic environment for the app database; the URL comes from the caller's Config."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from openphone_pipelines.store.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            # Two processes starting at once (demo + tests) must not race on the same DDL.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274001)")
            context.run_migrations()


run_migrations_online()
