"""Assets of the code location: reconciliation (with its checks and schedules) and health history."""

import dagster as dg

from openphone_pipelines.assets import reconciliation, webhook_health

defs = dg.Definitions.merge(reconciliation.defs, webhook_health.defs)
