"""Health-probe markers: how synthetic probe SMS are written and recognised (docs/design.md, rule 7).

The hourly probe texts a line through the real API; its webhook must be matched to the probe (by
nonce) and must never be counted as customer traffic, so the marker lives in the text itself.
"""

from __future__ import annotations

import re
import secrets

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


def is_probe_message(message: Message) -> bool:
    return probe_nonce(message.text) is not None
