"""The receiver over Flask's test client: signatures, persistence, processing, probes, probes of health."""

from __future__ import annotations

import json
import time

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from openphone_pipelines.settings import ConfigError
from openphone_pipelines.store import health_checks
from tests.receiver.conftest import count
from tests.support.events import (
    GENERATIONS,
    OUR_NUMBER,
    THEIR_NUMBER,
    delivery,
    event_id,
    later,
    message_event,
    new_secret,
    probe_event,
    sign,
    sign_legacy,
    sign_standard,
)
from webhook_receiver.app import create_app

URL = "/webhooks/openphone"


def post(client: FlaskClient, d) -> tuple[int, dict]:
    resp = client.post(URL, data=d.body, headers=d.headers)
    return resp.status_code, resp.get_json(silent=True) or {}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_each_generation_is_stored_and_processed(client: FlaskClient, fresh: Engine, secret: str,
                                                 generation: str) -> None:
    ev_id, msg_id, d = delivery(generation, secret)
    status, body = post(client, d)
    assert (status, body) == (200, {"status": "stored", "outcome": "processed"})
    with fresh.connect() as conn:
        event = conn.execute(text("SELECT * FROM webhook_events")).one()
        message = conn.execute(text("SELECT * FROM messages")).one()
    assert event.event_id == ev_id and bytes(event.raw_body) == d.body
    assert event.processing_status == "processed" and event.event_type == "message.received"
    assert event.api_version == generation
    assert event.signature_scheme == ("standard-webhooks" if generation == "2026-03-30" else "openphone-legacy")
    assert (message.id, message.status, message.direction, message.first_seen_via) == (
        msg_id, "received", "incoming", "webhook")


def test_redelivery_answers_2xx_and_changes_nothing(client: FlaskClient, fresh: Engine, secret: str) -> None:
    _, _, d = delivery("v4", secret)
    assert post(client, d)[0] == 200
    with fresh.connect() as conn:
        before = conn.execute(text("SELECT processed_at, processing_status FROM webhook_events")).one()
    status, body = post(client, sign(d.body, secret, "v4"))  # a retry is signed afresh
    assert (status, body) == (200, {"status": "duplicate", "outcome": "processed"})
    with fresh.connect() as conn:
        after = conn.execute(text("SELECT processed_at, processing_status FROM webhook_events")).one()
    assert before == after
    assert count(fresh, "webhook_events") == 1 and count(fresh, "messages") == 1


def test_reversed_order_ends_in_the_newest_status(client: FlaskClient, fresh: Engine, secret: str) -> None:
    msg = "AC" + "f" * 32
    _, _, delivered = delivery("v4", secret, event_type="message.delivered", msg_id=msg, status="delivered",
                               updated=later(5))
    _, _, sent = delivery("v4", secret, event_type="message.delivered", msg_id=msg, status="sent",
                          updated=later(1))
    assert post(client, delivered)[0] == 200
    assert post(client, sent)[0] == 200
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT status FROM messages WHERE id = :id"), {"id": msg}).scalar_one() == "delivered"
    assert count(fresh, "webhook_events", "processing_status = 'processed'") == 2


@pytest.mark.parametrize(
    "mutate",
    ["missing", "bad", "stale", "future", "wrong_key", "tampered_body", "stale_standard", "future_standard"],
)
def test_bad_signatures_get_401_and_store_nothing(client: FlaskClient, fresh: Engine, secret: str,
                                                  mutate: str) -> None:
    ev_id, _, body = message_event("v2")
    now = time.time()
    headers = {"content-type": "application/json"}
    if mutate == "bad":
        headers["openphone-signature"] = "hmac;1;" + str(int(now * 1000)) + ";AAAA" + "A" * 40
    elif mutate == "stale":
        headers["openphone-signature"] = sign_legacy(body, secret, int((now - 301) * 1000))
    elif mutate == "future":
        headers["openphone-signature"] = sign_legacy(body, secret, int((now + 301) * 1000))
    elif mutate == "wrong_key":
        headers["openphone-signature"] = sign_legacy(body, new_secret(), int(now * 1000))
    elif mutate == "tampered_body":
        headers["openphone-signature"] = sign_legacy(body, secret, int(now * 1000))
        body = body.replace(b"see you", b"SEE YOU")
    elif mutate == "stale_standard":
        headers.update(sign_standard(body, secret, ev_id, int(now - 301)))
    elif mutate == "future_standard":
        headers.update(sign_standard(body, secret, ev_id, int(now + 301)))
    resp = client.post(URL, data=body, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "invalid signature"}  # nothing that helps an attacker
    for table in ("webhook_events", "messages", "failed_webhook_queue"):
        assert count(fresh, table) == 0


def test_every_configured_secret_verifies(client: FlaskClient, app, fresh: Engine) -> None:
    old, _ = app.extensions["openphone_receiver"].config.secrets
    _, _, d = delivery("v2", old)
    assert post(client, d)[0] == 200


def test_oversize_body_gets_413(client: FlaskClient, fresh: Engine, secret: str) -> None:
    body = b'{"id":"EV1","pad":"' + b"x" * (256 * 1024) + b'"}'
    resp = client.post(URL, data=body, headers=sign(body, secret, "v2").headers)
    assert resp.status_code == 413
    assert count(fresh, "webhook_events") == 0


def test_signed_unparseable_body_is_stored_dead_lettered_and_acknowledged(
        client: FlaskClient, fresh: Engine, secret: str) -> None:
    body = b"{not json at all"
    status, out = post(client, sign(body, secret, "v2"))
    assert status == 200 and out["status"] == "stored"
    assert (out["outcome"], out["error_class"], out["queue_status"]) == ("failed", "permanent", "dead")
    with fresh.connect() as conn:
        event = conn.execute(text("SELECT id, event_id, raw_body, processing_status FROM webhook_events")).one()
        queued = conn.execute(text("SELECT webhook_event_id, error_class, status FROM failed_webhook_queue")).one()
    assert bytes(event.raw_body) == body and event.event_id.startswith("sha256:")
    assert event.processing_status == "failed"
    assert (queued.webhook_event_id, queued.error_class, queued.status) == (event.id, "permanent", "dead")


@pytest.mark.parametrize("payload", [
    {"id": "EVunknowntype", "object": "event", "apiVersion": "v4", "type": "message.teleported",
     "data": {"object": {}}},
    {"id": "EVschema", "object": "event", "apiVersion": "v4", "type": "message.received",
     "data": {"object": {"id": "ACx", "direction": "sideways", "status": "received",
                         "createdAt": "2026-01-01T00:00:00Z"}}},
])
def test_unknown_type_and_schema_violation_are_dead_at_once(client: FlaskClient, fresh: Engine, secret: str,
                                                            payload: dict) -> None:
    body = json.dumps(payload).encode()
    status, out = post(client, sign(body, secret, "v4"))
    assert status == 200 and out["queue_status"] == "dead" and out["error_class"] == "permanent"
    assert count(fresh, "failed_webhook_queue", "status = 'dead'") == 1
    assert count(fresh, "messages") == 0


def test_transient_processing_failure_is_pending_for_the_sweep(client: FlaskClient, fresh: Engine, secret: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    import openphone_pipelines.store.processing as processing

    def flaky(*_args, **_kwargs):
        raise OperationalError("UPDATE messages", {}, Exception("server closed the connection"))

    monkeypatch.setattr(processing, "upsert_messages", flaky)
    status, out = post(client, delivery("v2", secret)[2])
    assert status == 200 and (out["error_class"], out["queue_status"]) == ("transient", "pending")
    with fresh.connect() as conn:
        row = conn.execute(text("SELECT status, next_retry_at > now() AS later FROM failed_webhook_queue")).one()
    assert row.status == "pending" and row.later
    assert count(fresh, "webhook_events") == 1


def test_known_non_message_event_is_stored_and_ignored(client: FlaskClient, fresh: Engine, secret: str) -> None:
    body = json.dumps({"id": event_id(), "object": "event", "apiVersion": "v2", "type": "call.completed",
                       "data": {"object": {"id": "ACcall"}}}).encode()
    assert post(client, sign(body, secret, "v2")) == (200, {"status": "stored", "outcome": "ignored"})
    assert count(fresh, "messages") == 0 and count(fresh, "failed_webhook_queue") == 0


@pytest.mark.parametrize("by", ["nonce", "message_id"])
def test_probe_marks_health_check_and_is_not_a_message(client: FlaskClient, db: Engine, fresh: Engine,
                                                       secret: str, by: str) -> None:
    nonce = "n0nce" + by
    with db.begin() as conn:
        # The probe line pair: the event factory's sender texts our number.
        probe = health_checks.create_probe(conn, nonce=nonce, from_line=THEIR_NUMBER, to_number=OUR_NUMBER)
    if by == "nonce":
        ev_id, msg_id, body = probe_event("v4", nonce)
    else:
        ev_id, msg_id, body = message_event("v4", text="no marker here")
        with db.begin() as conn:
            health_checks.record_probe_sent(conn, probe, msg_id)
    assert post(client, sign(body, secret, "v4")) == (200, {"status": "stored", "outcome": "probe"})
    with fresh.connect() as conn:
        row = conn.execute(text("SELECT status, received_at, latency_ms FROM webhook_health_checks")).one()
    assert row.status == "received" and row.received_at is not None and row.latency_ms >= 0
    assert count(fresh, "messages") == 0


def test_healthz_and_metrics(client: FlaskClient, secret: str) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    post(client, delivery("v2", secret)[2])
    client.post(URL, data=b"{}", headers={"openphone-signature": "hmac;1;1;AAAA"})
    post(client, sign(b"[]", secret, "v2"))  # signed, a JSON array: permanent failure
    text_out = client.get("/metrics").get_data(as_text=True)
    assert 'openphone_receiver_deliveries_total{outcome="stored"} 2.0' in text_out
    assert 'openphone_receiver_deliveries_total{outcome="bad_signature"} 1.0' in text_out
    assert 'openphone_receiver_signature_failures_total{reason="stale"} 1.0' in text_out  # refused before any HMAC
    assert 'openphone_receiver_processing_failures_total{error_class="permanent"} 1.0' in text_out
    assert 'openphone_receiver_retry_queue_depth{status="dead"} 1.0' in text_out
    assert 'openphone_receiver_request_duration_seconds_bucket{endpoint="webhook"' in text_out


def test_database_unreachable_gives_503_not_500(secret: str, fresh: Engine) -> None:
    from openphone_local.localpg import free_port

    dead_url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app({"DATABASE_URL": dead_url, "OPENPHONE_WEBHOOK_SECRETS": secret})
    client = app.test_client()
    bad = client.post(URL, data=b'{"id":"EVx"}', headers={"openphone-signature": "hmac;1;1;AAAA"})
    assert bad.status_code == 401  # the signature is checked before the database is touched
    _, _, d = delivery("v2", secret)
    resp = client.post(URL, data=d.body, headers=d.headers)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.get_json() == {"error": "database unavailable, retry later"}
    assert client.get("/healthz").status_code == 503
    assert client.get("/metrics").status_code == 200  # scrape still works, without queue depth


@pytest.mark.parametrize("overrides, variable", [
    ({"OPENPHONE_WEBHOOK_SECRETS": ""}, "OPENPHONE_WEBHOOK_SECRETS"),
    ({"OPENPHONE_WEBHOOK_SECRETS": "not base64!!"}, "OPENPHONE_WEBHOOK_SECRETS"),
    ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
    ({"RECEIVER_MAX_BODY_BYTES": "lots"}, "RECEIVER_MAX_BODY_BYTES"),
])
def test_bad_config_names_the_variable(app_db_url: str, overrides: dict, variable: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENPHONE_WEBHOOK_SECRETS", raising=False)
    config = {"DATABASE_URL": app_db_url, "OPENPHONE_WEBHOOK_SECRETS": new_secret(), **overrides}
    with pytest.raises(ConfigError, match=variable):
        create_app(config)


def test_config_from_environment(app_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", app_db_url)
    monkeypatch.setenv("OPENPHONE_WEBHOOK_SECRETS", f"{new_secret()}, {new_secret(standard=True)}")
    monkeypatch.setenv("RECEIVER_MAX_BODY_BYTES", "4096")
    app = create_app()
    cfg = app.extensions["openphone_receiver"].config
    assert len(cfg.secrets) == 2 and cfg.max_body_bytes == 4096 and app.config["MAX_CONTENT_LENGTH"] == 4096
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app()
