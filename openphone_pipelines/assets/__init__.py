"""Assets of the code location: daily reconciliation (with its checks), the weekly integrity checks,
and the health-probe history."""

import dagster as dg

from openphone_pipelines.assets import openphone_messages, webhook_health_history, weekly_integrity

defs = dg.Definitions.merge(openphone_messages.defs, weekly_integrity.defs, webhook_health_history.defs)

# The checks whose failures the check-alert sensor emails.
MONITORED_CHECK_KEYS = [*openphone_messages.openphone_messages.check_keys, *weekly_integrity.weekly_integrity.check_keys]
