"""Health-probe markers: how synthetic probe SMS are written and recognised (docs/design.md, rule 7).

The hourly probe texts a line through the real API; its webhook must be matched to the probe (by
nonce) and must never be counted as customer traffic, so the marker lives in the text itself. The
marker alone proves nothing (anyone can text it): a message is a probe only when it is a probe this
system sent, i.e. its id is a recorded probe send, or its nonce is a recorded probe's and it went
from the probe line to the monitored line (`RecordedProbes.covers`; the receiver's SQL twin is
store/health_checks.py::mark_probe_received).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from .models import Message

PROBE_MARKER_PREFIX = "[openphone-pipelines health probe "
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FIND_RE = re.compile(re.escape(PROBE_MARKER_PREFIX) + r"([A-Za-z0-9_-]{1,64})\]")


def new_probe_nonce() -> str:
    """A fresh random nonce (16 hex characters)."""
    return secrets.token_hex(8)


def probe_text(nonce: str) -> str:
    """The probe SMS text: a readable note plus the marker, ending in `]`."""
    if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
        raise ValueError(f"probe nonce must be 1-64 of [A-Za-z0-9_-], got {nonce!r}")
    return f"Automated delivery check, please ignore. {PROBE_MARKER_PREFIX}{nonce}]"


def probe_nonce(text: str | None) -> str | None:
    """The nonce of a probe text, or None when `text` is not a probe."""
    if not text:
        return None
    found = _FIND_RE.search(text)
    return found.group(1) if found else None


def on_probe_pair(message: Message, from_line: str, to_number: str) -> bool:
    """Whether `message` went from the probe line to the monitored line's number. A probe line
    given as a PN id is matched by the message's line (its outgoing copy); its incoming copy on the
    monitored line names only the sender's number, which the probe row does not hold."""
    if to_number not in message.to_numbers:
        return False
    if from_line.startswith("PN"):
        return message.phone_number_id == from_line or message.direction == "incoming"
    return message.from_number == from_line


@dataclass(frozen=True)
class RecordedProbes:
    """Probes this system sent around a window: their send ids and, by nonce, their line pair."""

    message_ids: frozenset[str] = frozenset()
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # nonce -> (from_line, to_number)

    def covers(self, message: Message) -> bool:
        """A probe of ours: a recorded send, or a recorded nonce on its probe's line pair."""
        if message.id in self.message_ids:
            return True
        nonce = probe_nonce(message.text)
        pair = self.pairs.get(nonce) if nonce else None
        return pair is not None and on_probe_pair(message, *pair)
