"""Sensors: probe verification, retry triggering, and emails for failed checks and failed runs."""

import dagster as dg

from openphone_pipelines.sensors import (
    check_alert_sensor,
    probe_verification_sensor,
    retry_trigger_sensor,
    run_failure_alert_sensor,
)

defs = dg.Definitions.merge(probe_verification_sensor.defs, retry_trigger_sensor.defs, check_alert_sensor.defs,
                            run_failure_alert_sensor.defs)
