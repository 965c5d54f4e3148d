"""Small helpers shared by the sandbox: timestamps, ids, validation.

Times are kept as integer milliseconds since the Unix epoch (UTC) internally because the API
and webhook payloads carry millisecond precision and integer comparison keeps pagination exact.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
from datetime import UTC, datetime

E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
ALNUM = string.ascii_letters + string.digits


def iso(ms: int) -> str:
    """Format epoch milliseconds as ISO 8601 UTC with milliseconds and a trailing Z."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(value: str) -> int:
    """Parse an ISO 8601 timestamp (Z or offset; naive means UTC) into epoch milliseconds.

    Raises ValueError on anything else so the API can answer 400.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    dt = datetime.fromisoformat(text.replace("z", "Z"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def is_e164(value: object) -> bool:
    """True when value is an E.164 phone number string."""
    return isinstance(value, str) and bool(E164_RE.match(value))


def rand_hex(rng: random.Random, n: int = 32) -> str:
    """n lowercase hex characters from a (seeded) RNG."""
    return f"{rng.getrandbits(n * 4):0{n}x}"


def rand_alnum(rng: random.Random, n: int) -> str:
    """n alphanumeric characters from a (seeded) RNG."""
    return "".join(rng.choice(ALNUM) for _ in range(n))


def stable_hex(*parts: object, n: int = 32) -> str:
    """Deterministic hex digest of the parts; used for ids that must not depend on RNG order."""
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
    return h[:n]


def unit_float(*parts: object) -> float:
    """Deterministic float in [0, 1) from the parts: per-event fault decisions independent of ordering."""
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def b64_secret(rng: random.Random | None = None, nbytes: int = 32) -> str:
    """A base64 signing secret (the form OpenPhone hands out as a webhook `key`)."""
    import os

    raw = bytes(rng.getrandbits(8) for _ in range(nbytes)) if rng else os.urandom(nbytes)
    return base64.b64encode(raw).decode()


def compact_json(obj: object) -> bytes:
    """Compact JSON bytes (no whitespace), the form the legacy signature docs assume."""
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
