"""The one module that reads Dagster internals, so a Dagster upgrade that moves them breaks here
(and in tests/alerts/test_check_records.py) rather than somewhere in the alerting logic.

Dagster 1.13 has no public API for (a) the execution history of an asset check, nor (b) telling
that a run failed only because a blocking check failed (`DagsterAssetCheckFailedError` is not
exported, and a step failure carries only the serialized error's class name). Everything else
gets plain dataclasses from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.errors import DagsterAssetCheckFailedError
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


@dataclass(frozen=True)
class CheckEvaluation:
    passed: bool
    severity: str  # ERROR | WARN
    description: str | None
    metadata: dict[str, object]  # plain values: numbers, text (markdown as its text), None


@dataclass(frozen=True)
class CheckExecution:
    """One execution of an asset check: planned when its run started, evaluated when it ran."""

    id: int  # assigned when the execution is planned, so a lower id can finish after a higher one
    check_key: str  # "asset:check"
    check_name: str
    asset: str
    run_id: str
    partition: str | None
    planned_only: bool  # no result recorded (yet, or ever when its run ended without one)
    evaluation: CheckEvaluation | None


def _evaluation(record) -> CheckEvaluation | None:
    event = record.event.dagster_event if record.event else None
    data = event.event_specific_data if event else None
    if not isinstance(data, dg.AssetCheckEvaluation):  # planned rows carry no result
        return None
    return CheckEvaluation(
        passed=data.passed,
        severity=data.severity.value if data.severity else "ERROR",
        description=data.description,
        metadata={key: getattr(value, "value", value) for key, value in (data.metadata or {}).items()},
    )


def check_executions(instance: dg.DagsterInstance, key: dg.AssetCheckKey, *, after_id: int,
                     limit: int) -> list[CheckExecution]:
    """The newest `limit` executions of one check, those with an id above `after_id`, oldest first."""
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=limit)
    return sorted(
        (
            CheckExecution(
                id=r.id, check_key=key.to_user_string(), check_name=key.name,
                asset=key.asset_key.to_user_string(), run_id=r.run_id, partition=r.partition,
                planned_only=r.status == AssetCheckExecutionRecordStatus.PLANNED, evaluation=_evaluation(r),
            )
            for r in records
            if r.id > after_id
        ),
        key=lambda e: e.id,
    )


def failed_only_by_blocking_checks(step_failures: Iterable[dg.DagsterEvent]) -> bool:
    """True when every failed step of a run failed because a blocking asset check failed."""
    errors = [
        event.event_specific_data.error
        for event in step_failures
        if event.event_specific_data is not None and getattr(event.event_specific_data, "error", None)
    ]
    name = DagsterAssetCheckFailedError.__name__
    return bool(errors) and all(error.cls_name == name or name in (error.message or "") for error in errors)
