"""Pagination to the last page without loss or repeat, and the 10 rps per key limiter."""

from __future__ import annotations

import httpx
import pytest

from openphone_sandbox.testing import start_sandbox
from tests.support.waiting import wait_until


def test_paginate_2500_messages_one_conversation() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, rate_limit=10_000) as h, h.client() as c:
        sender = "+14155550177"
        created = h.simulate_inbound(text="bulk", sender=sender, count=2500)["ids"]
        assert len(created) == 2500
        params = {"phoneNumberId": h.main_line.id, "participants": [sender], "maxResults": 100}
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            resp = c.get("/v1/messages", params={**params, **({"pageToken": token} if token else {})})
            assert resp.status_code == 200
            body = resp.json()
            assert len(body["data"]) <= 100
            assert isinstance(body["totalItems"], int)
            seen.extend(m["id"] for m in body["data"])
            pages += 1
            token = body["nextPageToken"]
            if token is None:
                break
            assert pages < 100
        assert pages == 25
        assert len(seen) == len(set(seen)) == 2500
        assert set(seen) == set(created)
        stamps = [c.get(f"/v1/messages/{mid}").json()["data"]["createdAt"] for mid in seen[:3]]
        assert stamps == sorted(stamps, reverse=True)


def test_created_window_bounds() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, rate_limit=10_000) as h, h.client() as c:
        sender = "+14155550178"
        h.simulate_inbound(sender=sender, count=3)
        msgs = c.get("/v1/messages", params={"phoneNumberId": h.main_line.id, "participants": sender,
                                             "maxResults": 10}).json()["data"]
        t = msgs[0]["createdAt"]
        base = {"phoneNumberId": h.main_line.id, "participants": sender, "maxResults": 10}
        after = c.get("/v1/messages", params={**base, "createdAfter": t}).json()["data"]
        before = c.get("/v1/messages", params={**base, "createdBefore": t}).json()["data"]
        assert all(m["createdAt"] >= t for m in after) and msgs[0]["id"] in {m["id"] for m in after}
        assert all(m["createdAt"] < t for m in before)
        assert c.get("/v1/messages", params={**base, "createdAfter": "yesterday"}).status_code == 400
        assert c.get("/v1/messages", params={**base, "pageToken": "garbage"}).status_code == 400


@pytest.mark.parametrize("retry_after", [False, True])
def test_rate_limit_429(retry_after: bool) -> None:
    with start_sandbox(history_days=0, messages_per_day=0, rate_limit=10, retry_after=retry_after) as h, \
            h.client() as c:
        codes = []
        last: httpx.Response | None = None
        for _ in range(25):
            resp = c.get("/v1/phone-numbers")
            codes.append(resp.status_code)
            if resp.status_code == 429:
                last = resp
        assert codes[:10] == [200] * 10
        assert codes.count(429) >= 5
        assert last is not None
        body = last.json()
        assert body["status"] == 429 and body["code"].endswith("429")
        assert ("retry-after" in last.headers) is retry_after
        if retry_after:
            assert int(last.headers["retry-after"]) >= 1
        assert "ratelimit-policy" in last.headers
        # the bucket refills: a later request succeeds again (condition wait, not a fixed sleep)
        wait_until(lambda: c.get("/v1/phone-numbers").status_code == 200, timeout=3, interval=0.1)


def test_rate_limit_is_per_key() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, rate_limit=10, extra_api_keys=["second-key"]) as h:
        with h.client() as c:
            codes = [c.get("/v1/phone-numbers").status_code for _ in range(15)]
        assert 429 in codes
        other = httpx.get(h.api_url + "/phone-numbers", headers={"Authorization": "second-key"})
        assert other.status_code == 200
