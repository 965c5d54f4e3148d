"""The receiver attacked from outside, over HTTP against the shipped server (`openphone-receiver`)
with real Postgres: each test reproduces one failure of issue #10 and checks the answer and the
committed state from a fresh connection."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from openphone_pipelines.openphone.probes import probe_text
from openphone_pipelines.recovery import sweep_due_retries
from openphone_pipelines.store import health_checks
from openphone_sandbox.testing import start_sandbox
from tests.receiver.conftest import count
from tests.support.events import (
    delivery,
    event_id,
    message_event,
    new_secret,
    sign,
    sign_legacy,
    sign_standard,
)
from tests.support.receiver_server import RunningReceiver, running_receiver

pytestmark = pytest.mark.slow
SECRET = new_secret()
TOKEN = "metrics-" + base64.b16encode(os.urandom(8)).decode()
CAP = 256 * 1024


@pytest.fixture(scope="module")
def rx(app_db_url: str) -> Iterator[RunningReceiver]:
    env = {"RECEIVER_LOCK_TIMEOUT_MS": "500", "RECEIVER_METRICS_TOKEN": TOKEN,
           "RECEIVER_QUEUE_DEPTH_CACHE_SECONDS": "3600"}
    with running_receiver(app_db_url, [new_secret(), SECRET], workers=2, extra_env=env) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


def _post(http: httpx.Client, rx: RunningReceiver, body: bytes, headers) -> httpx.Response:
    return http.post(rx.webhook_url, content=body, headers=headers)


def _queue_row(fresh: Engine) -> tuple:
    with fresh.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT e.event_id, e.processing_status, q.status, q.error_class, q.attempts, q.last_error"
            " FROM webhook_events e LEFT JOIN failed_webhook_queue q ON q.webhook_event_id = e.id")).one())


# ------------------------------------------------------------------ 1. signature cost is bounded

def _entry(ts_ms: int, digest: bytes) -> str:
    return f"hmac;1;{ts_ms};{base64.b64encode(digest).decode()}"


def test_only_the_first_entries_are_examined(rx, db, fresh, http) -> None:
    _, _, body = message_event("v4")
    now_ms = int(time.time() * 1000)
    decoys = ",".join(_entry(now_ms - i, os.urandom(32)) for i in range(5))
    valid = sign_legacy(body, SECRET, now_ms)
    assert _post(http, rx, body, {"openphone-signature": f"{decoys},{valid}"}).status_code == 401
    assert count(fresh, "webhook_events") == 0
    four = ",".join(_entry(now_ms - i, os.urandom(32)) for i in range(4))
    assert _post(http, rx, body, {"openphone-signature": f"{four},{valid}"}).status_code == 200


def test_oversized_signature_header_is_refused_whatever_it_holds(rx, db, fresh, http) -> None:
    _, _, body = message_event("v4")
    valid = sign_legacy(body, SECRET, int(time.time() * 1000))
    padded = valid + "," + ",".join(["hmac;1;1;x"] * 500)  # ~5 KB, the valid entry first
    assert _post(http, rx, body, {"openphone-signature": padded}).status_code == 401
    assert count(fresh, "webhook_events") == 0


def test_repeated_standard_signature_lines_count_like_repeated_legacy_lines(rx, db, fresh, http) -> None:
    ev_id, _, body = message_event("2026-03-30")
    signed = sign_standard(body, SECRET, ev_id, int(time.time()))
    bogus = "v1," + base64.b64encode(os.urandom(32)).decode()
    headers = [("webhook-id", ev_id), ("webhook-timestamp", signed["webhook-timestamp"]),
               ("webhook-signature", bogus), ("webhook-signature", signed["webhook-signature"])]
    resp = _post(http, rx, body, headers)
    assert resp.status_code == 200 and resp.json()["status"] == "stored"
    legacy_body = message_event("v4")[2]
    now_ms = int(time.time() * 1000)
    legacy = [("openphone-signature", _entry(now_ms, os.urandom(32))),
              ("openphone-signature", sign_legacy(legacy_body, SECRET, now_ms))]
    assert _post(http, rx, legacy_body, legacy).status_code == 200


# ------------------------------------------------------------------ 2. slow clients

def _trickle(port: int, prefix: bytes, head: bytes, stop: threading.Event, opened: list[int]) -> None:
    """One connection sending `prefix` at once, then `head` one byte per second until told to stop."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(prefix)
            opened.append(1)
            for i in range(len(head)):
                sock.sendall(head[i:i + 1])
                if stop.wait(1.0):
                    return
    except OSError:
        return


@pytest.mark.parametrize("part", ["headers", "body"])
def test_fifty_slow_clients_do_not_starve_valid_webhooks(rx, db, fresh, part: str) -> None:
    port = int(rx.url.rsplit(":", 1)[1])
    if part == "headers":  # one header byte per second
        prefix, head = b"", b"POST /webhooks/openphone HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    else:  # whole headers, then one body byte per second
        prefix, head = b"POST /webhooks/openphone HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", b"{" * 100
    stop, opened = threading.Event(), []
    slow = [threading.Thread(target=_trickle, args=(port, prefix, head, stop, opened), daemon=True)
            for _ in range(50)]
    for t in slow:
        t.start()
    try:
        while len(opened) < 50:
            time.sleep(0.05)
        time.sleep(3)  # every slow connection is well into its trickle
        stored = []
        with httpx.Client(timeout=1.0) as quick:  # each valid webhook must be answered within a second
            for _ in range(10):
                ev_id, _, d = delivery("v4", SECRET)
                assert quick.post(rx.webhook_url, content=d.body, headers=d.headers).status_code == 200
                stored.append(ev_id)
            assert quick.get(rx.url + "/healthz").status_code == 200
    finally:
        stop.set()
        for t in slow:
            t.join(timeout=5)
    assert count(fresh, "webhook_events", "event_id = ANY(:ids)", ids=stored) == 10


# ------------------------------------------------------------------ 3. the event's own DB errors

def _payload(**overrides) -> dict:
    _, _, body = message_event("v4")
    payload = json.loads(body)
    payload.update(overrides)
    return payload


@pytest.mark.parametrize("case", ["nul_id", "nul_type", "nul_api_version", "long_id", "long_webhook_id"])
def test_events_the_index_cannot_hold_are_stored_not_refused(rx, db, fresh, http, case: str) -> None:
    long_id = "EV" + "".join(random.Random(3).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=3000))
    if case == "long_webhook_id":
        body = message_event("2026-03-30")[2]
        headers = sign_standard(body, SECRET, long_id, int(time.time()))
    else:
        payload = {"nul_id": _payload(id="EV\u0000evil"), "nul_type": _payload(type="message.received\u0000"),
                   "nul_api_version": _payload(apiVersion="v4\u0000"), "long_id": _payload(id=long_id)}[case]
        body = json.dumps(payload).encode()
        headers = sign(body, SECRET, "v4").headers
    resp = _post(http, rx, body, headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "stored"
    with fresh.connect() as conn:
        row = conn.execute(text("SELECT event_id, raw_body FROM webhook_events")).one()
    assert bytes(row.raw_body) == body
    if case in ("nul_id", "long_id", "long_webhook_id"):
        assert row.event_id.startswith("sha256:")
    assert http.get(rx.url + "/healthz").status_code == 200  # it agrees: the database is fine
    # the same delivery again is a duplicate of the stored event, not a second row
    assert _post(http, rx, body, headers).json()["status"] == "duplicate"
    assert count(fresh, "webhook_events") == 1


# ------------------------------------------------------------------ 4. permanent means permanent

def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("case", ["deep_nesting", "absurd_timestamp", "nul_text", "huge_message_id"])
def test_payload_faults_are_dead_at_once_with_their_reason(rx, db, fresh, http, case: str) -> None:
    ev_id = event_id()
    noise = "".join(random.Random(4).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=6000))
    _, _, base = message_event("v4", ev_id=ev_id)
    payload = json.loads(base)
    obj = payload["data"]["object"]
    if case == "deep_nesting":
        body = base[:-1] + b',"extra":' + _nested(100_000).encode() + b"}"
    else:
        if case == "absurd_timestamp":
            payload["createdAt"] = 1e300
        elif case == "nul_text":
            obj["text"] = "hello\u0000world"
        else:
            obj["id"] = "AC" + noise
        body = json.dumps(payload).encode()
    resp = _post(http, rx, body, sign(body, SECRET, "v4").headers)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["error_class"], resp.json()["queue_status"]) == ("permanent", "dead")
    stored_id, processing, status, error_class, attempts, error = _queue_row(fresh)
    assert stored_id == ev_id  # deep nesting keeps the body's own id as the dedupe key
    assert (processing, status, error_class, attempts) == ("failed", "dead", "permanent", 0)
    assert error and "\x00" not in error and len(error) <= 500


# ------------------------------------------------------------------ 5. only our probes are probes

def test_a_text_quoting_the_probe_marker_is_a_customer_message(rx, db, fresh) -> None:
    with start_sandbox(webhook_url=rx.webhook_url, webhook_secret=SECRET, history_days=0) as sb:
        probe_number, main_number = sb.probe_line.number, sb.main_line.number
        with db.begin() as conn:
            health_checks.create_probe(conn, nonce="c0ffee01", from_line=probe_number, to_number=main_number)
        unknown = sb.simulate_inbound(text=probe_text("deadbeef"), sender="+14155550123")["ids"][0]
        wrong_sender = sb.simulate_inbound(text=probe_text("c0ffee01"), sender="+14155550124")["ids"][0]
        ours = sb.simulate_inbound(text=probe_text("c0ffee01"), sender=probe_number)["ids"][0]
        assert sb.wait_for_deliveries(timeout=20)
    with fresh.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM messages")).scalars())
        outcomes = dict(conn.execute(text(
            "SELECT processing_status, count(*) FROM webhook_events GROUP BY 1")).all())
        probe = conn.execute(text("SELECT status, received_at FROM webhook_health_checks")).one()
    assert {unknown, wrong_sender} <= stored and ours not in stored
    assert outcomes == {"processed": 2, "probe": 1}
    assert probe.status == "received" and probe.received_at is not None


# ------------------------------------------------------------------ 6. 413 however the body arrives

@pytest.mark.parametrize("signed_over", ["whole", "prefix"])
def test_chunked_body_over_the_cap_gets_413(rx, db, fresh, signed_over: str) -> None:
    body = b'{"id":"EVchunked","type":"message.received","pad":"' + b"x" * CAP + b'"}'
    signed = body if signed_over == "whole" else body[:CAP]
    headers = sign(signed, SECRET, "v4").headers

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start:start + 16384]

    try:
        with httpx.Client(timeout=15) as client:
            status = client.post(rx.webhook_url, content=chunks(), headers=headers).status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        status = None  # refused before the whole body was sent: the server closed the connection
    assert status in (413, None)
    assert status == 413 or signed_over == "whole"
    assert count(fresh, "webhook_events") == 0


# ------------------------------------------------------------------ 7. no unsigned request is a 500

def _fuzz_request(rng: random.Random) -> tuple[bytes, list[tuple[str, str]]]:
    pieces = ["hmac", "HMAC", "1", "2", ";", ",", " ", "", "²", "¹", "٣", "-5", "0", "9" * 30, "1" * 5000,
              str(int(time.time() * 1000)), str(int(time.time())), "AAAA", "=" * 3, "v1", "v2", "\t",
              base64.b64encode(os.urandom(32)).decode(), "whsec_", "%00", "é", "\u2028"]
    def junk(n: int) -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, n)))
    headers: list[tuple[str, str]] = []
    if rng.random() < 0.5:  # well-formed shapes with hostile parts: the parsers' deeper branches
        ts = rng.choice(pieces)
        headers.append(("openphone-signature", f"hmac;1;{ts};{rng.choice(pieces)}"))
        headers += [("webhook-id", junk(2)), ("webhook-timestamp", ts), ("webhook-signature", f"v1,{junk(2)}")][
            : rng.choice([0, 3])]
        return rng.choice([b"{}", b'{"id":"EV1"}', b"[" * 5000]), headers
    for name in rng.sample(["openphone-signature", "webhook-signature", "webhook-id", "webhook-timestamp"],
                           rng.randint(0, 4)):
        for _ in range(rng.randint(1, 2)):
            headers.append((name, junk(12)))
    bodies = [b"", b"{}", b"[]", b"null", b'{"id":"EV1","type":"message.received"}', os.urandom(rng.randint(0, 64)),
              b"[" * 5000, json.dumps({"id": junk(4), "type": junk(3)}).encode()]
    return rng.choice(bodies), headers


def test_seeded_fuzz_of_unsigned_requests_never_500_and_stores_nothing(rx, db, fresh, http) -> None:
    rng = random.Random(20261201)
    statuses: dict[int, int] = {}
    for _ in range(300):
        body, headers = _fuzz_request(rng)
        try:
            encoded = [(k.encode(), v.encode("utf-8")) for k, v in headers]  # raw UTF-8 bytes on the wire
            code = http.post(rx.webhook_url, content=body, headers=encoded).status_code
        except httpx.LocalProtocolError:
            continue  # the client itself refuses to send that header
        statuses[code] = statuses.get(code, 0) + 1
    assert set(statuses) <= {401, 400, 431}, statuses
    assert statuses.get(401, 0) >= 150  # most requests reach the server (the client refuses some header bytes)
    assert count(fresh, "webhook_events") == 0


# ------------------------------------------------------------------ 8. direction belongs to the message

@pytest.mark.parametrize("order", ["delivered_first", "received_first"])
def test_direction_contradicting_the_event_type_is_dead_lettered_in_either_order(rx, db, fresh, http,
                                                                                 order: str) -> None:
    msg = "AC" + "d" * 32
    delivered = json.loads(message_event("v4", event_type="message.delivered", msg_id=msg)[2])
    bogus = json.loads(message_event("v4", event_type="message.received", msg_id=msg)[2])
    bogus["data"]["object"]["direction"] = "outgoing"  # a received message claiming to be outgoing
    events = [delivered, bogus] if order == "delivered_first" else [bogus, delivered]
    for payload in events:
        body = json.dumps(payload).encode()
        assert _post(http, rx, body, sign(body, SECRET, "v4").headers).status_code == 200
    with fresh.connect() as conn:
        direction = conn.execute(text("SELECT direction FROM messages WHERE id = :id"), {"id": msg}).scalar_one()
        dead = conn.execute(text("SELECT e.event_id, q.last_error FROM failed_webhook_queue q"
                                 " JOIN webhook_events e ON e.id = q.webhook_event_id WHERE q.status = 'dead'")).all()
    assert direction == "outgoing"
    assert [row.event_id for row in dead] == [bogus["id"]]
    assert "direction contradicts event type" in dead[0].last_error


# ------------------------------------------------------------------ 9. /metrics private and cheap

def test_metrics_need_the_token_and_read_the_queue_from_a_cache(rx, db, fresh, http) -> None:
    assert http.get(rx.url + "/metrics").status_code == 401
    assert http.get(rx.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401

    def dead_depth() -> set[str]:
        out = http.get(rx.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert out.status_code == 200
        return {line for line in out.text.splitlines() if 'retry_queue_depth{status="dead"}' in line}

    before = set().union(*(dead_depth() for _ in range(6)))  # both workers have read it once
    body = b"{not json"
    assert _post(http, rx, body, sign(body, SECRET, "v4").headers).json()["queue_status"] == "dead"
    after = set().union(*(dead_depth() for _ in range(6)))
    assert before == after  # served from the cache: no query per scrape


# ------------------------------------------------------------------ 10. logs bounded and useful

def test_logs_are_bounded_and_carry_no_message_text(rx, db, http) -> None:
    secret_words = "meet me at the usual place " * 10
    _, _, base = message_event("v4", text=secret_words)
    payload = json.loads(base)
    payload["type"] = "message." + "z" * 100_000
    body = json.dumps(payload).encode()
    mark = rx.log_path.stat().st_size
    assert _post(http, rx, body, sign(body, SECRET, "v4").headers).status_code == 200
    bad = sign_legacy(body, new_secret(), int(time.time() * 1000)) + "," + "x" * 3000
    assert _post(http, rx, body, {"openphone-signature": bad}).status_code == 401
    with open(rx.log_path, "rb") as log:
        log.seek(mark)
        lines = log.read().decode(errors="replace").splitlines()
    assert lines and max(len(line) for line in lines) < 4000
    assert not any("meet me at the usual place" in line for line in lines)


# ------------------------------------------------------------------ 11. waits are bounded

def test_a_locked_messages_table_does_not_hold_the_receiver(rx, db, fresh, app_db_url) -> None:
    locker = db.connect()
    transaction = locker.begin()
    locker.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
    sent = []
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(3):
                ev_id, _, d = delivery("v4", SECRET)
                resp = client.post(rx.webhook_url, content=d.body, headers=d.headers)
                assert resp.status_code == 200
                assert (resp.json()["error_class"], resp.json()["queue_status"]) == ("transient", "pending")
                sent.append(ev_id)
            assert client.get(rx.url + "/healthz").status_code == 200
    finally:
        transaction.rollback()
        locker.close()
    assert count(fresh, "failed_webhook_queue", "status = 'pending' AND error_class = 'transient'") == 3
    with db.begin() as conn:
        conn.execute(text("UPDATE failed_webhook_queue SET next_retry_at = now()"))
    counts = sweep_due_retries(db)
    assert counts.resolved == 3
    assert count(fresh, "webhook_events", "processing_status = 'processed' AND event_id = ANY(:ids)", ids=sent) == 3


# ------------------------------------------------------------------ the server: graceful stop

def test_sigterm_lets_a_request_in_flight_finish(app_db_url, db, fresh) -> None:
    env = {"RECEIVER_LOCK_TIMEOUT_MS": "8000", "RECEIVER_STATEMENT_TIMEOUT_MS": "8000"}
    with running_receiver(app_db_url, [SECRET], workers=1, extra_env=env) as server:
        locker = db.connect()
        transaction = locker.begin()
        locker.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
        answer: list[httpx.Response] = []
        ev_id, _, d = delivery("v4", SECRET)
        sender = threading.Thread(target=lambda: answer.append(
            httpx.post(server.webhook_url, content=d.body, headers=d.headers, timeout=20)))
        sender.start()
        try:
            # committed and now waiting on the lock inside processing: a request in flight
            while count(fresh, "webhook_events", "event_id = :e", e=ev_id) == 0:
                time.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
        finally:
            transaction.rollback()
            locker.close()
        sender.join(timeout=20)
        assert server.process.wait(timeout=30) == 0
    assert answer and answer[0].status_code == 200 and answer[0].json() == {"status": "stored", "outcome": "processed"}
    assert count(fresh, "messages") == 1
