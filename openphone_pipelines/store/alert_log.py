"""Alerts already sent, keyed so that one failure emails once, not on every sensor tick."""

from __future__ import annotations

from sqlalchemy import Engine, text


def claim_alert(engine: Engine, *, alert_key: str, kind: str, subject: str) -> int | None:
    """Record `alert_key` as sent and return its row id, or None when it was claimed before."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO alert_log (alert_key, kind, subject) VALUES (:key, :kind, :subject)"
                " ON CONFLICT (alert_key) DO NOTHING RETURNING id"
            ),
            {"key": alert_key, "kind": kind, "subject": subject},
        ).scalar_one_or_none()


def release_alert(engine: Engine, claim_id: int) -> None:
    """Forget a claim whose alert could not be delivered, so the next tick tries again."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alert_log WHERE id = :id"), {"id": claim_id})
