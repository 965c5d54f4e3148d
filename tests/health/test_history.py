"""`webhook_health_history`: success rate and latency percentiles per window, as UI metadata."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from openphone_pipelines.assets.webhook_health_history import webhook_health_history
from tests.support.resources import dagster_resources


def test_history_metadata_over_24h_and_7d(db, app_db_url):
    rows = [  # (age, status, latency_ms)
        *[("1 hour", "received", ms) for ms in (1000, 2000, 3000, 4000)],
        ("2 hours", "failed", None),
        ("3 days", "received", 9000),
        ("3 days", "failed", None),
        ("40 days", "received", 50),  # outside both windows
    ]
    with db.begin() as conn:
        for i, (age, status, ms) in enumerate(rows):
            conn.execute(text(
                "INSERT INTO webhook_health_checks (nonce, from_line, to_number, status, sent_at, latency_ms,"
                f" received_at) VALUES (:n, 'PNprobe', '+15550000000', :s, now() - interval '{age}', :ms,"
                f" CASE WHEN :s = 'received' THEN now() - interval '{age}' END)"
            ), {"n": f"n{i}", "s": status, "ms": ms})
    with dg.instance_for_test() as instance:
        result = dg.materialize([webhook_health_history], instance=instance, resources=dagster_resources(app_db_url))
    md = result.asset_materializations_for_node("webhook_health_history")[0].metadata
    assert md["probes_24h"].value == 5 and md["success_rate_24h"].value == 0.8
    assert md["latency_p50_ms_24h"].value == 2500.0
    assert md["probes_7d"].value == 7 and abs(md["success_rate_7d"].value - 5 / 7) < 1e-9
    assert abs(md["latency_p95_ms_7d"].value - 8000.0) < 1e-6  # percentile_cont over 1000..4000, 9000
    assert "| 7 d | 7 | 5 | 2 |" in md["summary"].value
    assert md["outage"].value == "none"
