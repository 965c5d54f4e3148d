"""Email alerts: one per failing asset-check evaluation, one per failed run (Dagster OSS has no
built-in check alerts, reference/dagster-notes.md §2.5).

Never repeated every tick, on two levels: the check sensor's cursor keeps, per check, a
watermark below which every evaluation is settled and handled; and every email goes through
`send_alert_once` keyed by the evaluation (or run) id, so a cursor lost in a crashed tick, or two
daemons, still cannot email twice.
"""


import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from openphone_pipelines.alerts import send_alert_once
from openphone_pipelines.assets.reconciliation import MONITORED_CHECK_KEYS
from openphone_pipelines.resources.app_db import AppDatabase
from openphone_pipelines.resources.mailer import MailerResource

HISTORY_LIMIT = 100  # evaluations read per check and tick


def _metadata_text(metadata: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        if isinstance(raw, str) and "\n" in raw:
            lines.append(f"{key}:\n{raw}")
        else:
            lines.append(f"{key}: {raw}")
    return lines


def check_alert(rec: AssetCheckExecutionRecord, evaluation: dg.AssetCheckEvaluation, run_url: str) -> tuple[str, str]:
    """Subject and body of the email for one failed evaluation: check, partition, figures, link."""
    meta = dict(evaluation.metadata or {})
    partition = rec.partition or getattr(meta.get("partitions"), "value", None) or "(unpartitioned)"
    severity = evaluation.severity.value if evaluation.severity else "ERROR"
    keys = [k.strip() for k in str(partition).split(",")]
    span = keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} days)"
    subject = f"[openphone] {severity}: check {rec.key.name} failed for {span}"
    body = [
        f"Asset check {rec.key.name} on {rec.key.asset_key.to_user_string()} failed ({severity}).",
        f"Partition(s): {partition}",
    ]
    if evaluation.description:
        body.append(f"Summary: {evaluation.description}")
    body += ["", "Figures:", *_metadata_text(meta), "", f"Run: {run_url}"]
    return subject, "\n".join(body)


def _settled(instance: dg.DagsterInstance, rec: AssetCheckExecutionRecord) -> bool:
    """An evaluation is settled once it has a result, or its run ended without one."""
    if rec.status != AssetCheckExecutionRecordStatus.PLANNED:
        return True
    run = instance.get_run_by_id(rec.run_id)
    return run is None or run.is_finished


def _evaluation(rec: AssetCheckExecutionRecord) -> dg.AssetCheckEvaluation | None:
    data = rec.event.dagster_event.event_specific_data if rec.event and rec.event.dagster_event else None
    # PLANNED rows carry AssetCheckEvaluationPlanned (no .passed); the same row is updated later.
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def new_check_failures(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], cursor: Mapping[str, int]
) -> tuple[list[tuple[AssetCheckExecutionRecord, dg.AssetCheckEvaluation]], dict[str, int]]:
    """Failed evaluations newer than each check's watermark, and the advanced watermarks.

    Record ids are assigned when a check is *planned*, so a lower id can finish after a higher
    one; the watermark only moves past ids that are settled."""
    failures = []
    new_cursor = dict(cursor)
    storage = instance.event_log_storage
    for key in keys:
        name = key.to_user_string()
        mark = int(cursor.get(name, 0))
        records = [
            r for r in storage.get_asset_check_execution_history(key, limit=HISTORY_LIMIT) if r.id > mark
        ]
        records.sort(key=lambda r: r.id)
        for rec in records:
            if not _settled(instance, rec):
                break  # keep the watermark below it; later ids are looked at again next tick
            mark = rec.id
            evaluation = _evaluation(rec)
            if evaluation is not None and not evaluation.passed:
                failures.append((rec, evaluation))
        if mark:
            new_cursor[name] = mark
    return failures, new_cursor


@dg.sensor(
    name="openphone_check_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Emails once per failed evaluation of the reconciliation and integrity checks.",
)
def check_failure_alerts(
    context: dg.SensorEvaluationContext, mailer: MailerResource, app_db: AppDatabase
) -> dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    failures, new_cursor = new_check_failures(context.instance, MONITORED_CHECK_KEYS, cursor)
    sent = 0
    for rec, evaluation in failures:
        subject, body = check_alert(rec, evaluation, mailer.run_url(rec.run_id))
        if send_alert_once(
            app_db.engine, mailer.settings(), alert_key=f"check:{rec.key.to_user_string()}:{rec.id}",
            kind="asset_check", subject=subject, body=body,
        ):
            sent += 1
    context.update_cursor(json.dumps(new_cursor, sort_keys=True))
    return dg.SkipReason(f"{len(failures)} failed evaluation(s), {sent} email(s) sent")


@dg.run_failure_sensor(
    name="openphone_run_failure_alerts",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Emails once per failed run of this code location.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, mailer: MailerResource, app_db: AppDatabase) -> None:
    """Always returns None (a sensor that sometimes skips can trip dagster-io/dagster#17359).

    A run failed only by a blocking check is left to the check sensor, which already emails that
    evaluation with its figures: one incident, one email."""
    run = context.dagster_run
    if _failed_only_by_blocking_checks(context):
        context.log.info(f"run {run.run_id} failed by a blocking check; the check alert covers it")
        return
    message = context.failure_event.message if context.failure_event else "run failed"
    subject = f"[openphone] run failed: {run.job_name} ({run.run_id[:8]})"
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags.get('dagster/asset_partition_range_start')} .. {run.tags.get('dagster/asset_partition_range_end')}"
        if run.tags.get("dagster/asset_partition_range_start")
        else "-"
    )
    body = "\n".join(
        [f"Job {run.job_name} failed.", f"Partition(s): {partition}", f"Error: {message}", "",
         f"Run: {mailer.run_url(run.run_id)}"]
    )
    send_alert_once(app_db.engine, mailer.settings(), alert_key=f"run-failure:{run.run_id}", kind="run_failure",
                    subject=subject, body=body)


def _failed_only_by_blocking_checks(context: dg.RunFailureSensorContext) -> bool:
    errors = [
        event.event_specific_data.error
        for event in context.get_step_failure_events()
        if event.event_specific_data is not None and getattr(event.event_specific_data, "error", None)
    ]
    return bool(errors) and all(
        error.cls_name == "DagsterAssetCheckFailedError" or "DagsterAssetCheckFailedError" in (error.message or "")
        for error in errors
    )


defs = dg.Definitions(sensors=[check_failure_alerts, run_failure_alerts])
