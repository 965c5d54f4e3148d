"""What starts a sweep: the 30-second sensor (only when something is due, one run per due set)
and the 5-minute schedule (safety net, also for orphaned events), each skipping when idle."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from openphone_pipelines.definitions import defs
from openphone_pipelines.jobs.retry_sweep_job import retry_sweep_schedule
from openphone_pipelines.sensors.retry_trigger_sensor import retry_sweep_sensor
from openphone_pipelines.store import retry_queue
from tests.recovery.support import make_due
from tests.support.events import store_event
from tests.support.resources import dagster_resources


def _tick_sensor(instance, app_db_url):
    with dg.build_sensor_context(instance=instance, resources=dagster_resources(app_db_url)) as ctx:
        return retry_sweep_sensor.evaluate_tick(ctx)


def _tick_schedule(instance, app_db_url):
    with dg.build_schedule_context(instance=instance, resources=dagster_resources(app_db_url),
                                   scheduled_execution_time=datetime(2026, 11, 1, 12, 5, tzinfo=UTC)) as ctx:
        return retry_sweep_schedule.evaluate_tick(ctx)


def test_sensor_runs_only_when_due_with_a_stable_run_key(db, app_db_url):
    event_id = store_event(db, 1)
    with dg.instance_for_test() as instance:
        idle = _tick_sensor(instance, app_db_url)
        assert idle.run_requests == [] and "no retry due" in idle.skip_message

        with db.begin() as conn:
            retry_queue.enqueue_failure(conn, event_id, error_class="transient", error="boom")
        assert _tick_sensor(instance, app_db_url).run_requests == []  # pending, but due in a minute

        make_due(db)
        first = _tick_sensor(instance, app_db_url)
        second = _tick_sensor(instance, app_db_url)
        assert len(first.run_requests) == 1
        assert first.run_requests[0].run_key == second.run_requests[0].run_key  # the daemon launches once
        assert first.run_requests[0].tags["openphone/due_rows"] == "1"

        with db.begin() as conn:  # a failed attempt changes the due set, so the next due time is a new run
            conn.execute(text("UPDATE failed_webhook_queue SET attempts = 1"))
        assert _tick_sensor(instance, app_db_url).run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_starts_a_sweep_for_orphans_and_expired_claims(db, app_db_url):
    """Work the 5-minute schedule used to be the only one to notice: an event a receiver stored and
    never processed, and a row a crashed sweep left in `processing` past its lease."""
    with dg.instance_for_test() as instance:
        orphan = store_event(db, 3)
        assert _tick_sensor(instance, app_db_url).run_requests == []  # fresh: its receiver may be working on it
        with db.begin() as conn:
            conn.execute(text("UPDATE webhook_events SET received_at = now() - interval '90 seconds'"
                              " WHERE id = :id"), {"id": orphan})
        orphan_tick = _tick_sensor(instance, app_db_url)
        assert len(orphan_tick.run_requests) == 1

        stuck = store_event(db, 4)
        with db.begin() as conn:
            conn.execute(text("UPDATE webhook_events SET processing_status = 'failed'"))
            retry_queue.enqueue_failure(conn, stuck, error_class="transient", error="boom")
            conn.execute(text("UPDATE failed_webhook_queue SET status = 'processing',"
                              " claimed_at = now() - interval '11 minutes'"))
        claim_tick = _tick_sensor(instance, app_db_url)
        assert len(claim_tick.run_requests) == 1
        assert claim_tick.run_requests[0].run_key != orphan_tick.run_requests[0].run_key


def test_schedule_skips_when_idle_and_adopts_orphans(db, app_db_url):
    with dg.instance_for_test() as instance:
        idle = _tick_schedule(instance, app_db_url)
        assert idle.run_requests == [] and "nothing due" in idle.skip_message

        orphan = store_event(db, 2)  # the receiver stored it and died before processing
        with db.begin() as conn:
            conn.execute(text("UPDATE webhook_events SET received_at = now() - interval '10 minutes'"
                              " WHERE id = :id"), {"id": orphan})
        tick = _tick_schedule(instance, app_db_url)
        assert len(tick.run_requests) == 1 and tick.run_requests[0].tags["openphone/orphans"] == "1"


def test_code_location_exposes_everything_running_by_default():
    dg.Definitions.validate_loadable(defs)
    expected_schedules = {
        "webhook_health_probe_schedule": "0 * * * *",
        "webhook_health_history_schedule": "5 * * * *",
        "retry_sweep_schedule": "*/5 * * * *",
        "webhook_failure_monitor_schedule": "0 * * * *",
        "health_probe_cleanup_schedule": "0 3 * * *",
        "retry_queue_cleanup_schedule": "0 4 * * 0",
    }
    for name, cron in expected_schedules.items():
        schedule = defs.resolve_schedule_def(name)
        assert schedule.cron_schedule == cron
        assert schedule.execution_timezone == "UTC"
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name, interval in {"retry_sweep_sensor": 30, "webhook_health_probe_sensor": 30}.items():
        sensor = defs.resolve_sensor_def(name)
        assert sensor.minimum_interval_seconds == interval
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for job in ("webhook_health_probe_job", "retry_sweep_job", "replay_failed_webhooks_job",
                "webhook_failure_monitor_job", "health_probe_cleanup_job", "retry_queue_cleanup_job"):
        defs.resolve_job_def(job)
    assert defs.resolve_job_def("webhook_health_probe_job").tags["dagster/max_retries"] == "0"
