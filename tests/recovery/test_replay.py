"""Manual replay and discard: by id, by receive-time range, all dead; from the CLI and the Launchpad job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import text

from openphone_pipelines.cli import main as cli_main
from openphone_pipelines.jobs.replay_job import replay_failed_webhooks_job
from openphone_pipelines.store.processing import process_webhook_event
from tests.recovery.support import queue_row
from tests.support.events import numbered_event, store_event
from tests.support.resources import dagster_resources

BROKEN = b'{"id":"EV%d","type":"message.received","data":{"object":{"id":"AC%d"}}}'


def _dead_rows(db, numbers: list[int]) -> list[int]:
    """Dead letters as the receiver leaves them: each event's stored body failed validation.

    The test then "fixes the cause" by rewriting the body, as an operator would after deploying a
    parser fix, so the replay can succeed."""
    event_ids = []
    for n in numbers:
        event_ids.append(store_event(db, n, body=BROKEN % (n, n)))
        assert process_webhook_event(db, event_ids[-1]).queue_status == "dead"
    return event_ids


def _fix(db, event_ids: list[int]) -> None:
    with db.begin() as conn:
        for event_id in event_ids:
            conn.execute(text("UPDATE webhook_events SET raw_body = :b WHERE id = :id"),
                         {"b": numbered_event(1000 + event_id)[1], "id": event_id})


def _statuses(fresh) -> dict[int, str]:
    with fresh.connect() as conn:
        return dict(conn.execute(text("SELECT id, status FROM failed_webhook_queue ORDER BY id")).all())


def test_cli_replay_by_ids_then_again_is_a_noop(db, fresh, app_db_url, capsys):
    events = _dead_rows(db, [1, 2, 3])
    _fix(db, events)
    assert cli_main(["replay", "--ids", "1,2", "--url", app_db_url]) == 0
    assert _statuses(fresh) == {1: "resolved", 2: "resolved", 3: "dead"}
    assert "2 resolved" in capsys.readouterr().out
    # Replaying resolved rows changes nothing and succeeds.
    assert cli_main(["replay", "--ids", "1,2", "--url", app_db_url]) == 0
    assert "nothing to replay" in capsys.readouterr().out
    assert queue_row(fresh, 1).attempts == 0 and _statuses(fresh)[3] == "dead"


def test_cli_replay_by_range_and_still_failing_exits_1(db, fresh, app_db_url, capsys):
    events = _dead_rows(db, [1, 2, 3])
    now = datetime.now(UTC)
    with db.begin() as conn:  # event 1 arrived yesterday, 2 and 3 an hour ago
        conn.execute(text("UPDATE webhook_events SET received_at = :t WHERE id = :id"),
                     {"t": now - timedelta(days=1), "id": events[0]})
        conn.execute(text("UPDATE webhook_events SET received_at = :t WHERE id = ANY(:ids)"),
                     {"t": now - timedelta(hours=1), "ids": events[1:]})
    _fix(db, events[1:2])  # only event 2 is fixed; event 3 is still broken
    frm, to = (now - timedelta(hours=2)).isoformat(), now.isoformat()
    assert cli_main(["replay", "--from", frm, "--to", to, "--url", app_db_url]) == 1
    assert _statuses(fresh) == {1: "dead", 2: "resolved", 3: "dead"}
    out = capsys.readouterr().out
    assert "1 resolved, 1 still failing" in out and "queue id 3" in out


def test_cli_discard_is_recorded_and_needs_a_note(db, fresh, app_db_url):
    _dead_rows(db, [1, 2])
    assert cli_main(["replay", "--discard", "2", "--url", app_db_url]) == 2
    assert cli_main(["replay", "--discard", "2", "--note", "spam test payload", "--url", app_db_url]) == 0
    row = queue_row(fresh, 2)
    assert (row.status, row.discard_note) == ("discarded", "spam test payload") and row.discarded_at
    # all-dead leaves the discarded row alone
    assert cli_main(["replay", "--all-dead", "--url", app_db_url]) == 1
    assert _statuses(fresh) == {1: "dead", 2: "discarded"}


def test_launchpad_replay_job_all_dead(db, fresh, app_db_url):
    events = _dead_rows(db, [1, 2])
    _fix(db, events)
    with dg.instance_for_test() as instance:
        result = replay_failed_webhooks_job.execute_in_process(
            instance=instance, resources=dagster_resources(app_db_url),
            run_config={"ops": {"replay_failed_webhooks": {"config": {"all_dead": True}}}},
        )
        assert result.success
        assert result.output_for_node("replay_failed_webhooks") == {"reset": 2, "resolved": 2, "unresolved": 0}
        # The defaults select nothing: the Launchpad refuses instead of replaying everything.
        empty = replay_failed_webhooks_job.execute_in_process(instance=instance, resources=dagster_resources(app_db_url),
                                                              raise_on_error=False)
        assert not empty.success
    assert _statuses(fresh) == {1: "resolved", 2: "resolved"}
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 2
