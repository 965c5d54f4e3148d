"""The v1 REST contract over real HTTP: required parameters, auth, envelopes, send validation."""

from __future__ import annotations

import httpx
import pytest

from openphone_sandbox.testing import SandboxHandle, start_sandbox


def _conversation(sandbox: SandboxHandle) -> dict:
    with sandbox.client() as c:
        return c.get("/v1/conversations", params={"maxResults": 1}).json()["data"][0]


def _assert_flat_400(resp: httpx.Response, path: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["status"] == 400 and body["title"] == "Bad Request"
    assert body["code"].endswith("400") and len(body["code"]) == 7
    assert body["docs"].startswith("https://")
    assert any(e["path"] == f"/{path}" for e in body["errors"])


@pytest.mark.parametrize("missing", ["phoneNumberId", "participants", "maxResults"])
def test_list_messages_required_params(sandbox: SandboxHandle, missing: str) -> None:
    conv = _conversation(sandbox)
    params = {"phoneNumberId": conv["phoneNumberId"], "participants": conv["participants"], "maxResults": 10}
    with sandbox.client() as c:
        assert c.get("/v1/messages", params=params).status_code == 200
        del params[missing]
        _assert_flat_400(c.get("/v1/messages", params=params), missing)


@pytest.mark.parametrize("value", ["0", "101", "ten"])
def test_list_messages_max_results_range(sandbox: SandboxHandle, value: str) -> None:
    conv = _conversation(sandbox)
    params = {"phoneNumberId": conv["phoneNumberId"], "participants": conv["participants"], "maxResults": value}
    with sandbox.client() as c:
        _assert_flat_400(c.get("/v1/messages", params=params), "maxResults")


def test_list_messages_accepts_bracket_participants_and_needs_full_set(sandbox: SandboxHandle) -> None:
    with sandbox.client() as c:
        convs = c.get("/v1/conversations", params={"maxResults": 100}).json()["data"]
        group = next(cv for cv in convs if len(cv["participants"]) > 1)
        base = {"phoneNumberId": group["phoneNumberId"], "maxResults": 100}
        full = c.get("/v1/messages", params={**base, "participants[]": group["participants"]}).json()["data"]
        assert full and all(m["conversationId"] == group["id"] for m in full)
        partial = c.get("/v1/messages", params={**base, "participants": group["participants"][:1]})
        assert partial.status_code == 200
        assert {m["id"] for m in partial.json()["data"]}.isdisjoint({m["id"] for m in full})
        # An unencoded '+' arrives as a space and is not E.164: rejected, as the reference warns.
        raw = c.get(f"/v1/messages?phoneNumberId={group['phoneNumberId']}&maxResults=5"
                    f"&participants={group['participants'][0]}")
        assert raw.status_code == 400


@pytest.mark.parametrize("value", [None, "0", "101"])
def test_conversations_max_results_required(sandbox: SandboxHandle, value: str | None) -> None:
    params = {} if value is None else {"maxResults": value}
    with sandbox.client() as c:
        _assert_flat_400(c.get("/v1/conversations", params=params), "maxResults")


@pytest.mark.parametrize("header", [None, "wrong-key", "Bearer {key}"])
def test_auth_rejections(sandbox: SandboxHandle, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(key=sandbox.api_key)}
    resp = httpx.get(sandbox.api_url + "/phone-numbers", headers=headers)
    assert resp.status_code == 401
    body = resp.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and body["code"].endswith("401")


def test_raw_key_works(sandbox: SandboxHandle) -> None:
    resp = httpx.get(sandbox.api_url + "/phone-numbers", headers={"Authorization": sandbox.api_key})
    assert resp.status_code == 200
    lines = resp.json()["data"]
    assert "nextPageToken" not in resp.json()
    assert {ln["id"][:2] for ln in lines} == {"PN"}
    assert {"id", "number", "formattedNumber", "name", "users", "createdAt", "updatedAt"} <= set(lines[0])


def test_nested_error_shape() -> None:
    with start_sandbox(error_shape="nested", history_days=0, messages_per_day=0) as h:
        resp = httpx.get(h.api_url + "/phone-numbers")
        assert resp.status_code == 401
        err = resp.json()["error"]
        assert set(err) == {"message", "key", "trace"} and err["key"] == "Unauthorized"
        with h.client() as c:
            assert c.get("/v1/messages", params={"maxResults": 1}).json()["error"]["key"] == "BadRequest"


def test_unknown_message_and_route(sandbox: SandboxHandle) -> None:
    with sandbox.client() as c:
        resp = c.get("/v1/messages/ACdoesnotexist")
        assert resp.status_code == 404 and resp.json()["status"] == 404
        assert c.get("/v1/nope").status_code == 404


def test_conversation_fields_and_filters(sandbox: SandboxHandle) -> None:
    main = sandbox.main_line
    with sandbox.client() as c:
        for ref in (main.id, main.number):
            body = c.get("/v1/conversations", params={"phoneNumbers": ref, "maxResults": 100}).json()
            assert body["data"] and all(cv["phoneNumberId"] == main.id for cv in body["data"])
        cv = body["data"][0]
        assert set(cv) == {"id", "phoneNumberId", "participants", "name", "assignedTo", "lastActivityAt",
                           "lastActivityId", "createdAt", "updatedAt", "deletedAt", "mutedUntil", "snoozedUntil"}
        acts = [x["lastActivityAt"] for x in body["data"]]
        assert acts == sorted(acts, reverse=True)
        newest = acts[0]
        later = c.get("/v1/conversations", params={"updatedAfter": newest, "maxResults": 100}).json()["data"]
        assert all(x["lastActivityAt"] >= newest for x in later) and later


SEND_CASES = [
    ({"content": ""}, "content"),
    ({"content": "   \n "}, "content"),
    ({"content": "x" * 1601}, "content"),
    ({"from": None}, "from"),
    ({"from": "+19995550000"}, "from"),
    ({"from": "not-a-number"}, "from"),
    ({"to": "+14155550100"}, "to"),
    ({"to": []}, "to"),
    ({"to": ["4155550100"]}, "to"),
    ({"to": ["+14155550100", "+14155550101"]}, "to"),
    ({"userId": "nope"}, "userId"),
    ({"setInboxStatus": "open"}, "setInboxStatus"),
]


@pytest.mark.parametrize(("patch", "field"), SEND_CASES)
def test_send_validation(sandbox: SandboxHandle, patch: dict, field: str) -> None:
    body = {"content": "Hello there", "from": sandbox.main_line.id, "to": ["+14155550100"], **patch}
    body = {k: v for k, v in body.items() if v is not None}
    with sandbox.client() as c:
        _assert_flat_400(c.post("/v1/messages", json=body), field)


def test_send_foreign_user_is_403(sandbox: SandboxHandle) -> None:
    body = {"content": "Hi", "from": sandbox.main_line.id, "to": ["+14155550100"], "userId": "USnotamember"}
    with sandbox.client() as c:
        resp = c.post("/v1/messages", json=body)
    assert resp.status_code == 403 and resp.json()["code"] == "0202403"


def test_group_send_flag() -> None:
    with start_sandbox(allow_group_send=True, history_days=0, messages_per_day=0) as h, h.client() as c:
        to = [f"+1415555{n:04d}" for n in range(100, 110)]
        resp = c.post("/v1/messages", json={"content": "Group hi", "from": h.main_line.number, "to": to})
        assert resp.status_code == 202 and resp.json()["data"]["to"] == to
        too_many = c.post("/v1/messages", json={"content": "x", "from": h.main_line.id, "to": [*to, "+14155550999"]})
        assert too_many.status_code == 400


def test_send_lifecycle_queued_sent_delivered() -> None:
    """Step the sandbox clock instead of sleeping: queued -> sent -> delivered, updatedAt moving."""
    with start_sandbox(history_days=0, messages_per_day=0, sent_after_s=5, delivered_after_s=5,
                       undelivered_rate=0.0) as h, h.client() as c:
        resp = c.post("/v1/messages", json={"content": "Your order shipped", "from": h.main_line.id,
                                            "to": ["+14155550123"]})
        assert resp.status_code == 202
        sent = resp.json()["data"]
        assert sent["status"] == "queued" and sent["id"].startswith("AC") and sent["text"] == "Your order shipped"
        assert sent["direction"] == "outgoing" and sent["userId"].startswith("US")
        assert sent["from"] == h.main_line.number and sent["to"] == ["+14155550123"]

        def status() -> dict:
            return c.get(f"/v1/messages/{sent['id']}").json()["data"]

        assert status()["status"] == "queued"
        h.advance(5.5)
        s1 = status()
        assert s1["status"] == "sent" and s1["updatedAt"] > sent["updatedAt"]
        h.advance(5.5)
        s2 = status()
        assert s2["status"] == "delivered" and s2["updatedAt"] > s1["updatedAt"]
        assert s2["createdAt"] == sent["createdAt"]


def test_undelivered_and_settle() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, undelivered_rate=1.0, sent_after_s=60) as h, h.client() as c:
        mid = c.post("/v1/messages", json={"content": "x", "from": h.main_line.id,
                                           "to": ["+14155550123"]}).json()["data"]["id"]
        truth = {m["id"]: m for m in h.ground_truth()}
        assert truth[mid]["status"] == "undelivered" and truth[mid]["currentStatus"] == "queued"
        assert h.settle() == 2
        assert c.get(f"/v1/messages/{mid}").json()["data"]["status"] == "undelivered"


def test_api_5xx_fault_and_slow() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, error_5xx_rate=1.0) as h, h.client() as c:
        resp = c.get("/v1/phone-numbers")
        assert resp.status_code == 500 and resp.json()["status"] == 500
        h.set_faults(error_5xx_rate=0.0)
        assert c.get("/v1/phone-numbers").status_code == 200


def test_slow_fault() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, slow_rate=1.0, slow_delay_ms=200) as h, h.client() as c:
        resp = c.get("/v1/phone-numbers")
        assert resp.status_code == 200 and resp.elapsed.total_seconds() >= 0.2


def test_send_5xx_may_still_send() -> None:
    """No idempotency: a 500 on send can hide a text that went out (the reference's pitfall 7)."""
    with start_sandbox(history_days=0, messages_per_day=0, error_5xx_rate=1.0, send_commit_on_5xx=1.0) as h, \
            h.client() as c:
        resp = c.post("/v1/messages", json={"content": "ghost", "from": h.main_line.id, "to": ["+14155550199"]})
        assert resp.status_code == 500
        assert [m["text"] for m in h.ground_truth()] == ["ghost"]
