"""`webhook_health_history`: probe success rate and latency percentiles over 24 h and 7 days,
materialised hourly so the operator reads the trend in the UI (metadata plots), not in logs."""

import dagster as dg

from openphone_pipelines import health_probe, reporting
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.settings import load_settings


def _num(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.float(float(value))


@dg.asset(
    group_name="webhook_health",
    kinds={"postgres", "python"},
    description="Health-probe history from webhook_health_checks: success rate and latency (24 h, 7 d).",
)
def webhook_health_history(context: dg.AssetExecutionContext, app_db: AppDatabase) -> dg.MaterializeResult:
    day, week = health_probe.probe_history(app_db.engine, (24, 168))
    metadata: dict[str, object] = {
        "summary": dg.MetadataValue.md(reporting.probe_history_markdown([day, week])),
        "outage": dg.MetadataValue.text(reporting.outage_summary(health_probe.current_outage(app_db.engine))),
    }
    for label, stats in (("24h", day), ("7d", week)):
        metadata.update({
            f"probes_{label}": stats.probes,
            f"received_{label}": stats.received,
            f"failed_{label}": stats.failed,
            f"success_rate_{label}": _num(stats.success_rate),
            f"latency_p50_ms_{label}": _num(stats.latency_p50_ms),
            f"latency_p95_ms_{label}": _num(stats.latency_p95_ms),
            f"latency_p99_ms_{label}": _num(stats.latency_p99_ms),
        })
    return dg.MaterializeResult(metadata=metadata)


# At :05 by default, after the :00 probe has had its 2-minute window and a verification tick.
webhook_health_history_schedule = utc_schedule(
    name="webhook_health_history_schedule", cron=load_settings().probe_history_cron,
    target=dg.AssetSelection.assets(webhook_health_history),
    description="Hourly (:05 UTC by default): refresh the probe history shown on webhook_health_history.",
)

defs = dg.Definitions(assets=[webhook_health_history], schedules=[webhook_health_history_schedule])
