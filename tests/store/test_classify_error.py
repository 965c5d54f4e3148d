"""The one classification of processing failures (store/processing.py::classify_error), table-tested
with real exceptions: database errors raised by a real Postgres, Python errors raised by parsing."""

from __future__ import annotations

import base64
import json
import random

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text

from openphone_pipelines.openphone.models import Message
from openphone_pipelines.openphone.webhooks import PayloadError, parse_webhook_event
from openphone_pipelines.store.processing import classify_error, database_unavailable

DB_CASES = [
    ("NUL in text (driver DataError)", "INSERT INTO phone_numbers (id) VALUES (:v)", {"v": "a\x00b"}, "permanent"),
    ("unpaired surrogate", "INSERT INTO phone_numbers (id) VALUES (:v)", {"v": "a\ud800"}, "permanent"),
    ("class 22 data exception", "SELECT 1 / 0", {}, "permanent"),
    ("class 23 check violation",
     "INSERT INTO messages (id, direction, status, created_at, first_seen_via)"
     " VALUES ('ACx', 'sideways', 'sent', now(), 'webhook')", {}, "permanent"),
    ("54000 index row too large", "INSERT INTO phone_numbers (id) VALUES (:v)",
     {"v": base64.b64encode(random.Random(1).randbytes(12_000)).decode()}, "permanent"),  # incompressible
    ("57014 statement timeout", "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)", {}, "transient"),
    ("23505 unique violation (a concurrent writer)",
     "INSERT INTO phone_numbers (id) VALUES ('PN1'); INSERT INTO phone_numbers (id) VALUES ('PN1')", {}, "transient"),
]


@pytest.mark.parametrize("label, sql, params, expected", DB_CASES, ids=[c[0] for c in DB_CASES])
def test_database_errors(db: Engine, label: str, sql: str, params: dict, expected: str) -> None:
    with pytest.raises(Exception) as info, db.begin() as conn:
        for statement in sql.split("; "):
            conn.execute(text(statement), params if ":v" in statement else {})
    assert classify_error(info.value) == expected, label
    assert not database_unavailable(info.value) or "timeout" in label


def _raised(action) -> BaseException:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the table needs the real exception
        return exc
    raise AssertionError("expected an exception")


PY_CASES = [
    ("not JSON", lambda: parse_webhook_event(b"{nope"), PayloadError, "permanent"),
    ("deep nesting", lambda: json.loads(b"[" * 100_000), RecursionError, "permanent"),
    ("absurd timestamp", lambda: __import__("datetime").datetime.fromtimestamp(1e300), OverflowError, "permanent"),
    ("schema violation", lambda: Message.model_validate({"id": "AC1"}), ValidationError, "permanent"),
    ("a bug", lambda: {}["missing"], KeyError, "transient"),
    ("network", lambda: (_ for _ in ()).throw(ConnectionError("reset")), ConnectionError, "transient"),
]


@pytest.mark.parametrize("label, action, kind, expected", PY_CASES, ids=[c[0] for c in PY_CASES])
def test_python_errors(label: str, action, kind: type, expected: str) -> None:
    exc = _raised(action)
    assert isinstance(exc, kind)
    assert classify_error(exc) == expected, label
