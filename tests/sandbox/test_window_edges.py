"""Window-edge inclusivity: each createdAfter/createdBefore (and conversation updatedAfter/updatedBefore)
edge can include or exclude a record exactly on it, switched at start or at runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from openphone_sandbox.cli import build_parser, config_from_args
from openphone_sandbox.testing import SandboxHandle, start_sandbox

START = "2026-03-09T00:00:00.000Z"
MIDDLE = "2026-03-09T12:00:00.000Z"
END = "2026-03-10T00:00:00.000Z"
TEXTER = "+14155550301"
EDGE_FLAGS = ("created_after_inclusive", "created_before_inclusive",
              "updated_after_inclusive", "updated_before_inclusive")


@pytest.fixture(scope="module")
def edges() -> Iterator[tuple[SandboxHandle, dict[str, str]]]:
    """One conversation with a message exactly on each edge of [START, END] and one inside."""
    with start_sandbox(history_days=0, messages_per_day=0, rate_limit=10_000) as h:
        ids = {at: h.simulate_inbound(f"at {at}", sender=TEXTER, created_at=at)["data"]["id"]
               for at in (START, MIDDLE, END)}
        yield h, ids


def _set_edges(h: SandboxHandle, **flags: bool) -> None:
    """Set all four switches (defaults = today's behaviour) so tests do not depend on their order."""
    settings = {"created_after_inclusive": True, "created_before_inclusive": False,
                "updated_after_inclusive": True, "updated_before_inclusive": False, **flags}
    assert {k: h.set_faults(**settings)[k] for k in EDGE_FLAGS} == settings


def _listed(h: SandboxHandle, **params: str) -> set[str]:
    with h.client() as c:
        resp = c.get("/v1/messages", params={"phoneNumberId": h.main_line.id, "participants": TEXTER,
                                             "maxResults": 100, **params})
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


@pytest.mark.parametrize(("setting", "param", "bound", "inclusive"), [
    ("created_after_inclusive", "createdAfter", START, True),
    ("created_after_inclusive", "createdAfter", START, False),
    ("created_before_inclusive", "createdBefore", END, False),
    ("created_before_inclusive", "createdBefore", END, True),
    ("created_before_inclusive", "since", END, False),  # deprecated `since` behaves as createdBefore
    ("created_before_inclusive", "since", END, True),
])
def test_message_on_the_edge(edges: tuple[SandboxHandle, dict[str, str]], setting: str, param: str, bound: str,
                             inclusive: bool) -> None:
    h, ids = edges
    _set_edges(h, **{setting: inclusive})
    listed = _listed(h, **{param: bound})
    assert (ids[bound] in listed) is inclusive
    assert set(ids.values()) - {ids[bound]} <= listed


def test_both_edges_exclusive_and_inclusive(edges: tuple[SandboxHandle, dict[str, str]]) -> None:
    h, ids = edges
    _set_edges(h, created_after_inclusive=False, created_before_inclusive=False)
    assert _listed(h, createdAfter=START, createdBefore=END) == {ids[MIDDLE]}
    _set_edges(h, created_after_inclusive=True, created_before_inclusive=True)
    assert _listed(h, createdAfter=START, createdBefore=END) == set(ids.values())


def _conversation_listed(h: SandboxHandle, conv_id: str, **params: str) -> bool:
    with h.client() as c:
        resp = c.get("/v1/conversations", params={"phoneNumbers": h.main_line.id, "maxResults": 100, **params})
    assert resp.status_code == 200, resp.text
    return conv_id in {cv["id"] for cv in resp.json()["data"]}


@pytest.mark.parametrize("inclusive", [True, False])
def test_conversation_edges(edges: tuple[SandboxHandle, dict[str, str]], inclusive: bool) -> None:
    """The conversation was created at START and last active at END: each bound sits on an edge."""
    h, ids = edges
    with h.client() as c:
        conv = c.get(f"/v1/messages/{ids[START]}").json()["data"]["conversationId"]
    _set_edges(h, **dict.fromkeys(EDGE_FLAGS, inclusive))
    assert _conversation_listed(h, conv, createdAfter=START) is inclusive
    assert _conversation_listed(h, conv, createdBefore=START) is inclusive
    assert _conversation_listed(h, conv, updatedAfter=END) is inclusive
    assert _conversation_listed(h, conv, updatedBefore=END) is inclusive
    # a bound one millisecond away is not an edge: unaffected by the switches
    assert _conversation_listed(h, conv, updatedAfter="2026-03-09T23:59:59.999Z")
    assert not _conversation_listed(h, conv, createdAfter="2026-03-09T00:00:00.001Z")


def test_ground_truth_window_ignores_the_switches(edges: tuple[SandboxHandle, dict[str, str]]) -> None:
    h, ids = edges
    _set_edges(h, created_after_inclusive=False, created_before_inclusive=True)
    truth = {m["id"] for m in h.ground_truth(createdAfter=START, createdBefore=END)}
    assert truth == {ids[START], ids[MIDDLE]}


def test_edges_from_start_options() -> None:
    with start_sandbox(history_days=0, messages_per_day=0, created_after_inclusive=False,
                       created_before_inclusive=True) as h:
        ids = {at: h.simulate_inbound("x", sender=TEXTER, created_at=at)["data"]["id"] for at in (START, END)}
        assert _listed(h, createdAfter=START, createdBefore=END) == {ids[END]}


def test_bad_edge_value_is_refused(edges: tuple[SandboxHandle, dict[str, str]]) -> None:
    h, _ = edges
    _set_edges(h)
    resp = httpx.post(h.base_url + "/_sandbox/faults", json={"created_after_inclusive": "no"})
    assert resp.status_code == 400 and "created_after_inclusive" in resp.json()["message"]
    assert h.faults()["created_after_inclusive"] is True


def test_cli_edge_flags() -> None:
    args = build_parser().parse_args(["serve", "--created-after-edge", "exclusive",
                                      "--created-before-edge", "inclusive", "--updated-after-edge", "exclusive"])
    cfg = config_from_args(args, 0.0)
    assert (cfg.created_after_inclusive, cfg.created_before_inclusive) == (False, True)
    assert (cfg.updated_after_inclusive, cfg.updated_before_inclusive) == (False, False)
    default = config_from_args(build_parser().parse_args(["serve"]), 0.0)
    assert (default.created_after_inclusive, default.created_before_inclusive) == (True, False)


def test_cli_serves_with_edges_and_empty_history() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "openphone_sandbox", "serve", "--port", "0", "--no-history",
         "--created-after-edge", "exclusive"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert httpx.get(info["baseUrl"] + "/_sandbox/ground-truth").json()["count"] == 0
        assert httpx.get(info["baseUrl"] + "/_sandbox/faults").json()["created_after_inclusive"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_bad_setting_stops_start_naming_it() -> None:
    out = subprocess.run([sys.executable, "-m", "openphone_sandbox", "serve", "--port", "0", "--drop-rate", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "drop_rate" in out.stderr and out.stdout == ""
