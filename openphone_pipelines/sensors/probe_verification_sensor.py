"""Verifies health probes (every 30 s by default): times out probes whose webhook never came, emails each
failure once, and emails once per outage when no probe has succeeded for two hours.

The receiver marks a probe received (store/processing.py); this sensor only handles absence. The
work is one UPDATE and rarely an email, so it runs in the tick and launches no runs.
"""

import dagster as dg

from openphone_pipelines import health_probe
from openphone_pipelines.cadence import polling_sensor
from openphone_pipelines.resources import AppDatabase, NotifierResource
from openphone_pipelines.settings import load_settings


@polling_sensor(
    name="webhook_health_probe_sensor", seconds=load_settings().probe_sensor_seconds,
    description="Fail probes with no webhook within OPENPHONE_PROBE_TIMEOUT_SECONDS (default 120) and alert.",
)
def webhook_health_probe_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase,
                                notifier: NotifierResource) -> dg.SkipReason:
    timeout = load_settings().probe_timeout_seconds  # read per tick, like the probe job's lines
    check = health_probe.check_probes(app_db.engine, notifier.channel(), timeout_seconds=timeout,
                                      context_url=notifier.webserver_base_url)
    parts = [f"{check.pending} probe(s) awaiting their webhook"]
    if check.expired:
        parts.append(f"timed out: {check.expired}")
    if check.alerted:
        parts.append(f"alerted: {check.alerted}")
    if check.outage is not None:
        parts.append(f"no success for {check.outage.silent_seconds / 3600:.1f} h"
                     + (" (alerted)" if check.outage_alerted else ""))
    # Always the same kind of result (a SkipReason): this sensor never launches runs.
    return dg.SkipReason("; ".join(parts))


defs = dg.Definitions(sensors=[webhook_health_probe_sensor])
