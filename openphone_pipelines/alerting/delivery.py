"""Operator alerts that go out once per failure, not on every sensor tick.

The alert key (e.g. "check:completeness:2026-11-01:<evaluation id>") is claimed in `alert_log`
before the channel sends; a key already present means the alert went out before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from openphone_pipelines.store.alert_log import claim_alert, release_alert

log = logging.getLogger(__name__)


class AlertChannel(Protocol):
    """Where alerts go (email today); `send` raises when the alert could not be delivered."""

    def send(self, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class Alert:
    key: str  # once-only key: the same failure always has the same key
    kind: str  # health_probe, dead_letter, asset_check, ... (recorded in alert_log)
    subject: str
    body: str


def send_alert_once(engine: Engine, channel: AlertChannel, alert: Alert) -> bool:
    """Send `alert` unless its key was already sent. Returns True when it went out now.

    The key is claimed first and released if sending fails, so a failed send is tried again on
    the next tick instead of being silently forgotten."""
    claim = claim_alert(engine, alert_key=alert.key, kind=alert.kind, subject=alert.subject)
    if claim is None:
        return False
    try:
        channel.send(alert.subject, alert.body)
    except Exception:
        release_alert(engine, claim)
        raise
    log.info("alert sent: %s (%s)", alert.kind, alert.key)
    return True
