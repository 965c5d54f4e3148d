"""Webhook signature verification for both schemes OpenPhone uses (docs/design.md, rule 8;
docs/openphone-api.md, 'Webhook signatures').

- Legacy (generations A and B): `openphone-signature: hmac;1;<ts>;<base64>` over `<ts>.<raw body>`,
  key = base64-decoded secret, timestamp usually in *milliseconds*.
- Standard Webhooks (generation C): `webhook-id`, `webhook-timestamp` (seconds) and
  `webhook-signature: v1,<base64> ...` over `<id>.<ts>.<raw body>`, secret `whsec_<base64>`.

Raw bytes only, constant-time comparison, a symmetric timestamp window, and several secrets so a
secret can be rotated without dropping deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

SECRETS_ENV_VAR = "OPENPHONE_WEBHOOK_SECRETS"
LEGACY_HEADER = "openphone-signature"
SW_ID_HEADER = "webhook-id"
SW_TIMESTAMP_HEADER = "webhook-timestamp"
SW_SIGNATURE_HEADER = "webhook-signature"

Scheme = Literal["openphone-legacy", "standard-webhooks"]


class SignatureError(Exception):
    """The delivery is not provably from OpenPhone; answer 401 and store nothing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class VerifiedDelivery:
    """What a valid signature proves: the scheme, the delivery id (Standard Webhooks) and when."""

    scheme: Scheme
    delivery_id: str | None
    timestamp: datetime


def decode_secret(secret: str) -> bytes:
    """HMAC key bytes of a secret: optional `whsec_` prefix stripped, then standard base64."""
    value = secret.strip()
    if value.startswith("whsec_"):
        value = value[len("whsec_") :]
    value += "=" * (-len(value) % 4)  # tolerate stripped padding
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64") from None
    if not key:
        raise ValueError("webhook secret decodes to no bytes")
    return key


def parse_secrets(value: str) -> list[str]:
    """Split the comma-separated `OPENPHONE_WEBHOOK_SECRETS`; every entry must be valid base64."""
    secrets = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not secrets:
        raise ValueError(f"{SECRETS_ENV_VAR} holds no secret")
    for position, secret in enumerate(secrets, start=1):
        try:
            decode_secret(secret)
        except ValueError as exc:  # never echo the secret itself
            raise ValueError(f"{SECRETS_ENV_VAR}: secret #{position} is invalid: {exc}") from None
    return secrets


MAX_TIMESTAMP_DIGITS = 16  # milliseconds until the year 318857; int() of longer text is itself a cost
SIGNATURE_BYTES = 32  # HMAC-SHA256
DEFAULT_MAX_ENTRIES = 5
DEFAULT_MAX_HEADER_BYTES = 4096
_SW_ENTRY = re.compile(r"(?:^|[\s,])(v[0-9]+[a-z]?),([^\s,]*)")


@dataclass(frozen=True)
class SignatureLimits:
    """How much of the signature headers is looked at: bounded, so an unsigned request costs at most
    a handful of HMACs whatever it carries (docs/design.md, rule 8)."""

    tolerance_seconds: int = 300
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES


def _parse_timestamp(raw: str, *, milliseconds_allowed: bool) -> float:
    """Seconds since the epoch; with `milliseconds_allowed`, 13+ digits are read as milliseconds.

    ASCII digits only: `str.isdigit` also accepts `²` or Arabic-Indic digits, which `int` refuses
    or reads differently."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_TIMESTAMP_DIGITS:
        raise SignatureError("timestamp is not a non-negative integer of at most 16 ASCII digits")
    number = int(raw)
    if milliseconds_allowed and len(raw) >= 13:
        return number / 1000.0
    return float(number)


def _check_window(ts: float, now: float, tolerance_seconds: int) -> str | None:
    if ts < now - tolerance_seconds:
        return "timestamp too old (outside tolerance)"
    if ts > now + tolerance_seconds:
        return "timestamp in the future (outside tolerance)"
    return None


def _signature_bytes(value: str) -> bytes | None:
    """The 32 bytes of a standard-base64 HMAC-SHA256, or None for anything else (empty included)."""
    if not value or len(value) > 64 or not value.isascii():
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == SIGNATURE_BYTES else None


def _any_matches(keys: Sequence[bytes], signed: bytes, candidates: Sequence[bytes]) -> bool:
    """One HMAC of `signed` per key, each compared in constant time with every candidate; every key
    is computed, so timing does not reveal which secret matched."""
    matched = False
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for given in candidates:
            matched |= hmac.compare_digest(expected, given)
    return matched


def _check_header_size(name: str, value: str, limits: SignatureLimits) -> None:
    if len(value) > limits.max_header_bytes:
        raise SignatureError(f"{name} header too large (over {limits.max_header_bytes} bytes)")


def _verify_legacy(header: str, body: bytes, keys: Sequence[bytes], now: float,
                   limits: SignatureLimits) -> VerifiedDelivery:
    """Every entry parsed and its window checked before any HMAC; at most `max_entries` entries,
    and one HMAC per secret per distinct timestamp among them."""
    _check_header_size(LEGACY_HEADER, header, limits)
    reason = "no usable hmac;1 signature in openphone-signature"
    by_timestamp: dict[str, list[bytes]] = {}
    for entry in header.split(",")[: limits.max_entries]:
        parts = [p.strip() for p in entry.strip().split(";")]
        if len(parts) != 4 or parts[0].lower() != "hmac" or parts[1] != "1":
            continue
        ts_raw, sig_raw = parts[2], parts[3]
        try:
            ts = _parse_timestamp(ts_raw, milliseconds_allowed=True)
        except SignatureError as exc:
            reason = exc.reason
            continue
        window = _check_window(ts, now, limits.tolerance_seconds)
        if window:
            reason = window
            continue
        given = _signature_bytes(sig_raw)
        if given is None:
            reason = "signature is not base64 of 32 bytes"
            continue
        by_timestamp.setdefault(ts_raw, []).append(given)
    for ts_raw, candidates in by_timestamp.items():
        if _any_matches(keys, ts_raw.encode("ascii") + b"." + body, candidates):
            ts = _parse_timestamp(ts_raw, milliseconds_allowed=True)
            return VerifiedDelivery("openphone-legacy", None, datetime.fromtimestamp(ts, UTC))
        reason = "signature mismatch"
    raise SignatureError(reason)


def _verify_standard(delivery_id: str | None, ts_raw: str | None, header: str, body: bytes,
                     keys: Sequence[bytes], now: float, limits: SignatureLimits) -> VerifiedDelivery:
    """Id, timestamp and window first; then at most `max_entries` `v1,<base64>` entries (space
    separated; repeated header lines arrive joined by commas and are read the same), one HMAC per
    secret."""
    if not delivery_id:
        raise SignatureError("missing webhook-id header")
    if not ts_raw:
        raise SignatureError("missing webhook-timestamp header")
    for name, value in ((SW_ID_HEADER, delivery_id), (SW_TIMESTAMP_HEADER, ts_raw), (SW_SIGNATURE_HEADER, header)):
        _check_header_size(name, value, limits)
    ts_raw = ts_raw.strip()
    ts = _parse_timestamp(ts_raw, milliseconds_allowed=False)
    window = _check_window(ts, now, limits.tolerance_seconds)
    if window:
        raise SignatureError(window)
    candidates: list[bytes] = []
    reason = "no v1 signature in webhook-signature"
    for found in list(_SW_ENTRY.finditer(header))[: limits.max_entries]:
        if found.group(1) != "v1":
            continue
        given = _signature_bytes(found.group(2))
        if given is None:
            reason = "signature is not base64 of 32 bytes"
            continue
        candidates.append(given)
    if not candidates:
        raise SignatureError(reason)
    if _any_matches(keys, f"{delivery_id}.{ts_raw}.".encode() + body, candidates):
        return VerifiedDelivery("standard-webhooks", delivery_id, datetime.fromtimestamp(ts, UTC))
    raise SignatureError("signature mismatch")


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance_seconds: int = 300,
    limits: SignatureLimits | None = None,
) -> VerifiedDelivery:
    """Verify a delivery against every configured secret; raise `SignatureError` on failure.

    `limits` bounds the work (entries examined, header size); its tolerance wins over
    `tolerance_seconds` when given.
    A misconfigured secret raises ValueError instead: that is our fault, and answering 5xx makes
    OpenPhone retry, whereas a 401 would lose the event.
    """
    if isinstance(secrets, str):
        raise ValueError("secrets must be a list of secrets, not one string (see parse_secrets)")
    if not secrets:
        raise ValueError(f"no webhook secret configured ({SECRETS_ENV_VAR})")
    keys = [decode_secret(secret) for secret in secrets]
    if not isinstance(body, bytes | bytearray):
        raise TypeError("body must be the raw request bytes")
    body = bytes(body)
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    current = time.time() if now is None else now
    limits = limits or SignatureLimits(tolerance_seconds=tolerance_seconds)

    failures: list[str] = []
    if SW_SIGNATURE_HEADER in lowered:
        try:
            return _verify_standard(
                lowered.get(SW_ID_HEADER),
                lowered.get(SW_TIMESTAMP_HEADER),
                lowered[SW_SIGNATURE_HEADER],
                body,
                keys,
                current,
                limits,
            )
        except SignatureError as exc:
            failures.append(f"standard-webhooks: {exc.reason}")
    if LEGACY_HEADER in lowered:
        try:
            return _verify_legacy(lowered[LEGACY_HEADER], body, keys, current, limits)
        except SignatureError as exc:
            failures.append(f"openphone-legacy: {exc.reason}")
    if not failures:
        raise SignatureError("missing signature headers (openphone-signature or webhook-signature)")
    raise SignatureError("; ".join(failures))
