"""The receiver served by gunicorn over HTTP, against real Postgres, with the sandbox sending.

One receiver serves the module (it is stateless; `db` empties the tables per test). Tests that
break things (Postgres stopped, a worker SIGKILLed) start their own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from openphone_local.localpg import LocalPostgres, free_port
from openphone_pipelines.store.db import upgrade
from openphone_sandbox.testing import SandboxHandle, start_sandbox
from tests.receiver.conftest import count
from tests.support.events import GENERATIONS, delivery, later, message_event, new_secret, sign, sign_legacy
from tests.support.receiver_server import REPO_ROOT, RunningReceiver, running_receiver
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
SECRET = new_secret()


@pytest.fixture(scope="module")
def rx(app_db_url: str) -> Iterator[RunningReceiver]:
    with running_receiver(app_db_url, [new_secret(), SECRET], workers=2) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _sandbox(rx: RunningReceiver, generation: str, **options) -> SandboxHandle:
    return start_sandbox(seed=11, webhook_url=rx.webhook_url, webhook_secret=SECRET,
                         payload_generation=generation, history_days=1, messages_per_day=5,
                         rate_limit=1000, undelivered_rate=0.0, **options)


def _drive_traffic(sb: SandboxHandle, inbound: int, outbound: int) -> set[str]:
    """Inbound messages plus outgoing sends through the API, lifecycles finished: the ids made."""
    ids = set(sb.simulate_inbound(text="hello", count=inbound)["ids"])
    with sb.client() as api:
        for i in range(outbound):
            resp = api.post("/v1/messages", json={"content": f"reply {i}", "from": sb.main_line.id,
                                                  "to": [f"+1555010{i:04d}"]})
            assert resp.status_code == 202, resp.text
            ids.add(resp.json()["data"]["id"])
    sb.settle()  # queued -> sent -> delivered now, which emits message.delivered
    assert sb.wait_for_deliveries(timeout=20)
    return ids


def _assert_parity(sb: SandboxHandle, fresh: Engine, ids: set[str]) -> None:
    truth = {m["id"]: m["status"] for m in sb.ground_truth() if m["id"] in ids}
    with fresh.connect() as conn:
        stored = {r.id: r.status for r in conn.execute(text("SELECT id, status FROM messages"))}
        statuses = conn.execute(text("SELECT DISTINCT processing_status FROM webhook_events")).scalars().all()
    assert stored == truth
    assert statuses == ["processed"]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_sandbox_generation_stored_and_processed(rx: RunningReceiver, db: Engine, fresh: Engine,
                                                 generation: str) -> None:
    with _sandbox(rx, generation) as sb:
        ids = _drive_traffic(sb, inbound=3, outbound=2)
        delivered_events = {e["eventId"] for e in sb.events() if e["fate"] == "delivered"}
        _assert_parity(sb, fresh, ids)
    assert len(delivered_events) == 5
    with fresh.connect() as conn:
        rows = conn.execute(text("SELECT event_id, api_version, signature_scheme FROM webhook_events")).all()
    assert {r.event_id for r in rows} == delivered_events
    assert {r.api_version for r in rows} == {generation}


def test_sandbox_duplicates_and_reordering(rx: RunningReceiver, db: Engine, fresh: Engine) -> None:
    with _sandbox(rx, "v4", duplicate_rate=1.0, reorder_window=4) as sb:
        ids = _drive_traffic(sb, inbound=4, outbound=3)
        stats = sb.stats()
        _assert_parity(sb, fresh, ids)
    assert stats["duplicated"] == 7 and stats["delivered"] == 14
    assert count(fresh, "webhook_events") == 7 and count(fresh, "messages") == 7


def test_same_event_five_times_concurrently(rx: RunningReceiver, db: Engine, fresh: Engine) -> None:
    ev_id, msg_id, body = message_event("v2")
    barrier = threading.Barrier(5)

    def send(_: int) -> tuple[int, str]:
        d = sign(body, SECRET, "v2")
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            resp = client.post(rx.webhook_url, content=d.body, headers=d.headers)
        return resp.status_code, resp.json()["status"]

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(send, range(5)))
    assert [code for code, _ in results] == [200] * 5
    assert sorted(status for _, status in results) == ["duplicate"] * 4 + ["stored"]
    assert count(fresh, "webhook_events", "event_id = :e", e=ev_id) == 1
    assert count(fresh, "webhook_events") == 1
    assert count(fresh, "messages", "id = :m", m=msg_id) == 1


def test_reversed_order_over_http(rx: RunningReceiver, db: Engine, fresh: Engine, http: httpx.Client) -> None:
    msg = "AC" + "e" * 32
    newer = delivery("2026-03-30", SECRET, event_type="message.delivered", msg_id=msg, status="delivered",
                     updated=later(9))[2]
    older = delivery("2026-03-30", SECRET, event_type="message.delivered", msg_id=msg, status="sent",
                     updated=later(2))[2]
    for d in (newer, older):
        assert http.post(rx.webhook_url, content=d.body, headers=d.headers).status_code == 200
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT status FROM messages WHERE id = :id"), {"id": msg}).scalar_one() == "delivered"


@pytest.mark.parametrize("case", ["bad", "missing", "stale", "future", "wrong_key"])
def test_rejected_signatures_over_http(rx: RunningReceiver, db: Engine, fresh: Engine, http: httpx.Client,
                                       case: str) -> None:
    _, _, body = message_event("v2")
    now = time.time()
    sig = {
        "bad": f"hmac;1;{int(now * 1000)};bm90IHRoZSBzaWduYXR1cmU=",
        "missing": None,
        "stale": sign_legacy(body, SECRET, int((now - 360) * 1000)),
        "future": sign_legacy(body, SECRET, int((now + 360) * 1000)),
        "wrong_key": sign_legacy(body, new_secret(), int(now * 1000)),
    }[case]
    headers = {"content-type": "application/json"} | ({"openphone-signature": sig} if sig else {})
    resp = http.post(rx.webhook_url, content=body, headers=headers)
    assert resp.status_code == 401 and resp.json() == {"error": "invalid signature"}
    for table in ("webhook_events", "messages", "failed_webhook_queue"):
        assert count(fresh, table) == 0


def test_oversize_and_unparseable_over_http(rx: RunningReceiver, db: Engine, fresh: Engine,
                                            http: httpx.Client) -> None:
    big = b'{"id":"EVbig","pad":"' + b"x" * (300 * 1024) + b'"}'
    resp = http.post(rx.webhook_url, content=big, headers=sign(big, SECRET, "v2").headers)
    assert resp.status_code == 413
    assert count(fresh, "webhook_events") == 0

    junk = b"\x00\xffnot json"
    resp = http.post(rx.webhook_url, content=junk, headers=sign(junk, SECRET, "v4").headers)
    assert resp.status_code == 200 and resp.json()["queue_status"] == "dead"
    with fresh.connect() as conn:
        raw = conn.execute(text("SELECT raw_body FROM webhook_events")).scalar_one()
    assert bytes(raw) == junk
    assert count(fresh, "failed_webhook_queue", "status = 'dead' AND error_class = 'permanent'") == 1


def test_metrics_merge_every_worker(rx: RunningReceiver, db: Engine, http: httpx.Client) -> None:
    def scrape() -> dict[str, float]:
        out = {}
        for line in http.get(rx.url + "/metrics").text.splitlines():
            if line.startswith("openphone_receiver_deliveries_total{"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    before = scrape()
    for _ in range(12):
        d = delivery("v2", SECRET)[2]
        assert http.post(rx.webhook_url, content=d.body, headers=d.headers).status_code == 200
    key = 'openphone_receiver_deliveries_total{outcome="stored"}'
    for _ in range(4):  # whichever worker answers, it reports the sum over all workers
        assert scrape()[key] - before.get(key, 0.0) == 12


@pytest.fixture
def own_postgres() -> Iterator[tuple[LocalPostgres, str]]:
    """A Postgres of this test's own, which it may stop and start."""
    data_dir = Path(tempfile.mkdtemp(prefix="opp-rx-pg-"))
    pg = LocalPostgres(data_dir, free_port())
    pg.start()
    pg.create_database("app")
    url = pg.url("app")
    upgrade(url)
    try:
        yield pg, url
    finally:
        pg.stop(mode="immediate")
        shutil.rmtree(data_dir, ignore_errors=True)


def test_postgres_stopped_gives_503_and_redelivery_lands(own_postgres: tuple[LocalPostgres, str]) -> None:
    pg, url = own_postgres
    with running_receiver(url, [SECRET], workers=1) as server, httpx.Client(timeout=15) as http, \
            start_sandbox(seed=5, webhook_url=server.webhook_url, webhook_secret=SECRET, history_days=1,
                          messages_per_day=2, retry_schedule=[0.3, 0.6, 1.2, 2.5, 5.0, 5.0],
                          max_attempts=12) as sb:
        first = delivery("v2", SECRET)[2]
        assert http.post(server.webhook_url, content=first.body, headers=first.headers).status_code == 200

        pg.stop(mode="fast")
        ev_id, _, d = delivery("v2", SECRET)
        resp = http.post(server.webhook_url, content=d.body, headers=d.headers)
        assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
        assert resp.json() == {"error": "database unavailable, retry later"}
        assert http.get(server.url + "/healthz").status_code == 503
        # the sandbox sends while the database is down: it gets 503s and keeps retrying
        sent = sb.simulate_inbound(text="while down", count=2)["ids"]
        wait_until(lambda: all(e["lastStatus"] == 503 for e in sb.events()) and len(sb.events()) == 2,
                   10, "the sandbox to see 503s")

        pg.start()
        wait_until(lambda: http.get(server.url + "/healthz").status_code == 200, 20, "healthz 200 again")
        resp = http.post(server.webhook_url, content=d.body, headers=sign(d.body, SECRET, "v2").headers)
        assert resp.status_code == 200 and resp.json()["status"] == "stored"
        assert sb.wait_for_deliveries(timeout=30)
        assert {e["fate"] for e in sb.events()} == {"delivered"}

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            events = set(conn.execute(text("SELECT event_id FROM webhook_events")).scalars())
            messages = set(conn.execute(text("SELECT id FROM messages")).scalars())
    finally:
        engine.dispose()
    assert ev_id in events and len(events) == 4
    assert set(sent) <= messages


def test_sigkill_worker_under_load_loses_no_acknowledged_event(app_db_url: str, db: Engine,
                                                               fresh: Engine) -> None:
    acked: list[str] = []
    failed = 0
    lock = threading.Lock()
    stop = threading.Event()

    with running_receiver(app_db_url, [SECRET], workers=2) as server:
        victim = server.worker_pids()[0]

        def load() -> None:
            nonlocal failed
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    ev_id, _, d = delivery("v4", SECRET)
                    try:
                        resp = client.post(server.webhook_url, content=d.body, headers=d.headers)
                    except httpx.HTTPError:
                        with lock:
                            failed += 1
                        continue
                    with lock:
                        if 200 <= resp.status_code < 300:
                            acked.append(ev_id)
                        else:
                            failed += 1

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(acked) >= 100, 30, "load to build up")
            os.kill(victim, signal.SIGKILL)
            at_kill = len(acked)
            server.wait_for_workers(2, exclude={victim})
            wait_until(lambda: len(acked) >= at_kill + 100, 30, "load after the kill")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
    assert victim not in server.worker_pids()
    with fresh.connect() as conn:
        stored = set(conn.execute(text("SELECT event_id FROM webhook_events")).scalars())
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events are not in webhook_events"
    assert len(acked) >= 200


def test_cli_refuses_bad_config_naming_the_variable(app_db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENPHONE_", "RECEIVER_"))}
    env |= {"DATABASE_URL": app_db_url, "OPENPHONE_WEBHOOK_SECRETS": "%%%not-base64"}
    out = subprocess.run([sys.executable, "-m", "webhook_receiver.launcher", "--check"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "OPENPHONE_WEBHOOK_SECRETS" in out.stderr and "%%%" not in out.stderr
    env |= {"OPENPHONE_WEBHOOK_SECRETS": SECRET, "RECEIVER_WORKERS": "many"}
    out = subprocess.run([sys.executable, "-m", "webhook_receiver.launcher", "--check"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "RECEIVER_WORKERS" in out.stderr
