"""Webhook delivery: signatures checked by an independent verifier written from the reference,
payload generations, registered hooks, retries and receiver-down windows, probe -> main."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from openphone_sandbox.testing import WebhookSink, start_sandbox
from tests.support.waiting import wait_until

QUIET = {"history_days": 0, "messages_per_day": 0}


def verify_legacy(header: str, raw_body: bytes, secret_b64: str, tolerance_s: int = 300) -> bool:
    """docs/openphone-api.md, 'Webhook signatures' (legacy): split on ',' then ';'; ts is ms; HMAC-SHA256(b64decode(key), ts.body), base64."""
    key = base64.b64decode(secret_b64)
    for part in header.split(","):
        scheme, version, ts, sig = part.strip().split(";")
        if scheme != "hmac" or version != "1":
            continue
        ts_s = int(ts) / 1000 if len(ts) >= 13 else int(ts)
        if abs(time.time() - ts_s) > tolerance_s:
            continue
        expected = base64.b64encode(hmac.new(key, ts.encode() + b"." + raw_body, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(expected, sig):
            return True
    return False


def verify_standard(headers: dict[str, str], raw_body: bytes, secret: str, tolerance_s: int = 300) -> bool:
    """docs/openphone-api.md, 'Webhook signatures' (Standard Webhooks): sign '{webhook-id}.{webhook-timestamp}.{body}' with b64decode(secret minus whsec_)."""
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > tolerance_s:
        return False
    key = base64.b64decode(secret.split("_", 1)[1] if secret.startswith("whsec_") else secret)
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + raw_body, hashlib.sha256).digest())
    return any(hmac.compare_digest(expected.decode(), s.split(",", 1)[1])
               for s in headers["webhook-signature"].split(" ") if s.startswith("v1,"))


@pytest.mark.parametrize("generation", ["v2", "v4"])
def test_legacy_signature_and_payload(receiver: WebhookSink, generation: str) -> None:
    with start_sandbox(webhook_url=receiver.url, payload_generation=generation, **QUIET) as h:
        sent = h.simulate_inbound(text="Can we move it to 4pm?", sender="+14155550142")["data"]
        wait_until(lambda: receiver.requests())
        headers, raw = receiver.requests()[0]
        assert verify_legacy(headers["openphone-signature"], raw, h.webhook_secret)
        assert not verify_legacy(headers["openphone-signature"], raw + b" ", h.webhook_secret)
        assert b": " not in raw and b", " not in raw  # compact JSON
        ev = json.loads(raw)
        assert ev["id"].startswith("EV") and ev["object"] == "event" and ev["apiVersion"] == generation
        assert ev["type"] == "message.received"
        obj = ev["data"]["object"]
        assert obj["id"] == sent["id"] and obj["object"] == "message" and obj["status"] == "received"
        assert obj["phoneNumberId"] == h.main_line.id and obj["direction"] == "incoming"
        if generation == "v2":
            assert obj["body"] == "Can we move it to 4pm?" and obj["to"] == h.main_line.number
            assert obj["media"] == [] and obj["conversationId"].startswith("CN")
        else:
            assert obj["text"] == "Can we move it to 4pm?" and obj["to"] == [h.main_line.number]
            assert isinstance(obj["contactIds"], list)


def test_standard_webhooks_signature(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, payload_generation="2026-03-30", **QUIET) as h:
        assert h.webhook_secret.startswith("whsec_")
        sent = h.simulate_inbound(text="hello", sender="+14155550142")["data"]
        wait_until(lambda: receiver.requests())
        headers, raw = receiver.requests()[0]
        assert "openphone-signature" not in headers
        assert len(headers["webhook-timestamp"]) == 10  # seconds
        assert verify_standard(headers, raw, h.webhook_secret)
        tampered = dict(headers, **{"webhook-id": "other"})
        assert not verify_standard(tampered, raw, h.webhook_secret)
        ev = json.loads(raw)
        assert ev["id"] == headers["webhook-id"] and ev["apiVersion"] == "2026-03-30"
        assert ev["type"] == "message.received"
        assert ev["data"]["resource"]["id"] == sent["id"]
        assert ev["data"]["context"] == {} and ev["data"]["links"] == {}


def test_given_secret_is_used(receiver: WebhookSink) -> None:
    secret = base64.b64encode(bytes(range(200, 232))).decode()  # key bytes >= 0x80 (the Node-sample trap)
    with start_sandbox(webhook_url=receiver.url, webhook_secret=secret, **QUIET) as h:
        h.simulate_inbound()
        wait_until(lambda: receiver.requests())
        headers, raw = receiver.requests()[0]
        assert verify_legacy(headers["openphone-signature"], raw, secret)


def test_registered_webhook_via_api(receiver: WebhookSink) -> None:
    with start_sandbox(**QUIET, sent_after_s=0.01, delivered_after_s=0.01, undelivered_rate=0.0) as h, \
            h.client() as c:
        bad = c.post("/v1/webhooks/messages", json={"url": receiver.url, "events": ["call.completed"]})
        assert bad.status_code == 400
        resp = c.post("/v1/webhooks/messages", json={"url": receiver.url, "events": ["message.delivered"],
                                                     "resourceIds": [h.main_line.id], "label": "t"})
        assert resp.status_code == 201
        wh = resp.json()["data"]
        assert wh["id"].startswith("WH") and wh["status"] == "enabled" and base64.b64decode(wh["key"])
        assert c.get(f"/v1/webhooks/{wh['id']}").json()["data"]["key"] == wh["key"]
        assert [w["id"] for w in c.get("/v1/webhooks").json()["data"]] == [wh["id"]]
        h.simulate_inbound()  # message.received: not subscribed
        mid = c.post("/v1/messages", json={"content": "hi", "from": h.main_line.id,
                                           "to": ["+14155550100"]}).json()["data"]["id"]
        wait_until(lambda: receiver.requests())
        assert h.wait_for_deliveries(5)
        headers, raw = receiver.requests()[0]
        assert len(receiver.requests()) == 1
        assert verify_legacy(headers["openphone-signature"], raw, wh["key"])
        ev = json.loads(raw)
        assert ev["type"] == "message.delivered" and ev["apiVersion"] == "v4"
        assert ev["data"]["object"]["id"] == mid and ev["data"]["object"]["status"] == "delivered"
        assert c.delete(f"/v1/webhooks/{wh['id']}").status_code == 204
        assert c.get(f"/v1/webhooks/{wh['id']}").status_code == 404


def test_probe_to_main_creates_message_received(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, sent_after_s=30, delivered_after_s=30, **QUIET) as h, \
            h.client() as c:
        resp = c.post("/v1/messages", json={"content": "probe 42", "from": h.probe_line.id,
                                            "to": [h.main_line.number]})
        assert resp.status_code == 202
        h.settle()
        events = wait_until(lambda: len(receiver.events()) >= 2 and receiver.events())
        received = [e for e in events if e["type"] == "message.received"]
        delivered = [e for e in events if e["type"] == "message.delivered"]
        assert len(received) == 1 and len(delivered) == 1
        obj = received[0]["data"]["object"]
        assert obj["phoneNumberId"] == h.main_line.id and obj["from"] == h.probe_line.number
        assert obj["body"] == "probe 42"
        assert delivered[0]["data"]["object"]["id"] == resp.json()["data"]["id"]
        listed = c.get("/v1/messages", params={"phoneNumberId": h.main_line.id,
                                               "participants": h.probe_line.number, "maxResults": 5}).json()
        assert [m["id"] for m in listed["data"]] == [obj["id"]]


def test_undelivered_sends_no_webhook(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, undelivered_rate=1.0, **QUIET) as h, h.client() as c:
        c.post("/v1/messages", json={"content": "x", "from": h.main_line.id, "to": ["+14155550100"]})
        h.settle()
        assert h.wait_for_deliveries(5)
        assert receiver.requests() == [] and h.stats()["events"] == 0


def test_retry_until_2xx_same_event_id(receiver: WebhookSink) -> None:
    receiver.fail_first = 2
    with start_sandbox(webhook_url=receiver.url, retry_schedule=[0.05, 0.05, 0.05], **QUIET) as h:
        h.simulate_inbound()
        assert h.wait_for_deliveries(10)
        bodies = receiver.events()
        assert len(bodies) == 3 and len({b["id"] for b in bodies}) == 1
        st = h.stats()
        assert st["attempted"] == 3 and st["retried"] == 2 and st["delivered"] == 1
        assert st["by_event"]["message.received"]["delivered"] == 1
        assert h.events()[0]["fate"] == "delivered"


def test_gives_up_after_max_attempts(receiver: WebhookSink) -> None:
    receiver.status = 503
    with start_sandbox(webhook_url=receiver.url, retry_schedule=[0.02], max_attempts=3, **QUIET) as h:
        h.simulate_inbound()
        assert h.wait_for_deliveries(10)
        st = h.stats()
        assert st["attempted"] == 3 and st["failed"] == 1 and st["delivered"] == 0
        assert h.events(fate="failed")[0]["lastStatus"] == 503


def test_receiver_down_window_then_recovers(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, retry_schedule=[0.1], max_attempts=100, **QUIET) as h:
        h.set_faults(receiver_down_for=60)
        h.simulate_inbound()
        wait_until(lambda: h.stats()["receiver_down"] >= 2)  # first attempt and a retry both failed
        assert receiver.requests() == [] and h.pending() == 1
        h.set_faults(receiver_down=[])  # the receiver comes back
        assert h.wait_for_deliveries(10)
        assert len(receiver.requests()) == 1
        assert h.stats()["retried"] >= 1


def test_reorder_window_shuffles(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, reorder_window=20, delivery_workers=1, **QUIET) as h:
        ids = h.simulate_inbound(count=20)["ids"]
        assert h.wait_for_deliveries(10)
        got = [b["data"]["object"]["id"] for b in receiver.events()]
        assert sorted(got) == sorted(ids) and got != ids


def test_delay_fault(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, delay_ms=300, **QUIET) as h:
        start = time.monotonic()
        h.simulate_inbound(count=20)
        assert h.wait_for_deliveries(10)
        assert len(receiver.requests()) == 20 and h.stats()["delayed"] == 20
        assert time.monotonic() - start > 0.1  # at least some events waited for their extra delay


def test_history_webhooks(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, history_webhooks=True, history_days=1, messages_per_day=30,
                       now="2026-03-10T12:00:00Z") as h:
        truth = h.ground_truth()
        expected = {m["id"] for m in truth if m["direction"] == "incoming" or m["status"] == "delivered"}
        assert h.wait_for_deliveries(10)
        got = {b["data"]["object"]["id"] for b in receiver.events()}
        assert got == expected
        ev = receiver.events()[0]
        assert ev["createdAt"] < "2026-03-10T12:00:00Z"  # the event looks as old as the message
