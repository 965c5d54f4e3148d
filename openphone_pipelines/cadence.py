"""When things run: the shared shape of every schedule and polling sensor of the code location.

All run in UTC, are RUNNING by default (a fresh deployment is protected without clicking), and take
their cadence from the settings (OPENPHONE_*_CRON, OPENPHONE_*_SENSOR_SECONDS), so a soak test can
compress a day into minutes without touching code.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg


def utc_schedule(*, name: str, cron: str, description: str, job: Any = None, target: Any = None,
                 evaluate: Callable[..., Any] | None = None) -> dg.ScheduleDefinition:
    """A RUNNING UTC schedule on `cron`; `evaluate` decides each tick's run request when given."""
    common = {"name": name, "cron_schedule": cron, "execution_timezone": "UTC", "description": description,
              "default_status": dg.DefaultScheduleStatus.RUNNING}
    if evaluate is None:
        return dg.ScheduleDefinition(job=job, target=target, **common)
    return dg.schedule(job=job, target=target, **common)(evaluate)


def polling_sensor(*, name: str, seconds: int, description: str, job: Any = None
                   ) -> Callable[[Callable[..., Any]], dg.SensorDefinition]:
    """Decorator for a RUNNING sensor evaluated every `seconds`."""
    return dg.sensor(name=name, job=job, minimum_interval_seconds=seconds, description=description,
                     default_status=dg.DefaultSensorStatus.RUNNING)
