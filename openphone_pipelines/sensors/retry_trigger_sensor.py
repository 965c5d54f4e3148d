"""Starts a retry sweep within ~30 s (by default) of work appearing, and only then: a queue row falling due, a
claim outliving its lease (a crashed sweep), or an event left without an outcome for a minute (a receiver that
died mid-request). One RunRequest per distinct set of such work (the run key), so an idle queue launches nothing."""

import dagster as dg

from openphone_pipelines import recovery
from openphone_pipelines.cadence import polling_sensor
from openphone_pipelines.jobs.retry_sweep_job import SWEEP_JOB_NAME, retry_sweep_job
from openphone_pipelines.resources import AppDatabase
from openphone_pipelines.settings import load_settings

_ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED]


@polling_sensor(
    name="retry_sweep_sensor", seconds=load_settings().retry_sensor_seconds, job=retry_sweep_job,
    description="Launch retry_sweep_job when rows are due, claims expired, or events were left without an outcome.",
)
def retry_sweep_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase):
    with app_db.engine.connect() as conn:
        due = recovery.due_retry_work(conn)
    if due is None:
        return dg.SkipReason("no retry due")
    active = context.instance.get_runs(filters=dg.RunsFilter(job_name=SWEEP_JOB_NAME, statuses=_ACTIVE), limit=1)
    if active:
        # A running sweep drains until nothing is due; it will take these rows too.
        return dg.SkipReason(f"{due.due_rows} due; sweep {active[0].run_id} is already running")
    return dg.RunRequest(run_key=f"retry-sweep-{due.fingerprint}", tags={"openphone/due_rows": str(due.due_rows)})


defs = dg.Definitions(sensors=[retry_sweep_sensor])
