"""Receiver fixtures: a Flask test client over the migrated app database, and a shared secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.support.events import new_secret
from webhook_receiver.app import create_app


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def app(db: Engine, app_db_url: str, secret: str) -> Iterator[Flask]:
    """The receiver app on the (emptied) app database, configured with `secret` plus a retired one."""
    application = create_app({"DATABASE_URL": app_db_url, "OPENPHONE_WEBHOOK_SECRETS": [new_secret(), secret]})
    yield application
    application.extensions["openphone_receiver"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def count(engine: Engine, table: str, where: str = "true", **params: object) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
