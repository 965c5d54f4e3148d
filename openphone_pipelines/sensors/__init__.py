"""Sensors: alerting on checks and run failures, health verification, retry triggering."""

import dagster as dg

from openphone_pipelines.sensors import alerts, health, retry

defs = dg.Definitions.merge(alerts.defs, health.defs, retry.defs)
