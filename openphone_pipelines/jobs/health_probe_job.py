"""The hourly webhook health probe: one SMS through the OpenPhone API, recorded before it is sent.

The job only sends; the `webhook_health_probe_sensor` verifies arrival, times probes out and
alerts. The job never retries (no op retry policy, run retries off): a resend could text twice.
"""

import dagster as dg

from openphone_pipelines import health_probe
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.resources import AppDatabase, NotifierResource, OpenPhoneResource
from openphone_pipelines.settings import load_settings


@dg.op(description="Send one probe SMS from the probe line to the monitored line; never resent.")
def send_health_probe(context: dg.OpExecutionContext, app_db: AppDatabase, openphone: OpenPhoneResource,
                      notifier: NotifierResource) -> dg.Output[dict]:
    lines = load_settings().require_probe_lines()  # read per run: the job fails naming what is missing
    # max_retries=0 for the send path is enforced by the client itself (POST is never blind-retried);
    # reads on this client would retry, but the probe makes none.
    with openphone.client() as client:
        result = health_probe.send_probe(app_db.engine, client, lines)
    if result.status == "failed":
        # Alert now; the verification sensor also alerts from the table if this alert fails.
        health_probe.alert_failed_probes(app_db.engine, notifier.channel(), context_url=notifier.run_url(context.run_id))
    context.log.info(f"probe {result.probe_id}: {result.status}")
    return dg.Output(
        {"probe_id": result.probe_id, "status": result.status},
        metadata={
            "probe_id": result.probe_id,
            "status": result.status,
            "nonce": result.nonce,
            "message_id": result.message_id or "",
            "error": result.error or "",
        },
    )


@dg.job(
    description="Hourly end-to-end webhook check: send a probe SMS and record it (the sensor verifies it).",
    tags={"dagster/max_retries": "0"},  # a retried run would send a second SMS
)
def webhook_health_probe_job() -> None:
    send_health_probe()


webhook_health_probe_schedule = utc_schedule(
    name="webhook_health_probe_schedule", cron=load_settings().probe_cron, job=webhook_health_probe_job,
    description="Hourly on the hour (UTC) by default: send one health probe.",
)

defs = dg.Definitions(jobs=[webhook_health_probe_job], schedules=[webhook_health_probe_schedule])
