"""Every fault switched on and off while the sandbox runs, over HTTP only, as a soak harness drives it;
and the ground truth and event records such a harness compares against at the end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from openphone_sandbox.testing import SandboxHandle, WebhookSink, start_sandbox

QUIET = {"history_days": 0, "messages_per_day": 0}
TEXTER = "+14155550310"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until truthy (a condition wait, never a blind sleep); fail on timeout."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)
    return value


def _event(h: SandboxHandle, message_id: str) -> dict[str, Any]:
    (record,) = h.events(messageId=message_id)
    return record


def test_receiver_down_relative_window_then_cleared() -> None:
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, retry_schedule=[0.05], max_attempts=1000,
                                              **QUIET) as h:
        before = time.time()
        settings = h.set_faults(receiver_down_for_s=150)
        ((start, end),) = settings["receiver_down"]
        assert before <= start <= time.time() and end - start == pytest.approx(150)
        mid = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        wait_until(lambda: _event(h, mid)["attempts"] >= 3)
        rec = _event(h, mid)
        assert rec["sent"] == 0 and rec["fate"] == "pending" and rec["acknowledgedAt"] is None
        assert rec["lastError"] == "receiver down (simulated)" and sink.requests() == []
        h.set_faults(receiver_down=[])
        assert h.wait_for_deliveries(10)
        rec = _event(h, mid)
        assert (rec["fate"], rec["sent"], rec["deliveries"], rec["lastStatus"]) == ("delivered", 1, 1, 200)
        assert rec["attempts"] == rec["sent"] + h.stats()["receiver_down"]
        assert rec["submittedAt"] <= rec["acknowledgedAt"]
        assert len(sink.requests()) == 1


def test_receiver_down_absolute_window() -> None:
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, retry_schedule=[0.05], max_attempts=1000,
                                              **QUIET) as h:
        now = time.time()
        assert h.set_faults(receiver_down=[[now - 1, now + 600]])["receiver_down"] == [[now - 1, now + 600]]
        mid = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        wait_until(lambda: _event(h, mid)["attempts"] >= 2)
        assert sink.requests() == []
        h.set_faults(receiver_down=[[now - 10, now - 5]])  # a window in the past refuses nothing
        assert h.wait_for_deliveries(10) and _event(h, mid)["deliveries"] == 1


def test_drop_duplicate_delay_reorder_switched_at_runtime() -> None:
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, delivery_workers=1, **QUIET) as h:
        h.set_faults(drop_rate=1.0)
        dropped = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        h.set_faults(drop_rate=0.0, duplicate_rate=1.0)
        doubled = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        h.set_faults(duplicate_rate=0.0, delay_ms=50.0)
        delayed = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        h.set_faults(delay_ms=0.0, reorder_window=8, reorder_max_hold_s=60.0)
        shuffled = h.simulate_inbound(sender=TEXTER, count=8)["ids"]
        h.set_faults(reorder_window=0)
        plain = h.simulate_inbound(sender=TEXTER)["data"]["id"]
        assert h.wait_for_deliveries(10)
        got = Counter(e["data"]["object"]["id"] for e in sink.events())
        assert dropped not in got and got[doubled] == 2 and got[delayed] == 1 and got[plain] == 1
        arrival = [e["data"]["object"]["id"] for e in sink.events() if e["data"]["object"]["id"] in shuffled]
        assert sorted(arrival) == sorted(shuffled) and arrival != shuffled
        assert _event(h, dropped)["fate"] == "dropped" and _event(h, dropped)["sent"] == 0
        assert _event(h, doubled)["duplicated"] and _event(h, doubled)["deliveries"] == 2
        stats = h.stats()
        assert (stats["dropped"], stats["duplicated"], stats["delayed"], stats["reordered"]) == (1, 1, 1, 8)
        summary = h.event_summary()
        assert summary == {"events": 12, "dropped": 1, "duplicated": 1, "acknowledged": 11, "failed": 0,
                           "pending": 0, "attempts": 12, "sent": 12, "deliveries": 12}
        assert sum(got.values()) == summary["deliveries"]


def test_drop_decisions_are_seeded() -> None:
    """Same seed, same traffic, same drops: a soak run can be replayed."""
    fates = []
    for _ in range(2):
        with start_sandbox(seed=42, webhook_url="http://127.0.0.1:9/none", drop_rate=0.5, max_attempts=1,
                           **QUIET) as h:
            ids = h.simulate_inbound(sender=TEXTER, count=200, created_at="2026-03-09T00:00:00Z",
                                     spacing_ms=1000)["ids"]
            dropped = {e["messageId"] for e in h.events(fate="dropped")}
            fates.append([i in dropped for i in ids])
    assert fates[0] == fates[1] and 60 < sum(fates[0]) < 140


@pytest.mark.parametrize("retry_after", [False, True])
def test_429_burst_for_n_seconds(retry_after: bool) -> None:
    with start_sandbox(rate_limit=10_000, **QUIET) as h, h.client() as c:
        assert c.get("/v1/phone-numbers").status_code == 200
        h.set_faults(api_429_for_s=120, api_429_retry_after=retry_after)
        answers = [c.get("/v1/phone-numbers") for _ in range(5)]
        assert [r.status_code for r in answers] == [429] * 5
        body = answers[-1].json()
        assert body["status"] == 429 and body["code"] == "0400429"
        assert ("retry-after" in answers[-1].headers) is retry_after
        if retry_after:
            assert 110 <= int(answers[-1].headers["retry-after"]) <= 120
        assert c.post("/v1/messages", json={"content": "x", "from": h.main_line.id,
                                            "to": [TEXTER]}).status_code == 429
        assert h.ground_truth() == []  # a refused send sends nothing
        assert httpx.get(h.api_url + "/phone-numbers", headers={"Authorization": "wrong"}).status_code == 401
        h.set_faults(api_429_until=0)
        assert c.get("/v1/phone-numbers").status_code == 200


def test_429_burst_ends_by_itself() -> None:
    with start_sandbox(rate_limit=10_000, **QUIET) as h, h.client() as c:
        h.set_faults(api_429_for_s=0.3)
        assert c.get("/v1/phone-numbers").status_code == 429
        wait_until(lambda: c.get("/v1/phone-numbers").status_code == 200, timeout=5)


def test_api_5xx_rate_is_seeded_and_switchable() -> None:
    runs = []
    for _ in range(2):
        with start_sandbox(seed=9, rate_limit=10_000, **QUIET) as h, h.client() as c:
            h.set_faults(error_5xx_rate=0.5)
            runs.append([c.get("/v1/phone-numbers").status_code for _ in range(40)])
            h.set_faults(error_5xx_rate=0.0)
            assert {c.get("/v1/phone-numbers").status_code for _ in range(10)} == {200}
    assert runs[0] == runs[1] and set(runs[0]) == {200, 500}


def test_slow_responses_switchable() -> None:
    with start_sandbox(rate_limit=10_000, **QUIET) as h, h.client() as c:
        settings = h.set_faults(slow_rate=1.0, slow_delay_ms=150)
        assert (settings["slow_rate"], settings["slow_delay_ms"]) == (1.0, 150.0)
        assert c.get("/v1/phone-numbers").elapsed.total_seconds() >= 0.15
        assert h.set_faults(slow_rate=0.0)["slow_rate"] == 0.0


def test_live_rate_changed_at_runtime_never_on_the_probe_line() -> None:
    with start_sandbox(live_rate=0, sent_after_s=0.01, delivered_after_s=0.01, **QUIET) as h:
        h.advance(30)
        assert h.ground_truth() == []
        assert h.set_faults(live_rate=2.0)["live_rate"] == 2.0
        h.advance(20)
        generated = len(h.ground_truth())
        assert generated >= 40
        h.set_faults(live_rate=0)
        settled = len(h.ground_truth())
        h.advance(60)
        assert len(h.ground_truth()) == settled
        truth = h.ground_truth()
        assert {m["origin"] for m in truth} == {"live"}
        assert h.probe_line.id not in {m["phoneNumberId"] for m in truth}
        assert h.probe_line.number not in {p for m in truth for p in (m["from"], *m["to"])}


BAD_UPDATES = [("error_5xx_rate", 2), ("nope", 1), ("receiver_down_for_s", -1), ("retry_after", "yes"),
               ("receiver_down", [[5, 1]]), ("live_rate", -1), ("api_429_for_s", "soon"), ("drop_rate", True)]


@pytest.mark.parametrize(("name", "value"), BAD_UPDATES)
def test_bad_update_is_refused_whole(name: str, value: Any) -> None:
    with start_sandbox(**QUIET) as h:
        before = h.faults()
        resp = httpx.post(h.base_url + "/_sandbox/faults", json={"duplicate_rate": 0.5, name: value})
        assert resp.status_code == 400 and name in resp.json()["message"]
        assert h.faults() == before


def test_ground_truth_holds_every_source_and_marks_probes() -> None:
    with start_sandbox(seed=3, now="2026-03-10T12:00:00Z", history_days=1, messages_per_day=30,
                       live_rate=1.0, sent_after_s=0.01, delivered_after_s=0.01, undelivered_rate=0.0) as h, \
            h.client() as c:
        h.advance(5)
        api = c.post("/v1/messages", json={"content": "from the API", "from": h.main_line.id,
                                           "to": [TEXTER]}).json()["data"]["id"]
        probe = c.post("/v1/messages", json={"content": "probe", "from": h.probe_line.id,
                                             "to": [h.main_line.number]}).json()["data"]["id"]
        h.set_faults(live_rate=0)
        h.settle()
        truth = h.ground_truth()
        origins = Counter(m["origin"] for m in truth)
        assert origins["history"] > 0 and origins["live"] >= 5 and origins["api"] == 2 and origins["line"] == 1
        by_id = {m["id"]: m for m in truth}
        assert by_id[api]["status"] == "delivered" and by_id[api]["lineRole"] == "main"
        probes = [m for m in truth if m["senderLineRole"] == "probe"]
        assert {m["id"] for m in probes if m["direction"] == "outgoing"} == {probe}
        (arrived,) = [m for m in probes if m["direction"] == "incoming"]
        assert arrived["phoneNumberId"] == h.main_line.id and arrived["text"] == "probe"
        assert all(m["lineRole"] != "probe" for m in truth if m["origin"] in ("history", "live"))


def test_per_day_summary_matches_ground_truth() -> None:
    with start_sandbox(seed=5, now="2026-03-10T12:00:00Z", history_days=3, messages_per_day=50) as h:
        truth = h.ground_truth()
        days = h.day_summary()
        assert [d["day"] for d in days] == sorted({m["createdAt"][:10] for m in truth})
        for d in days:
            msgs = [m for m in truth if m["createdAt"].startswith(d["day"])]
            assert d["count"] == len(msgs)
            assert d["byStatus"] == dict(Counter(m["status"] for m in msgs))
            assert d["byDirection"] == dict(Counter(m["direction"] for m in msgs))
        window = h.day_summary(createdAfter="2026-03-08T00:00:00Z", createdBefore="2026-03-09T00:00:00Z")
        assert [d["day"] for d in window] == ["2026-03-08"]
