"""The hourly failure-rate monitor (real rate, thresholds, one email per window) and the cleanups
(only what they should)."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from openphone_pipelines.jobs.failure_monitor_job import webhook_failure_monitor_job
from openphone_pipelines.jobs.retention_jobs import health_probe_cleanup_job, retry_queue_cleanup_job
from openphone_pipelines.store import retry_queue
from tests.support.events import store_event
from tests.support.resources import dagster_resources


def _monitor(instance, app_db_url, smtp_server):
    result = webhook_failure_monitor_job.execute_in_process(instance=instance,
                                                            resources=dagster_resources(app_db_url, smtp_server))
    assert result.success
    return result.output_for_node("monitor_webhook_failures")


def test_failure_rate_is_failed_over_received_and_alerts_once_per_hour(db, app_db_url, smtp_server):
    ids = [store_event(db, n) for n in range(20)]
    with db.begin() as conn:
        retry_queue.enqueue_failure(conn, ids[0], error_class="transient", error="db down")  # 1/20 = 5%
        # an old failure outside the window does not count
        old = store_event(db, 99)
        conn.execute(text("UPDATE webhook_events SET received_at = now() - interval '2 hours' WHERE id = :id"),
                     {"id": old})
        retry_queue.enqueue_failure(conn, old, error_class="transient", error="db down")
    with dg.instance_for_test() as instance:
        out = _monitor(instance, app_db_url, smtp_server)
        assert out["rate"] == 1 / 20 and out["new_dead"] == 0 and out["alerts"] == []  # 5% is not above 5%

        with db.begin() as conn:
            retry_queue.enqueue_failure(conn, ids[1], error_class="permanent", error="bad payload")  # 10%, 1 dead
        out = _monitor(instance, app_db_url, smtp_server)
        assert out["rate"] == 2 / 20 and out["new_dead"] == 1
        assert sorted(out["alerts"]) == ["dead_letters", "failure_rate"]
        assert len(smtp_server.wait_for(2)) == 2

        assert _monitor(instance, app_db_url, smtp_server)["alerts"] == []  # same hour: no second email
    assert len(smtp_server.messages) == 2


def test_weekly_cleanup_deletes_only_old_resolved_rows(db, fresh, app_db_url):
    ids = [store_event(db, n) for n in range(4)]
    with db.begin() as conn:
        for event_id in ids:
            retry_queue.enqueue_failure(conn, event_id, error_class="transient", error="x")
        conn.execute(text("UPDATE failed_webhook_queue SET status = 'resolved', resolved_at = now() - interval '8 days'"
                          " WHERE id = 1"))
        conn.execute(text("UPDATE failed_webhook_queue SET status = 'resolved', resolved_at = now() - interval '6 days'"
                          " WHERE id = 2"))
        conn.execute(text("UPDATE failed_webhook_queue SET status = 'dead', updated_at = now() - interval '60 days',"
                          " created_at = now() - interval '60 days' WHERE id = 3"))
    with dg.instance_for_test() as instance:
        result = retry_queue_cleanup_job.execute_in_process(instance=instance, resources=dagster_resources(app_db_url))
    assert result.output_for_node("delete_resolved_retries") == 1
    with fresh.connect() as conn:
        left = dict(conn.execute(text("SELECT id, status FROM failed_webhook_queue ORDER BY id")).all())
    assert left == {2: "resolved", 3: "dead", 4: "pending"}


def test_daily_cleanup_deletes_only_probes_older_than_30_days(db, fresh, app_db_url):
    with db.begin() as conn:
        for i, age in enumerate(["31 days", "29 days", "1 hour"]):
            conn.execute(text(
                "INSERT INTO webhook_health_checks (nonce, from_line, to_number, status, sent_at)"
                f" VALUES (:n, 'PNprobe', '+15550000000', 'failed', now() - interval '{age}')"
            ), {"n": f"n{i}"})
    with dg.instance_for_test() as instance:
        result = health_probe_cleanup_job.execute_in_process(instance=instance, resources=dagster_resources(app_db_url))
    assert result.output_for_node("delete_old_health_probes") == 1
    with fresh.connect() as conn:
        assert sorted(conn.execute(text("SELECT nonce FROM webhook_health_checks")).scalars()) == ["n1", "n2"]
