"""The one code location: each domain package exposes its `defs`; resources are bound once here.

Reading this file tells a newcomer everything the location contains.
"""

import dagster as dg

from openphone_pipelines import assets, jobs, sensors
from openphone_pipelines.resources import build_resources

defs = dg.Definitions.merge(
    assets.defs,  # reconciliation asset, its checks and schedules
    jobs.defs,  # health probe, retry sweep, replay and cleanup jobs with their schedules
    sensors.defs,  # health verification, retry trigger and alert sensors
    dg.Definitions(resources=build_resources()),
)
