"""OpenPhoneClient over real HTTP against the scripted local server in conftest.py (no mocking)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openphone_pipelines.openphone.client import (
    OpenPhoneClient,
    format_datetime,
    parse_retry_after,
)
from openphone_pipelines.openphone.errors import (
    OpenPhoneAPIError,
    OpenPhoneRateLimited,
    OpenPhoneResponseError,
    OpenPhoneServerError,
    OpenPhoneTransportError,
    SendOutcomeUnknown,
)
from openphone_pipelines.openphone.ratelimit import NoLimit, TokenBucket, process_limiter

from .conftest import API_KEY, Reply, ScriptedAPI

PN = "PNtestLine1"
ALICE = "+14155550142"
BOB = "+14155550143"
OUR_LINE = "+16505550199"


def message_json(i: int, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": f"ACtest{i:06d}",
        "to": [ALICE],
        "from": OUR_LINE,
        "text": f"hello {i}",
        "phoneNumberId": PN,
        "direction": "outgoing",
        "userId": "UStestUser",
        "status": "delivered",
        "createdAt": "2025-11-03T18:22:41.512Z",
        "updatedAt": "2025-11-03T18:22:45.000Z",
    }
    data.update(overrides)
    return data


def conversation_json(i: int) -> dict[str, object]:
    return {
        "id": f"CNtest{i:06d}",
        "phoneNumberId": PN,
        "participants": [f"+1415555{i:04d}"],
        "name": None,
        "assignedTo": None,
        "lastActivityAt": "2025-11-03T18:22:41.512Z",
        "lastActivityId": f"ACtest{i:06d}",
        "createdAt": "2025-06-10T14:02:11.000Z",
        "updatedAt": "2025-11-03T18:22:41.600Z",
        "deletedAt": None,
    }


def paged_handler(items: list[dict[str, object]], page_param: str = "maxResults"):
    """Serve `items` in pages with opaque tokens and a deliberately wrong totalItems."""

    def handler(request) -> Reply:
        size = int(request.args[page_param])
        token = request.args.get("pageToken")
        start = int(token.removeprefix("opaque-")) if token else 0
        page = items[start : start + size]
        nxt = start + size
        return Reply(
            json={
                "data": page,
                "totalItems": 7,  # documented as inaccurate: must not steer paging
                "nextPageToken": f"opaque-{nxt}" if nxt < len(items) else None,
            }
        )

    return handler


# ------------------------------------------------------------------ auth, encoding, paging


def test_authorization_is_the_raw_key_without_bearer(api: ScriptedAPI, make_client) -> None:
    api.script("GET", "/v1/phone-numbers", Reply(json={"data": [{"id": PN, "number": OUR_LINE}]}))
    numbers = make_client().list_phone_numbers()
    assert [n.id for n in numbers] == [PN]
    (req,) = api.recorded()
    assert req.headers["authorization"] == API_KEY
    assert not req.headers["authorization"].lower().startswith("bearer")


def test_base_url_with_v1_suffix_is_tolerated(api: ScriptedAPI, make_client) -> None:
    api.script("GET", "/v1/phone-numbers", Reply(json={"data": []}))
    assert make_client(base_url=api.base_url + "/v1/").list_phone_numbers() == []
    assert api.recorded()[0].path == "/v1/phone-numbers"


def test_conversations_paginate_to_the_last_page_without_loss_or_repeat(
    api: ScriptedAPI, make_client
) -> None:
    items = [conversation_json(i) for i in range(2345)]
    api.handle("GET", "/v1/conversations", paged_handler(items))
    client = make_client()
    pages = client.iter_conversation_pages(phone_numbers=[PN], updated_after=datetime(2025, 11, 1, tzinfo=UTC),
                                           page_size=100)
    got = [conversation for page in pages for conversation in page]
    assert [c.id for c in got] == [c["id"] for c in items]
    assert len({c.id for c in got}) == 2345
    reqs = api.recorded()
    assert len(reqs) == 24
    assert client.stats.snapshot()["pages"] == 24
    assert all(r.args["maxResults"] == ["100"] for r in reqs)
    assert all(r.args["phoneNumbers"] == [PN] for r in reqs)
    assert all(r.args["updatedAfter"] == ["2025-11-01T00:00:00Z"] for r in reqs)
    assert "pageToken" not in reqs[0].args
    assert [r.args["pageToken"][0] for r in reqs[1:]] == [f"opaque-{n}" for n in range(100, 2345, 100)]


def test_messages_query_encodes_plus_and_repeats_participants(api: ScriptedAPI, make_client) -> None:
    items = [message_json(i) for i in range(250)]
    api.handle("GET", "/v1/messages", paged_handler(items))
    pages = list(
        make_client().iter_message_pages(
            phone_number_id=PN,
            participants=[ALICE, BOB],
            created_after=datetime(2025, 11, 3, 18, 22, 41, tzinfo=UTC),
            created_before=datetime(2025, 11, 4, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            page_size=100,
        )
    )
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [m.id for p in pages for m in p] == [m["id"] for m in items]
    first = api.recorded()[0]
    # On the wire: `+` as %2B, the parameter repeated once per participant.
    assert "participants=%2B14155550142&participants=%2B14155550143" in first.query
    assert "+" not in first.query
    assert first.args["participants"] == [ALICE, BOB]
    assert first.args["phoneNumberId"] == [PN]
    assert first.args["createdAfter"] == ["2025-11-03T18:22:41Z"]
    assert first.args["createdBefore"] == ["2025-11-04T10:00:00Z"]  # converted to UTC
    assert first.args["maxResults"] == ["100"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phone_number_id": "OP123abc", "participants": [ALICE]},
        {"phone_number_id": "", "participants": [ALICE]},
        {"phone_number_id": PN, "participants": []},
        {"phone_number_id": PN, "participants": ALICE},  # a bare string is not a list
        {"phone_number_id": PN, "participants": ["4155550142"]},
        {"phone_number_id": PN, "participants": ["+1 415 555 0142"]},
        {"phone_number_id": PN, "participants": [ALICE], "page_size": 0},
        {"phone_number_id": PN, "participants": [ALICE], "page_size": 101},
        {"phone_number_id": PN, "participants": [ALICE], "created_after": datetime(2025, 1, 1)},
    ],
)
def test_list_messages_required_parameters_fail_before_any_request(
    api: ScriptedAPI, make_client, kwargs: dict[str, object]
) -> None:
    client = make_client()
    with pytest.raises(ValueError):
        client.iter_message_pages(**kwargs)  # eager: raises on the call, not on first next()
    assert api.count() == 0
    assert client.stats.snapshot()["requests"] == 0


def test_conversation_parameters_checked_before_any_request(api: ScriptedAPI, make_client) -> None:
    client = make_client()
    for bad in (
        {"phone_numbers": []},
        {"phone_numbers": "PN1"},
        {"page_size": 500},
        {"phone_numbers": ["x"]},
    ):
        with pytest.raises(ValueError):
            client.iter_conversation_pages(**bad)
    assert api.count() == 0


def test_repeated_page_token_raises_instead_of_looping(api: ScriptedAPI, make_client) -> None:
    api.handle(
        "GET",
        "/v1/messages",
        lambda request: Reply(json={"data": [message_json(1)], "nextPageToken": "stuck"}),
    )
    with pytest.raises(OpenPhoneResponseError, match="repeated"):
        list(make_client().iter_message_pages(phone_number_id=PN, participants=[ALICE]))
    assert api.count() == 2


def test_malformed_item_raises_rather_than_being_skipped(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/messages",
        Reply(json={"data": [message_json(1), {"id": "ACbroken"}], "nextPageToken": None}),
    )
    with pytest.raises(OpenPhoneResponseError, match="ACbroken"):
        list(make_client().iter_message_pages(phone_number_id=PN, participants=[ALICE]))


def test_get_message(api: ScriptedAPI, make_client) -> None:
    api.script("GET", "/v1/messages/ACtest000042", Reply(json={"data": message_json(42, status="sent")}))
    message = make_client().get_message("ACtest000042")
    assert message.id == "ACtest000042"
    assert message.status == "sent"


# ------------------------------------------------------------------ retries


def test_429_with_retry_after_is_honoured(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/phone-numbers",
        Reply(429, json={"message": "Too many requests"}, headers={"Retry-After": "1"}),
        Reply(json={"data": [{"id": PN}]}),
    )
    client = make_client()
    assert [n.id for n in client.list_phone_numbers()] == [PN]
    first, second = api.recorded()
    assert second.at - first.at >= 0.95  # measured by the server, on arrival
    assert client.stats.snapshot() == {
        "requests": 2,
        "pages": 1,
        "retries": 1,
        "rate_limited": 1,
        "server_errors": 0,
    }


def test_429_without_retry_after_backs_off_and_retries(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/phone-numbers",
        Reply(429, json={"message": "slow down"}),
        Reply(429, body="", content_type="text/plain"),
        Reply(json={"data": []}),
    )
    client = make_client()
    assert client.list_phone_numbers() == []
    assert api.count() == 3
    assert client.stats.snapshot()["rate_limited"] == 2
    assert client.stats.snapshot()["retries"] == 2


def test_429_exhausting_retries_raises_rate_limited(api: ScriptedAPI, make_client) -> None:
    api.handle("GET", "/v1/phone-numbers", lambda r: Reply(429, json={"message": "Too many requests"}))
    client = make_client(max_retries=3)
    with pytest.raises(OpenPhoneRateLimited) as info:
        client.list_phone_numbers()
    assert api.count() == 4
    assert info.value.status_code == 429


def test_5xx_then_success(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/messages/ACtest000001",
        Reply(503, body="<html>upstream unavailable</html>", content_type="text/html"),
        Reply(500, json={"message": "Unknown", "code": "0201500", "status": 500}),
        Reply(json={"data": message_json(1)}),
    )
    client = make_client()
    assert client.get_message("ACtest000001").id == "ACtest000001"
    assert api.count() == 3
    assert client.stats.snapshot()["server_errors"] == 2
    assert client.stats.snapshot()["retries"] == 2


def test_5xx_exhausting_retries_raises_server_error(api: ScriptedAPI, make_client) -> None:
    api.handle("GET", "/v1/phone-numbers", lambda r: Reply(502, body="bad gateway", content_type="text/plain"))
    with pytest.raises(OpenPhoneServerError) as info:
        make_client(max_retries=2).list_phone_numbers()
    assert api.count() == 3
    assert info.value.status_code == 502
    assert "bad gateway" in str(info.value)


def test_read_timeout_on_a_get_is_retried(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/phone-numbers",
        Reply(json={"data": []}, delay=1.0),
        Reply(json={"data": [{"id": PN}]}),
    )
    assert [n.id for n in make_client(timeout=0.25).list_phone_numbers()] == [PN]
    assert api.count() == 2


def test_every_attempt_acquires_the_rate_limiter(api: ScriptedAPI, make_client) -> None:
    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        def acquire(self) -> None:
            self.calls += 1

    limiter = Counting()
    api.script("GET", "/v1/phone-numbers", Reply(429), Reply(500), Reply(json={"data": []}))
    make_client(rate_limiter=limiter).list_phone_numbers()
    assert limiter.calls == api.count() == 3


def test_on_request_hook_sees_every_attempt(api: ScriptedAPI, make_client) -> None:
    seen: list[tuple[str, str, int]] = []
    api.script("GET", "/v1/phone-numbers", Reply(503), Reply(json={"data": []}))
    make_client(on_request=lambda m, p, s: seen.append((m, p, s))).list_phone_numbers()
    assert seen == [("GET", "/v1/phone-numbers", 503), ("GET", "/v1/phone-numbers", 200)]


# ------------------------------------------------------------------ error envelopes


def test_4xx_flat_envelope_is_parsed_and_not_retried(api: ScriptedAPI, make_client) -> None:
    api.script(
        "POST",
        "/v1/messages",
        Reply(
            400,
            json={
                "message": "A2P registration is not approved for this number",
                "code": "0206400",
                "status": 400,
                "docs": "https://www.quo.com/docs",
                "title": "A2P Registration Not Approved",
                "trace": "trace-123",
                "errors": [
                    {
                        "path": "/from",
                        "message": "not registered",
                        "value": OUR_LINE,
                        "schema": {"type": "string"},
                    }
                ],
            },
        ),
    )
    with pytest.raises(OpenPhoneAPIError) as info:
        make_client().send_message(from_=PN, to=[ALICE], content="hi")
    err = info.value
    assert not isinstance(err, SendOutcomeUnknown)
    assert (err.status_code, err.code, err.title, err.trace) == (
        400,
        "0206400",
        "A2P Registration Not Approved",
        "trace-123",
    )
    assert err.docs == "https://www.quo.com/docs"
    assert err.message == "A2P registration is not approved for this number"
    assert err.errors[0]["path"] == "/from"
    assert json.loads(err.body)["code"] == "0206400"
    assert "0206400" in str(err) and OUR_LINE not in str(err)  # the echoed value stays out of str()
    assert api.count() == 1


def test_4xx_nested_error_envelope_is_parsed(api: ScriptedAPI, make_client) -> None:
    api.script(
        "GET",
        "/v1/phone-numbers",
        Reply(401, json={"error": {"message": "Unauthorized", "key": "Unauthorized", "trace": "9876543210"}}),
    )
    with pytest.raises(OpenPhoneAPIError) as info:
        make_client().list_phone_numbers()
    err = info.value
    assert (err.status_code, err.message, err.key, err.trace) == (
        401,
        "Unauthorized",
        "Unauthorized",
        "9876543210",
    )
    assert err.code is None
    assert api.count() == 1


def test_4xx_html_body_is_tolerated(api: ScriptedAPI, make_client) -> None:
    with pytest.raises(OpenPhoneAPIError) as info:
        make_client().get_message("ACmissing")  # unscripted: the server answers an HTML 404
    assert info.value.status_code == 404
    assert "Not Found" in (info.value.message or "")
    assert api.count() == 1


# ------------------------------------------------------------------ send_message


def test_send_message_posts_documented_body_and_reads_202(api: ScriptedAPI, make_client) -> None:
    api.script(
        "POST", "/v1/messages", Reply(202, json={"data": message_json(7, status="queued", text="Hi there")})
    )
    message = make_client().send_message(from_=PN, to=[ALICE], content="Hi there")
    assert (message.id, message.status, message.text) == ("ACtest000007", "queued", "Hi there")
    (req,) = api.recorded()
    assert json.loads(req.body) == {"content": "Hi there", "from": PN, "to": [ALICE]}
    assert req.headers["content-type"].startswith("application/json")


def test_send_message_includes_user_id_when_given(api: ScriptedAPI, make_client) -> None:
    api.script("POST", "/v1/messages", Reply(202, json={"data": message_json(8, status="queued")}))
    make_client().send_message(from_=OUR_LINE, to=[ALICE], content="x", user_id="UStestUser")
    assert json.loads(api.recorded()[0].body)["userId"] == "UStestUser"


def test_send_message_not_retried_after_timeout(api: ScriptedAPI, make_client) -> None:
    api.handle("POST", "/v1/messages", lambda r: Reply(202, json={"data": message_json(9)}, delay=1.0))
    client = make_client(timeout=0.25, max_retries=6)
    with pytest.raises(SendOutcomeUnknown) as info:
        client.send_message(from_=PN, to=[ALICE], content="do not send twice")
    assert "look it up" in str(info.value)
    assert info.value.to == (ALICE,)
    assert ALICE not in str(info.value) and "do not send twice" not in str(info.value)
    threading.Event().wait(0.4)  # give a (wrong) late retry the chance to show up
    assert api.count("POST", "/v1/messages") == 1
    assert client.stats.snapshot()["retries"] == 0


def test_send_message_not_retried_after_500(api: ScriptedAPI, make_client) -> None:
    api.handle("POST", "/v1/messages", lambda r: Reply(500, json={"message": "Unknown", "code": "0201500"}))
    with pytest.raises(SendOutcomeUnknown) as info:
        make_client().send_message(from_=PN, to=[ALICE], content="hi")
    assert isinstance(info.value.__cause__, OpenPhoneServerError)
    assert info.value.status_code == 500
    assert api.count("POST", "/v1/messages") == 1


def test_send_message_retried_after_429(api: ScriptedAPI, make_client) -> None:
    api.script(
        "POST",
        "/v1/messages",
        Reply(429, json={"message": "Too many requests"}, headers={"Retry-After": "0"}),
        Reply(202, json={"data": message_json(10, status="queued")}),
    )
    client = make_client()
    assert client.send_message(from_=PN, to=[ALICE], content="hi").id == "ACtest000010"
    assert api.count("POST", "/v1/messages") == 2
    assert client.stats.snapshot()["rate_limited"] == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_send_message_retried_when_connection_refused() -> None:
    attempts: list[int] = []
    client = OpenPhoneClient(
        API_KEY,
        f"http://127.0.0.1:{_closed_port()}",
        rate_limiter=NoLimit(),
        max_retries=2,
        backoff_base=0.001,
        on_request=lambda m, p, s: attempts.append(s),
    )
    with client, pytest.raises(OpenPhoneTransportError) as info:
        client.send_message(from_=PN, to=[ALICE], content="hi")
    assert not isinstance(info.value, SendOutcomeUnknown)  # never sent, so the outcome is known
    assert attempts == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"from_": "OP1", "to": [ALICE], "content": "hi"},
        {"from_": PN, "to": ALICE, "content": "hi"},
        {"from_": PN, "to": [], "content": "hi"},
        {"from_": PN, "to": ["555"], "content": "hi"},
        {"from_": PN, "to": [ALICE], "content": "   "},
        {"from_": PN, "to": [ALICE], "content": "x" * 1601},
        {"from_": PN, "to": [ALICE], "content": "hi", "user_id": "bad"},
    ],
)
def test_send_message_validates_before_sending(api: ScriptedAPI, make_client, kwargs) -> None:
    with pytest.raises(ValueError):
        make_client().send_message(**kwargs)
    assert api.count() == 0


# ------------------------------------------------------------------ rate limiting


def test_shared_rate_budget_holds_10_per_second_across_8_threads(
    api: ScriptedAPI, make_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENPHONE_RATE_LIMIT_RPS", raising=False)
    api.handle("GET", "/v1/phone-numbers", lambda r: Reply(json={"data": []}))
    # Separate clients, default limiter: the budget is the process's, not the client's.
    clients = [make_client(rate_limiter=None) for _ in range(8)]
    assert all(c.rate_limiter is process_limiter(10) for c in clients)
    per_thread = 3
    errors: list[BaseException] = []

    def work(client: OpenPhoneClient) -> None:
        try:
            for _ in range(per_thread):
                client.list_phone_numbers()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    arrivals = sorted(r.at for r in api.recorded())
    assert len(arrivals) == 8 * per_thread
    # Sliding, closed 1-second windows of server-side arrival times: never more than 10.
    busiest = max(sum(1 for t in arrivals[i:] if t - start <= 1.0) for i, start in enumerate(arrivals))
    assert busiest <= 10


def test_token_bucket_spacing_and_burst_with_a_fake_clock() -> None:
    now = [100.0]
    bucket = TokenBucket(10, burst=3, jitter_allowance=0.0, clock=lambda: now[0], sleep=lambda s: None)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.2)
    strict = TokenBucket(10, clock=lambda: now[0], sleep=lambda s: None)
    assert [round(strict.reserve(), 6) for _ in range(3)] == [0.0, 0.12, 0.24]


def test_process_limiter_is_shared_per_rate() -> None:
    assert process_limiter(10) is process_limiter(10.0)
    assert process_limiter(5) is not process_limiter(10)


# ------------------------------------------------------------------ helpers


def test_format_datetime() -> None:
    assert format_datetime(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"
    t = datetime(2025, 1, 1, 0, 0, 0, 512345, tzinfo=UTC)
    assert format_datetime(t) == "2025-01-01T00:00:00.512Z"
    assert format_datetime(t, round_up=True) == "2025-01-01T00:00:00.513Z"
    with pytest.raises(ValueError):
        format_datetime(datetime(2025, 1, 1))


def test_parse_retry_after() -> None:
    now = datetime(2025, 11, 3, 18, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Mon, 03 Nov 2025 18:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Mon, 03 Nov 2025 17:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
