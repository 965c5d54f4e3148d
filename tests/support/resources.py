"""The suite's one set of Dagster resources: the test's app database, its SMTP server, its sandbox."""

from __future__ import annotations

from typing import Any

from openphone_pipelines.resources import AppDatabase, NotifierResource, OpenPhoneResource

RECIPIENT = "ops@example.com"
WEBSERVER = "http://dagster.test"  # run links in alerts point here


def dagster_resources(app_db_url: str, smtp_server: Any = None, sandbox: Any = None) -> dict[str, Any]:
    """`app_db` and `notifier` (to `smtp_server`, or to a closed port when the test sends no email),
    plus `openphone` when a `sandbox` is given (its rate limit lifted: the sandbox enforces its own)."""
    app_db = AppDatabase(url=app_db_url)
    resources: dict[str, Any] = {
        "app_db": app_db,
        "notifier": NotifierResource(host=smtp_server.host if smtp_server else "127.0.0.1",
                                     port=smtp_server.port if smtp_server else 1,
                                     recipients=RECIPIENT, webserver_base_url=WEBSERVER),
    }
    if sandbox is not None:
        resources["openphone"] = OpenPhoneResource(api_key=sandbox.api_key, base_url=sandbox.base_url, app_db=app_db,
                                                   rate_limit_rps=1000)
    return resources
