"""Emails once per failing asset-check evaluation (Dagster OSS has no built-in alert for checks).

Never repeated every tick, on two levels: the sensor's cursor keeps, per check, a watermark below
which every execution is settled and handled; and every email goes through `send_alert_once`
keyed by the execution id, so a cursor lost in a crashed tick, or two daemons, still cannot email
twice. Check executions are read through check_records.py, the one adapter over Dagster internals.
"""

import json
from collections.abc import Mapping, Sequence

import dagster as dg

from openphone_pipelines import reporting
from openphone_pipelines.alerting.delivery import Alert, send_alert_once
from openphone_pipelines.assets import MONITORED_CHECK_KEYS
from openphone_pipelines.cadence import polling_sensor
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.sensors.check_records import CheckExecution, check_executions
from openphone_pipelines.settings import load_settings

HISTORY_LIMIT = 100  # executions read per check and tick


def _settled(instance: dg.DagsterInstance, execution: CheckExecution) -> bool:
    """An execution is settled once it has a result, or its run ended without one."""
    if not execution.planned_only:
        return True
    run = instance.get_run_by_id(execution.run_id)
    return run is None or run.is_finished


def new_check_failures(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], cursor: Mapping[str, int]
) -> tuple[list[CheckExecution], dict[str, int]]:
    """Failed evaluations newer than each check's watermark, and the advanced watermarks.

    Execution ids are assigned when a check is *planned*, so a lower id can finish after a higher
    one; the watermark only moves past ids that are settled."""
    failures = []
    new_cursor = dict(cursor)
    for key in keys:
        name = key.to_user_string()
        mark = int(cursor.get(name, 0))
        for execution in check_executions(instance, key, after_id=mark, limit=HISTORY_LIMIT):
            if not _settled(instance, execution):
                break  # keep the watermark below it; later ids are looked at again next tick
            mark = execution.id
            if execution.evaluation is not None and not execution.evaluation.passed:
                failures.append(execution)
        if mark:
            new_cursor[name] = mark
    return failures, new_cursor


def check_failure_alert(execution: CheckExecution, run_url: str) -> Alert:
    evaluation = execution.evaluation
    assert evaluation is not None
    partitions = execution.partition or evaluation.metadata.get("partitions")
    subject, body = reporting.check_failure_alert(
        check_name=execution.check_name, asset=execution.asset,
        partitions=str(partitions) if partitions else None, severity=evaluation.severity,
        description=evaluation.description, metadata=evaluation.metadata, run_url=run_url,
    )
    return Alert(f"check:{execution.check_key}:{execution.id}", "asset_check", subject, body)


@polling_sensor(
    name="openphone_check_failure_alerts", seconds=load_settings().alert_sensor_seconds,
    description="Emails once per failed evaluation of the reconciliation and integrity checks.",
)
def check_failure_alerts(
    context: dg.SensorEvaluationContext, notifier: NotifierResource, app_db: AppDatabase
) -> dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    failures, new_cursor = new_check_failures(context.instance, MONITORED_CHECK_KEYS, cursor)
    channel = notifier.channel()
    sent = sum(send_alert_once(app_db.engine, channel, check_failure_alert(f, notifier.run_url(f.run_id)))
               for f in failures)
    context.update_cursor(json.dumps(new_cursor, sort_keys=True))
    return dg.SkipReason(f"{len(failures)} failed evaluation(s), {sent} email(s) sent")


defs = dg.Definitions(sensors=[check_failure_alerts])
