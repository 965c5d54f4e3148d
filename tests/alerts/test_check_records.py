"""The adapter over Dagster internals (sensors/check_records.py), against real runs on a real instance
(SQLite and Postgres storage): if a Dagster upgrade moves what it reads, these fail first."""

from collections.abc import Iterator

import dagster as dg
import pytest

from openphone_pipelines.sensors.check_records import check_executions, failed_only_by_blocking_checks

PARTITIONS = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02"])


@dg.asset(partitions_def=PARTITIONS, check_specs=[dg.AssetCheckSpec("no_gaps", asset="guarded", blocking=True)])
def guarded(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    bad = context.partition_key == "2026-11-02"
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
        check_name="no_gaps", passed=not bad, severity=dg.AssetCheckSeverity.ERROR,
        description="1 message missing" if bad else None,
        # as the product does: Dagster 1.13 records no partition for a check of a partitioned asset
        metadata={"partitions": context.partition_key, "missing": int(bad), "by_day": dg.MetadataValue.md("| day |\n|---|")},
    )])


@dg.asset(check_specs=[dg.AssetCheckSpec("never_reached", asset="crashing")])
def crashing():
    raise RuntimeError("boom before any check")


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, dagster_pg_url: str) -> Iterator[dg.DagsterInstance]:
    overrides = None
    if request.param == "postgres":
        overrides = {"storage": {"postgres": {"postgres_url": dagster_pg_url}}}
    with dg.instance_for_test(overrides=overrides) as inst:
        yield inst


def _step_failures(result) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]


def test_check_executions_as_plain_records_oldest_first(instance: dg.DagsterInstance) -> None:
    good = dg.materialize([guarded], instance=instance, partition_key="2026-11-01")
    bad = dg.materialize([guarded], instance=instance, partition_key="2026-11-02", raise_on_error=False)
    assert good.success and not bad.success  # the blocking check failed the second run

    key = dg.AssetCheckKey(dg.AssetKey("guarded"), "no_gaps")
    first, second = check_executions(instance, key, after_id=0, limit=10)[-2:]
    assert first.id < second.id
    assert (first.run_id, first.planned_only) == (good.run_id, False)
    assert (first.partition or first.evaluation.metadata["partitions"]) == "2026-11-01"
    assert first.evaluation.passed and first.evaluation.description is None
    assert (second.run_id, second.check_key) == (bad.run_id, "guarded:no_gaps")
    assert (second.check_name, second.asset) == ("no_gaps", "guarded")
    assert not second.evaluation.passed and second.evaluation.severity == "ERROR"
    assert second.evaluation.description == "1 message missing"
    assert second.evaluation.metadata == {"partitions": "2026-11-02", "missing": 1, "by_day": "| day |\n|---|"}
    assert [e.id for e in check_executions(instance, key, after_id=first.id, limit=10)] == [second.id]


def test_a_check_whose_run_crashed_stays_planned_without_a_result(instance: dg.DagsterInstance) -> None:
    result = dg.materialize([crashing], instance=instance, raise_on_error=False)
    assert not result.success
    [execution] = check_executions(instance, dg.AssetCheckKey(dg.AssetKey("crashing"), "never_reached"),
                                   after_id=0, limit=10)
    assert execution.run_id == result.run_id and execution.planned_only and execution.evaluation is None
    assert instance.get_run_by_id(result.run_id).is_finished


def test_failed_only_by_blocking_checks_tells_a_check_failure_from_a_crash(instance: dg.DagsterInstance) -> None:
    blocked = dg.materialize([guarded], instance=instance, partition_key="2026-11-02", raise_on_error=False)
    crashed = dg.materialize([crashing], instance=instance, raise_on_error=False)
    assert _step_failures(blocked) and _step_failures(crashed)
    assert failed_only_by_blocking_checks(_step_failures(blocked))
    assert not failed_only_by_blocking_checks(_step_failures(crashed))
    assert not failed_only_by_blocking_checks([])
