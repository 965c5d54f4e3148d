"""Done-when: history + live traffic, 20% of webhooks dropped and 10% duplicated, through the real
receiver; after reconciliation the table equals the sandbox's ground truth."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import Engine, text

from openphone_pipelines.assets.openphone_messages import RANGE_END_TAG, RANGE_START_TAG, openphone_messages
from openphone_pipelines.resources import OpenPhoneResource
from openphone_sandbox.testing import start_sandbox
from tests.support.receiver_server import running_receiver


def test_reconciliation_restores_parity_after_lossy_webhooks(app_db_url: str, db: Engine, resources: dict) -> None:
    settle_now = {"ops": {"openphone_messages": {"config": {"settle_after_minutes": 0}}}}
    secret = base64.b64encode(os.urandom(32)).decode()
    with running_receiver(app_db_url, [secret]) as rx, start_sandbox(
        seed=21, history_days=3, messages_per_day=60, live_rate=4.0, webhook_url=rx.webhook_url,
        webhook_secret=secret, history_webhooks=True, drop_rate=0.2, duplicate_rate=0.1, rate_limit=1000,
        sent_after_s=0.2, delivered_after_s=0.3,
    ) as sandbox:
        sandbox.advance(5)  # ~20 live messages now, then live traffic keeps flowing in real time
        cutoff_ms = sandbox.sandbox.now_ms()
        sandbox.settle()  # every lifecycle begun before the cutoff reaches its final status
        assert sandbox.wait_for_deliveries(timeout=60)
        openphone = OpenPhoneResource(api_key=sandbox.api_key, base_url=sandbox.base_url,
                                      app_db=resources["app_db"], rate_limit_rps=1000)
        today = datetime.now(UTC).date()
        tags = {RANGE_START_TAG: (today - timedelta(days=3)).isoformat(), RANGE_END_TAG: today.isoformat()}
        with dg.instance_for_test() as instance:
            result = dg.materialize([openphone_messages], resources={**resources, "openphone": openphone},
                                    instance=instance, tags=tags, run_config=settle_now)
            assert result.success
            meta = result.asset_materializations_for_node("openphone_messages")[0].metadata
            checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
            rerun = dg.materialize([openphone_messages], resources={**resources, "openphone": openphone},
                                   instance=instance, tags=tags, run_config=settle_now)
            meta2 = rerun.asset_materializations_for_node("openphone_messages")[0].metadata

        cutoff = datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC)
        truth = {r["id"]: r for r in sandbox.ground_truth(createdBefore=cutoff.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
                 if r["createdAt"] >= tags[RANGE_START_TAG]}
        events = sandbox.events()

    with db.connect() as conn:
        rows = {r.id: r for r in conn.execute(
            text("SELECT id, status, first_seen_via FROM messages WHERE created_at < :cutoff"), {"cutoff": cutoff})}
    assert set(rows) == set(truth)  # every id, no extra row
    assert {i: r.status for i, r in rows.items()} == {i: r["status"] for i, r in truth.items()}

    delivered_by_webhook = {e["messageId"] for e in events if e["fate"] == "delivered"}
    missed = set(truth) - delivered_by_webhook  # dropped, or never sent by webhook (undelivered)
    assert {e["messageId"] for e in events if e["fate"] == "dropped"} & set(truth)  # drops really happened
    assert {i for i, r in rows.items() if r.first_seen_via == "reconciliation"} == missed
    assert meta["inserted_missed_by_webhooks"].value >= len(missed)  # plus live messages after the cutoff
    assert checks["completeness"].passed
    coverage = checks["webhook_coverage"].metadata
    assert coverage["missed_by_webhooks"].value == meta["inserted_missed_by_webhooks"].value
    measured = coverage["first_seen_via_webhook"].value / (
        coverage["first_seen_via_webhook"].value + coverage["missed_by_webhooks"].value)
    assert coverage["coverage"].value == measured < 0.95 and not checks["webhook_coverage"].passed
    assert (meta2["inserted_missed_by_webhooks"].value, meta2["statuses_repaired"].value) == (0, 0) or \
        meta2["messages_seen"].value > meta["messages_seen"].value  # only live traffic can add rows
