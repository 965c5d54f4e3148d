"""Fault rates over 10,000 deliveries, deterministic traffic, and ground-truth parity with the API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from openphone_sandbox.testing import SandboxHandle, WebhookSink, start_sandbox
from tests.sandbox.support import FIXED_NOW

N_EVENTS = 10_000


def test_drop_and_duplicate_rates_over_10000(receiver: WebhookSink) -> None:
    drop, dup = 0.10, 0.20
    with start_sandbox(webhook_url=receiver.url, drop_rate=drop, duplicate_rate=dup, history_days=0,
                       messages_per_day=0, delivery_workers=8) as h:
        ids = h.simulate_inbound(count=N_EVENTS)["ids"]
        assert h.wait_for_deliveries(60)
        counts = Counter(b["data"]["object"]["id"] for b in receiver.events())
        assert set(counts) <= set(ids)
        dropped = N_EVENTS - len(counts)
        duplicated = sum(1 for n in counts.values() if n == 2)
        assert max(counts.values()) <= 2
        assert abs(dropped / N_EVENTS - drop) <= 0.03
        assert abs(duplicated / len(counts) - dup) <= 0.03
        st = h.stats()
        assert st["dropped"] == dropped and st["events"] == N_EVENTS
        assert st["delivered"] == sum(counts.values()) and st["failed"] == 0
        # the sandbox's own per-event record agrees with what the receiver saw
        assert {e["messageId"] for e in h.events(fate="dropped")} == set(ids) - set(counts)


def _walk_api(h: SandboxHandle) -> dict[str, str]:
    """phone-numbers -> conversations -> messages, following every nextPageToken."""
    found: dict[str, str] = {}
    with h.client() as c:
        for line in c.get("/v1/phone-numbers").json()["data"]:
            token = None
            while True:
                params = {"phoneNumbers[]": line["id"], "maxResults": 5, **({"pageToken": token} if token else {})}
                body = c.get("/v1/conversations", params=params).json()
                for conv in body["data"]:
                    mtoken = None
                    while True:
                        mp = {"phoneNumberId": line["id"], "participants": conv["participants"], "maxResults": 37,
                              **({"pageToken": mtoken} if mtoken else {})}
                        mb = c.get("/v1/messages", params=mp).json()
                        for m in mb["data"]:
                            assert m["id"] not in found
                            found[m["id"]] = m["status"]
                        mtoken = mb["nextPageToken"]
                        if mtoken is None:
                            break
                token = body["nextPageToken"]
                if token is None:
                    break
    return found


def test_ground_truth_equals_api_after_settle() -> None:
    with start_sandbox(seed=11, now=FIXED_NOW, history_days=3, messages_per_day=80, rate_limit=10_000,
                       sent_after_s=60, allow_group_send=True) as h, h.client() as c:
        # plus in-flight API sends (one line-to-line) whose final status only settle reveals
        c.post("/v1/messages", json={"content": "a", "from": h.main_line.id, "to": ["+14155550100"]})
        c.post("/v1/messages", json={"content": "b", "from": h.probe_line.id, "to": [h.main_line.number]})
        c.post("/v1/messages", json={"content": "c", "from": h.main_line.id,
                                     "to": ["+14155550100", "+14155550101"]})
        h.settle()
        truth = {m["id"]: m["status"] for m in h.ground_truth()}
        assert _walk_api(h) == truth
        assert len(truth) > 200
        statuses = Counter(truth.values())
        assert statuses["delivered"] and statuses["received"]


def test_ground_truth_window_filter(sandbox: SandboxHandle) -> None:
    everything = sandbox.ground_truth()
    window = sandbox.ground_truth(createdAfter="2026-03-09T00:00:00Z", createdBefore="2026-03-10T00:00:00Z")
    assert window and all("2026-03-09T00:00:00Z" <= m["createdAt"] < "2026-03-10T00:00:00Z" for m in window)
    assert len(window) < len(everything)
    near_midnight = [m for m in everything if m["createdAt"][11:16] in ("23:58", "23:59", "00:00", "00:01")]
    assert near_midnight


def test_same_seed_same_traffic() -> None:
    opts = {"now": FIXED_NOW, "history_days": 2, "messages_per_day": 50}
    with start_sandbox(seed=5, **opts) as a, start_sandbox(seed=5, **opts) as b, start_sandbox(seed=6, **opts) as c:
        ta, tb, tc = a.ground_truth(), b.ground_truth(), c.ground_truth()
        assert ta == tb and len(ta) > 100
        assert [m["id"] for m in ta] != [m["id"] for m in tc]
        with a.client() as ca, b.client() as cb:
            assert ca.get("/v1/phone-numbers").json() == cb.get("/v1/phone-numbers").json()


def test_cli_ground_truth_matches_server(sandbox: SandboxHandle) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "openphone_sandbox.cli", "ground-truth", "--seed", "7", "--now", FIXED_NOW,
         "--history-days", "2", "--messages-per-day", "60"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    offline = json.loads(out)["messages"]
    served = [m for m in sandbox.ground_truth() if m["createdAt"] < FIXED_NOW]
    assert [(m["id"], m["status"]) for m in offline] == [(m["id"], m["status"]) for m in served]


def test_live_traffic_emits_webhooks(receiver: WebhookSink) -> None:
    with start_sandbox(webhook_url=receiver.url, live_rate=5, history_days=0, messages_per_day=0,
                       sent_after_s=0.01, delivered_after_s=0.01, undelivered_rate=0.0) as h:
        h.advance(4)  # ~20 generated messages without waiting 4 s
        h.settle()
        truth = h.ground_truth()
        assert len(truth) >= 15
        assert h.wait_for_deliveries(10)
        got = {b["data"]["object"]["id"] for b in receiver.events()}
        expected = {m["id"] for m in truth if m["direction"] == "incoming" or m["status"] == "delivered"}
        assert expected <= got | {m["id"] for m in h.ground_truth() if m["currentStatus"] != m["status"]}
