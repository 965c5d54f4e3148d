"""The simulate hooks as other suites use them: a conversation of more pages than one inside one UTC
day, messages exactly on a UTC midnight, past-dated sends, group threads, webhook-less messages,
probe look-alike texts from outside numbers, and bad bodies refused whole."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from openphone_sandbox.testing import SandboxHandle, WebhookSink, start_sandbox

QUIET = {"history_days": 0, "messages_per_day": 0, "rate_limit": 10_000}
DAY, NEXT_DAY = "2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z"


def _walk(h: SandboxHandle, participants: list[str], **params: str) -> list[list[dict]]:
    """Every page of one conversation's messages, following nextPageToken to its null."""
    pages: list[list[dict]] = []
    token = None
    with h.client() as c:
        while True:
            query = {"phoneNumberId": h.main_line.id, "participants": participants, "maxResults": 100, **params}
            body = c.get("/v1/messages", params={**query, **({"pageToken": token} if token else {})}).json()
            pages.append(body["data"])
            token = body["nextPageToken"]
            if token is None:
                return pages
            assert len(pages) < 50


def test_busy_conversation_pages_inside_one_day() -> None:
    texter = "+14155550250"
    with start_sandbox(**QUIET) as h:
        ids = h.busy_conversation("2026-03-09", count=250, participant=texter)
        assert len(ids) == len(set(ids)) == 250
        pages = _walk(h, [texter], createdAfter=DAY, createdBefore=NEXT_DAY)
        assert [len(p) for p in pages] == [100, 100, 50]
        listed = [m for p in pages for m in p]
        assert {m["id"] for m in listed} == set(ids)
        assert all(m["createdAt"].startswith("2026-03-09") for m in listed)
        stamps = [m["createdAt"] for m in listed]
        assert stamps == sorted(stamps, reverse=True)
        assert Counter(m["direction"] for m in listed) == {"incoming": 125, "outgoing": 125}
        assert Counter(m["status"] for m in listed) == {"received": 125, "delivered": 125}
        assert len({m["conversationId"] for m in listed}) == 1
        assert [d["count"] for d in h.day_summary()] == [250]


def test_messages_on_a_utc_midnight() -> None:
    with start_sandbox(**QUIET) as h:
        ids = h.around_midnight("2026-03-09", participant="+14155550240")
        with h.client() as c:
            at = c.get(f"/v1/messages/{ids['at_midnight']}").json()["data"]
            before = c.get(f"/v1/messages/{ids['before_midnight']}").json()["data"]
        assert at["createdAt"] == "2026-03-09T00:00:00.000Z"
        assert before["createdAt"] == "2026-03-08T23:59:59.999Z"
        day = {m["id"] for p in _walk(h, ["+14155550240"], createdAfter=DAY, createdBefore=NEXT_DAY) for m in p}
        prev = {m["id"] for p in _walk(h, ["+14155550240"], createdAfter="2026-03-08T00:00:00Z",
                                       createdBefore=DAY) for m in p}
        assert day == {ids["at_midnight"]} and prev == {ids["before_midnight"]}
        assert [(d["day"], d["count"]) for d in h.day_summary()] == [("2026-03-08", 1), ("2026-03-09", 1)]


def test_past_dated_send_is_final_with_its_webhook() -> None:
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, **QUIET) as h:
        sent = h.simulate_outbound("+14155550260", "Old reply", created_at="2026-03-09T10:00:00Z",
                                   final_status="delivered")["data"]
        assert sent["status"] == "delivered" and sent["updatedAt"] == "2026-03-09T10:00:01.000Z"
        assert h.wait_for_deliveries(10)
        (event,) = sink.events()
        assert event["type"] == "message.delivered" and event["data"]["object"]["id"] == sent["id"]
        assert event["createdAt"] == "2026-03-09T10:00:01.000Z"


def test_past_dated_send_between_lines_arrives_on_the_other_line() -> None:
    with start_sandbox(**QUIET) as h:
        sent = h.simulate_outbound(h.main_line.number, "line to line", line=h.probe_line.id,
                                   created_at="2026-03-09T10:00:00Z", final_status="delivered")["data"]
        truth = h.ground_truth()
        assert [(m["phoneNumberId"], m["direction"], m["origin"], m["createdAt"]) for m in truth] == [
            (h.probe_line.id, "outgoing", "simulated", "2026-03-09T10:00:00.000Z"),
            (h.main_line.id, "incoming", "line", "2026-03-09T10:00:01.000Z")]
        assert truth[0]["id"] == sent["id"] and truth[1]["from"] == h.probe_line.number


def test_webhooks_false_creates_a_silent_message() -> None:
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, **QUIET) as h:
        silent = h.simulate_inbound("missed", sender="+14155550270", webhooks=False)["data"]["id"]
        loud = h.simulate_inbound("seen", sender="+14155550270")["data"]["id"]
        assert h.wait_for_deliveries(10)
        assert [e["data"]["object"]["id"] for e in sink.events()] == [loud]
        assert {e["messageId"] for e in h.events()} == {loud}
        assert {m["id"] for m in h.ground_truth()} == {silent, loud}


def test_group_thread_senders_take_turns() -> None:
    group = ["+14155550281", "+14155550282", "+14155550283"]
    with start_sandbox(**QUIET) as h:
        ids = h.simulate_inbound("group", participants=group, count=6, created_at="2026-03-09T08:00:00Z",
                                 spacing_ms=1000)["ids"]
        listed = [m for p in _walk(h, group) for m in p]
        assert {m["id"] for m in listed} == set(ids)
        by_id = {m["id"]: m for m in listed}
        assert [by_id[i]["from"] for i in ids] == group * 2
        assert all(sorted(by_id[i]["to"]) == sorted([h.main_line.number, *(p for p in group if p != by_id[i]["from"])])
                   for i in ids)
        assert [by_id[i]["createdAt"][11:19] for i in ids] == [f"08:00:0{n}" for n in range(6)]


def test_probe_lookalike_text_from_an_outside_number() -> None:
    """An outside texter may send exactly what a health probe says: the sandbox passes it through
    untouched, so the receiver's tests can prove it is not taken for a probe."""
    text = "Automated delivery check, please ignore. [openphone-pipelines health probe 0123abcd]"
    with WebhookSink() as sink, start_sandbox(webhook_url=sink.url, **QUIET) as h:
        data = h.simulate_inbound(text, sender="+14155550290")["data"]
        assert data["text"] == text and data["from"] == "+14155550290"
        assert data["to"] == [h.main_line.number] and data["phoneNumberId"] == h.main_line.id
        with h.client() as c:
            assert c.get(f"/v1/messages/{data['id']}").json()["data"]["text"] == text
        assert h.wait_for_deliveries(10)
        (event,) = sink.events()
        assert event["data"]["object"]["body"] == text and event["data"]["object"]["from"] == "+14155550290"
        (truth,) = h.ground_truth()
        assert truth["origin"] == "simulated" and truth["senderLineRole"] is None


BAD_BODIES = [
    ("inbound-message", {"count": 0}, "count"),
    ("inbound-message", {"count": "2"}, "count"),
    ("inbound-message", {"spacingMs": 10}, "spacingMs"),
    ("inbound-message", {"createdAt": "yesterday"}, "createdAt"),
    ("inbound-message", {"createdAt": DAY, "spacingMs": -1}, "spacingMs"),
    ("inbound-message", {"participants": ["4155550100"]}, "participants"),
    ("inbound-message", {"participants": ["+14155550100"], "from": "+14155550101"}, "participants"),
    ("inbound-message", {"participants": ["+14155550100"], "others": ["+14155550101"]}, "others"),
    ("inbound-message", {"from": "someone"}, "from"),
    ("inbound-message", {"phoneNumberId": "PNnotaline"}, "sandbox line"),
    ("inbound-message", {"webhooks": "no"}, "webhooks"),
    ("outbound-message", {"to": []}, "to"),
    ("outbound-message", {"to": "+14155550100", "finalStatus": "sent"}, "finalStatus"),
    ("outbound-message", {"to": "+14155550100", "count": 100_001}, "count"),
]


@pytest.mark.parametrize(("hook", "body", "named"), BAD_BODIES)
def test_bad_simulate_body_creates_nothing(hook: str, body: dict, named: str) -> None:
    with start_sandbox(**QUIET) as h:
        resp = httpx.post(f"{h.base_url}/_sandbox/simulate/{hook}", json=body)
        assert resp.status_code == 400 and named in resp.json()["message"]
        assert h.ground_truth() == []
