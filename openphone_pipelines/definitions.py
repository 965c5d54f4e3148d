"""The one code location: each Dagster folder exposes its `defs`; resources are bound once here.

Reading this file tells a newcomer everything the location contains. Loading it validates the
settings: a malformed variable stops the load with a ConfigError that names it.
"""

import dagster as dg

from openphone_pipelines import assets, jobs, sensors
from openphone_pipelines.resources import build_resources
from openphone_pipelines.settings import load_settings

defs = dg.Definitions.merge(
    assets.defs,  # daily reconciliation with its checks and schedule, weekly integrity, probe history
    jobs.defs,  # health probe, retry sweep, replay, failure monitor and retention jobs with their schedules
    sensors.defs,  # probe verification, retry trigger, check-failure and run-failure alerts
    dg.Definitions(resources=build_resources(load_settings())),
)
