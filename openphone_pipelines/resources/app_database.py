"""The app database as a Dagster resource: one engine per run, disposed at the end."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from openphone_pipelines.store.db import make_engine


class AppDatabase(dg.ConfigurableResource):
    """Postgres holding messages, webhook events, the retry queue and health checks."""

    url: str

    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = make_engine(self.url)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:  # used outside a run (e.g. a direct call in a script)
            self._engine = make_engine(self.url)
        return self._engine
