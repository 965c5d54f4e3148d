"""The asset, its checks, schedules and alert sensors through Dagster's own test utilities.

Real Postgres (app tables), the sandbox over HTTP, a real SMTP server; Dagster storage is a
temporary instance (SQLite, or Postgres where the run history matters).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from openphone_pipelines.assets.openphone_messages import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    openphone_messages,
    reconciliation_daily_schedule,
)
from openphone_pipelines.assets.weekly_integrity import (
    weekly_integrity,
    weekly_integrity_job,
    weekly_integrity_schedule,
)
from openphone_pipelines.sensors.check_alert_sensor import check_failure_alerts
from openphone_pipelines.sensors.run_failure_alert_sensor import run_failure_alerts
from openphone_sandbox.testing import SandboxHandle

from .conftest import day_window


def tunables(**config) -> dict:
    """Run config for the asset's per-run tunables (ReconcileConfig)."""
    return {"ops": {"openphone_messages": {"config": config}}}


def _count(db: Engine, sql: str, **params) -> int:
    with db.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _truth_ids(sandbox: SandboxHandle, first: str, last: str) -> set[str]:
    start, end = day_window(first, last)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {r["id"] for r in sandbox.ground_truth(createdAfter=start.strftime(fmt), createdBefore=end.strftime(fmt))}


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def test_ranged_materialize_writes_every_partition_and_rerun_changes_nothing(
    resources: dict, db: Engine, sandbox: SandboxHandle, instance: dg.DagsterInstance
) -> None:
    tags = {RANGE_START_TAG: "2026-11-01", RANGE_END_TAG: "2026-11-03"}
    result = dg.materialize([openphone_messages], resources=resources, instance=instance, tags=tags,
                            run_config=tunables(settle_after_minutes=0))
    assert result.success
    mats = result.asset_materializations_for_node("openphone_messages")
    assert sorted(m.partition for m in mats) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    meta = mats[0].metadata
    expected = _truth_ids(sandbox, "2026-11-01", "2026-11-03")
    assert meta["inserted_missed_by_webhooks"].value == meta["messages_seen"].value == len(expected)
    assert meta["api_calls"].value > meta["conversations_scanned"].value > 0
    assert "| line | conversation | missed |" in meta["misses"].value
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"completeness", "settled_statuses", "webhook_coverage", "referential_integrity",
                                "webhook_events_processed"}
    assert evaluations["completeness"].passed and evaluations["referential_integrity"].passed
    assert evaluations["settled_statuses"].passed and evaluations["webhook_events_processed"].passed
    assert not evaluations["webhook_coverage"].passed  # nothing came by webhook: coverage 0
    assert evaluations["webhook_coverage"].metadata["missed_by_webhooks"].value == len(expected)
    assert _count(db, "SELECT count(*) FROM messages") == len(expected)

    again = dg.materialize([openphone_messages], resources=resources, instance=instance, partition_key="2026-11-02",
                           run_config=tunables(settle_after_minutes=0))
    meta2 = again.asset_materializations_for_node("openphone_messages")[0].metadata
    assert (meta2["inserted_missed_by_webhooks"].value, meta2["statuses_repaired"].value) == (0, 0)
    assert _count(db, "SELECT count(*) FROM messages") == len(expected)


def test_deleted_row_fails_weekly_completeness_and_emails_exactly_once(
    resources: dict, db: Engine, sandbox: SandboxHandle, instance: dg.DagsterInstance, smtp_server
) -> None:
    # no webhooks here: coverage 0 is allowed, so only completeness may fail
    assert dg.materialize([openphone_messages], resources=resources, instance=instance,
                          tags={RANGE_START_TAG: "2026-11-01", RANGE_END_TAG: "2026-11-03"},
                          run_config=tunables(coverage_min=0)).success
    with db.begin() as conn:
        victim = conn.execute(text("SELECT id FROM messages WHERE created_at >= '2026-11-02' ORDER BY id LIMIT 1")
                              ).scalar_one()
        conn.execute(text("DELETE FROM messages WHERE id = :id"), {"id": victim})
    config = {"ops": {"openphone_weekly_integrity": {"config": {"days": 3, "end_date": "2026-11-04",
                                                                "coverage_min": 0}}}}
    defs = dg.Definitions(asset_checks=[weekly_integrity], jobs=[weekly_integrity_job], resources=resources)
    run = defs.resolve_job_def("openphone_weekly_integrity_job").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False)
    assert run.success  # weekly checks are not blocking: the failure is reported, the run is fine
    evaluations = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert not evaluations["weekly_completeness"].passed
    assert evaluations["weekly_completeness"].metadata["missing"].value == 1

    for _ in range(3):  # three ticks, one email: the cursor and the alert log both hold it back
        with dg.build_sensor_context(instance=instance, cursor=_cursor(instance),
                                     resources={k: resources[k] for k in ("notifier", "app_db")}) as ctx:
            check_failure_alerts(ctx)
            _save_cursor(instance, ctx.cursor)
    emails = smtp_server.wait_for(2, timeout=1.0)  # a second email would have arrived by now
    assert [" ".join(m["Subject"].split()) for m in emails] == [
        "[openphone] ERROR: check weekly_completeness failed for 2026-11-01 .. 2026-11-03 (3 days)"]
    body = emails[0].get_payload()
    assert "2026-11-01, 2026-11-02, 2026-11-03" in body and "missing: 1" in body and victim in body
    assert f"http://dagster.test/runs/{run.run_id}" in body
    # a fresh cursor (lost state) still cannot email twice: alert_log is keyed by evaluation id
    with dg.build_sensor_context(instance=instance, resources={k: resources[k] for k in ("notifier", "app_db")}) as ctx:
        check_failure_alerts(ctx)
    assert len(smtp_server.messages) == 1


_CURSORS: dict[int, str | None] = {}


def _cursor(instance: dg.DagsterInstance) -> str | None:
    return _CURSORS.get(id(instance))


def _save_cursor(instance: dg.DagsterInstance, cursor: str | None) -> None:
    _CURSORS[id(instance)] = cursor


def test_run_failure_sensor_emails_once_per_run(resources: dict, instance: dg.DagsterInstance, smtp_server) -> None:
    @dg.op
    def boom() -> None:
        raise RuntimeError("kaboom")

    @dg.job
    def failing_job() -> None:
        boom()

    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    for _ in range(2):
        with dg.build_run_status_sensor_context(
            sensor_name="openphone_run_failure_alerts", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=failure, resources={k: resources[k] for k in ("notifier", "app_db")},
        ) as ctx:
            run_failure_alerts(ctx.for_run_failure())
    emails = smtp_server.wait_for(1)
    assert len(emails) == 1
    assert "failing_job" in emails[0]["Subject"]
    assert f"http://dagster.test/runs/{result.run_id}" in emails[0].get_payload()


def test_schedules_target_the_two_latest_complete_days_and_sunday_checks() -> None:
    def tick(at: datetime) -> dg.RunRequest:
        with dg.instance_for_test() as inst, dg.build_schedule_context(instance=inst, scheduled_execution_time=at) as ctx:
            return reconciliation_daily_schedule.evaluate_tick(ctx).run_requests[0]

    request = tick(datetime(2026, 11, 29, 2, tzinfo=UTC))
    same_day_later = tick(datetime(2026, 11, 29, 2, 5, tzinfo=UTC))
    assert request.tags[RANGE_START_TAG] == "2026-11-27" and request.tags[RANGE_END_TAG] == "2026-11-28"
    # a compressed cadence launches one run per tick, not one per day
    assert same_day_later.tags == request.tags and same_day_later.run_key != request.run_key
    assert reconciliation_daily_schedule.execution_timezone == "UTC"
    assert weekly_integrity_schedule.cron_schedule == "0 3 * * 0"
    assert weekly_integrity_schedule.execution_timezone == "UTC"


def test_code_location_loads() -> None:
    from openphone_pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("openphone_reconciliation_job")
    assert [n.name for n in job.graph.nodes] == ["openphone_messages"]  # weekly checks stay out
    assert defs.resolve_sensor_def("openphone_check_failure_alerts")
    assert defs.resolve_sensor_def("openphone_run_failure_alerts")
    assert openphone_messages.partitions_def.get_last_partition_key() == datetime.now(UTC).date().isoformat()


def test_blocking_completeness_failure_fails_the_run_and_emails_once(
    resources: dict, db: Engine, sandbox: SandboxHandle, instance: dg.DagsterInstance, smtp_server
) -> None:
    """A writer that silently loses one row (a real trigger) fails the in-asset completeness check."""
    victim = sorted(_truth_ids(sandbox, "2026-11-02", "2026-11-02"))[0]
    with db.begin() as conn:
        conn.execute(text(
            "CREATE FUNCTION lose_one_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.id = '{victim}' THEN RETURN NULL; END IF; RETURN NEW; END $$"))
        conn.execute(text("CREATE TRIGGER lose_one_row BEFORE INSERT ON messages FOR EACH ROW"
                          " EXECUTE FUNCTION lose_one_row()"))
    try:
        result = dg.materialize([openphone_messages], resources=resources, instance=instance,
                                partition_key="2026-11-02", raise_on_error=False,
                                run_config=tunables(coverage_min=0))  # no webhooks: only completeness may fail
    finally:
        with db.begin() as conn:
            conn.execute(text("DROP TRIGGER lose_one_row ON messages"))
            conn.execute(text("DROP FUNCTION lose_one_row()"))
    assert not result.success
    completeness = next(e for e in result.get_asset_check_evaluations() if e.check_name == "completeness")
    assert not completeness.passed and completeness.metadata["missing"].value == 1

    sensor_resources = {k: resources[k] for k in ("notifier", "app_db")}
    with dg.build_sensor_context(instance=instance, resources=sensor_resources) as ctx:
        check_failure_alerts(ctx)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    with dg.build_run_status_sensor_context(
        sensor_name="openphone_run_failure_alerts", dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=failure, resources=sensor_resources,
    ) as ctx:
        run_failure_alerts(ctx.for_run_failure())
    emails = smtp_server.wait_for(2, timeout=1.0)
    assert len(emails) == 1, [m["Subject"] for m in emails]
    assert "check completeness failed for 2026-11-02" in emails[0]["Subject"]
    assert victim in emails[0].get_payload()
