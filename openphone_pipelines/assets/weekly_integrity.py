"""The five reconciliation invariants over the last 7 complete UTC days, every Sunday (03:00 UTC).

A `multi_asset_check` on the non-materialisable asset `openphone_messages_weekly`: an asset
backfill runs every check of its asset key, and must not re-walk 7 days of API in every backfill
run. Its completeness re-lists the API read-only, so a row deleted after reconciliation is caught.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from openphone_pipelines import integrity, reporting
from openphone_pipelines.assets.openphone_messages import (
    ASSET_NAME,
    POOL,
    SETTINGS,
    CheckWindow,
    ReconcileConfig,
    check_results,
    check_specs,
)
from openphone_pipelines.cadence import utc_schedule
from openphone_pipelines.reconciliation import api_message_ids
from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.resources.openphone_api import OpenPhoneResource
from openphone_pipelines.store.messages import message_ids_between

WEEKLY_ASSET_NAME = "openphone_messages_weekly"


class WeeklyIntegrityConfig(ReconcileConfig):
    """Window of the integrity run: `days` complete UTC days ending before `end_date` (default today),
    plus the daily run's tunables."""

    days: int = 7
    end_date: str | None = None


weekly_window = dg.AssetSpec(
    WEEKLY_ASSET_NAME,
    deps=[ASSET_NAME],
    group_name="reconciliation",
    kinds={"postgres"},
    description="The last 7 complete UTC days of the messages table, as the weekly integrity checks judge it.",
)


@dg.multi_asset_check(
    name="openphone_weekly_integrity",
    specs=check_specs(WEEKLY_ASSET_NAME, prefix="weekly_"),
    pool=POOL,
    description="The five reconciliation invariants over the last 7 complete UTC days (read-only API walk).",
)
def weekly_integrity(
    context: dg.AssetCheckExecutionContext,
    config: WeeklyIntegrityConfig,
    app_db: AppDatabase,
    openphone: OpenPhoneResource,
):
    end_day = datetime.fromisoformat(config.end_date).date() if config.end_date else datetime.now(UTC).date()
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC)
    start = end - timedelta(days=config.days)
    days = [(start + timedelta(days=i)).date().isoformat() for i in range(config.days)]
    context.log.info(f"integrity over {days[0]} .. {days[-1]}")
    engine = app_db.engine
    with openphone.client() as client:
        index = api_message_ids(client, engine, start, end, overlap=config.overlap,
                                probe_line_id=SETTINGS.probe_line_id, progress=context.log.info)
        missing = sorted(set(index) - message_ids_between(engine, start, end))
        table = reporting.markdown_table(integrity.missing_by_line(index, missing))
        window = CheckWindow(engine, client, start, end, set(index), days, settle_after=config.settle_after,
                             coverage_min=config.coverage_min, missing_by_line_md=table)
        yield from check_results(window, prefix="weekly_", asset_key=weekly_window.key)


weekly_integrity_job = dg.define_asset_job(
    "openphone_weekly_integrity_job",
    selection=dg.AssetSelection.checks(weekly_integrity),
    description="Checks only: the reconciliation invariants over the last 7 days.",
)

weekly_integrity_schedule = utc_schedule(
    name="openphone_weekly_integrity_schedule", cron=SETTINGS.weekly_integrity_cron, job=weekly_integrity_job,
    description="Weekly (Sundays 03:00 UTC by default): the five invariants over the last 7 complete days.",
)

defs = dg.Definitions(assets=[weekly_window], asset_checks=[weekly_integrity], jobs=[weekly_integrity_job],
                      schedules=[weekly_integrity_schedule])
