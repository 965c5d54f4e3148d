"""The OpenPhone API as a Dagster resource: the real API or the sandbox, chosen by base URL.

Every client built here draws on one request budget stored in the app database, so concurrent
reconciliation runs, backfills and health probes never exceed the key's rate together.
"""

from __future__ import annotations

import dagster as dg

from openphone_pipelines.openphone.client import OpenPhoneClient
from openphone_pipelines.resources.app_database import AppDatabase
from openphone_pipelines.store.rate_budget import PostgresRateLimiter


class OpenPhoneResource(dg.ConfigurableResource):
    api_key: str
    base_url: str = "https://api.openphone.com"
    rate_limit_rps: float = 10.0
    app_db: AppDatabase

    def client(self, **kwargs) -> OpenPhoneClient:
        limiter = PostgresRateLimiter(self.app_db.engine, self.api_key, self.rate_limit_rps)
        return OpenPhoneClient(self.api_key, self.base_url, rate_limiter=limiter, **kwargs)
