"""Webhook signature verification. Expected signatures are computed here with hmac directly, not
with the suite's signing helpers (tests/support/events.py), so a shared mistake cannot make both
sides agree."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from openphone_pipelines.openphone.signatures import (
    SECRETS_ENV_VAR,
    SignatureError,
    VerifiedDelivery,
    parse_secrets,
    verify_webhook,
)
from tests.support.events import sign_legacy, sign_standard

# Key bytes deliberately include values >= 0x80 (a known bug decodes them as text and corrupts them).
KEY = bytes([0x00, 0x7F, 0x80, 0x9A, 0xC3, 0xFF, 0xFE, 0x10]) * 4
SECRET = base64.b64encode(KEY).decode()
OTHER_SECRET = base64.b64encode(b"another-key-another-key-32-bytes").decode()
BODY = b'{"id":"EVtest0001","object":"event","apiVersion":"v2","type":"message.received","data":{}}'
NOW = 1_762_194_000.0  # 2025-11-03T18:20:00Z
NOW_MS = int(NOW * 1000)


def legacy_header(body: bytes, key: bytes, ts: str) -> str:
    digest = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).digest()
    return f"hmac;1;{ts};{base64.b64encode(digest).decode()}"


def standard_headers(body: bytes, key: bytes, msg_id: str, ts: int) -> dict[str, str]:
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def test_key_really_has_high_bytes() -> None:
    assert any(b >= 0x80 for b in base64.b64decode(SECRET))


def test_valid_legacy_signature_with_millisecond_timestamp() -> None:
    headers = {"openphone-signature": legacy_header(BODY, KEY, str(NOW_MS))}
    result = verify_webhook(headers, BODY, [SECRET], now=NOW)
    assert result == VerifiedDelivery(
        scheme="openphone-legacy", delivery_id=None, timestamp=datetime.fromtimestamp(NOW, UTC)
    )


def test_legacy_header_name_is_case_insensitive_and_seconds_timestamps_work() -> None:
    headers = {"OpenPhone-Signature": legacy_header(BODY, KEY, str(int(NOW) - 10))}
    assert verify_webhook(headers, BODY, [SECRET], now=NOW).scheme == "openphone-legacy"


def test_legacy_several_signatures_split_on_comma() -> None:
    wrong = legacy_header(BODY, b"wrong key", str(NOW_MS))
    right = legacy_header(BODY, KEY, str(NOW_MS))
    headers = {"openphone-signature": f"{wrong}, {right}"}
    assert verify_webhook(headers, BODY, [SECRET], now=NOW).scheme == "openphone-legacy"


def test_suite_signers_agree_with_independent_computation() -> None:
    assert sign_legacy(BODY, SECRET, NOW_MS) == legacy_header(BODY, KEY, str(NOW_MS))
    assert sign_standard(BODY, "whsec_" + SECRET, "msg_1", int(NOW)) == standard_headers(
        BODY, KEY, "msg_1", int(NOW)
    )


@pytest.mark.parametrize("secret", ["whsec_" + SECRET, SECRET])
def test_valid_standard_webhooks_signature(secret: str) -> None:
    headers = standard_headers(BODY, KEY, "msg_2Nb8dFQ7", int(NOW))
    result = verify_webhook(headers, BODY, [secret], now=NOW)
    assert result.scheme == "standard-webhooks"
    assert result.delivery_id == "msg_2Nb8dFQ7"
    assert result.timestamp == datetime.fromtimestamp(int(NOW), UTC)


def test_standard_webhooks_accepts_any_of_several_v1_signatures() -> None:
    headers = standard_headers(BODY, KEY, "msg_x", int(NOW))
    headers["webhook-signature"] = "v1,AAAA v1a,ignored " + headers["webhook-signature"]
    assert verify_webhook(headers, BODY, [SECRET], now=NOW).delivery_id == "msg_x"


@pytest.mark.parametrize("scheme", ["legacy", "standard"])
def test_tampered_body_is_rejected(scheme: str) -> None:
    headers = (
        {"openphone-signature": legacy_header(BODY, KEY, str(NOW_MS))}
        if scheme == "legacy"
        else standard_headers(BODY, KEY, "msg_1", int(NOW))
    )
    tampered = BODY.replace(b"message.received", b"message.delivered")
    with pytest.raises(SignatureError, match="mismatch"):
        verify_webhook(headers, tampered, [SECRET], now=NOW)
    # Re-serialised JSON (whitespace added) is not the raw body either.
    with pytest.raises(SignatureError):
        verify_webhook(headers, BODY.replace(b",", b", "), [SECRET], now=NOW)


@pytest.mark.parametrize("scheme", ["legacy", "standard"])
def test_wrong_key_is_rejected(scheme: str) -> None:
    headers = (
        {"openphone-signature": legacy_header(BODY, KEY, str(NOW_MS))}
        if scheme == "legacy"
        else standard_headers(BODY, KEY, "msg_1", int(NOW))
    )
    with pytest.raises(SignatureError):
        verify_webhook(headers, BODY, [OTHER_SECRET], now=NOW)


def test_using_the_base64_text_as_key_is_rejected() -> None:
    headers = {"openphone-signature": legacy_header(BODY, SECRET.encode(), str(NOW_MS))}
    with pytest.raises(SignatureError):
        verify_webhook(headers, BODY, [SECRET], now=NOW)


@pytest.mark.parametrize("scheme", ["legacy", "standard"])
def test_rotated_secrets_second_one_matches(scheme: str) -> None:
    headers = (
        {"openphone-signature": legacy_header(BODY, KEY, str(NOW_MS))}
        if scheme == "legacy"
        else standard_headers(BODY, KEY, "msg_1", int(NOW))
    )
    assert verify_webhook(headers, BODY, [OTHER_SECRET, SECRET], now=NOW)


@pytest.mark.parametrize("offset, word", [(-301, "old"), (301, "future")])
def test_stale_and_future_legacy_timestamps_are_rejected(offset: int, word: str) -> None:
    ts = str(NOW_MS + offset * 1000)
    headers = {"openphone-signature": legacy_header(BODY, KEY, ts)}
    with pytest.raises(SignatureError, match=word):
        verify_webhook(headers, BODY, [SECRET], now=NOW)
    # Inside the window on either side is fine.
    inside = str(NOW_MS + offset * 500)
    verify_webhook({"openphone-signature": legacy_header(BODY, KEY, inside)}, BODY, [SECRET], now=NOW)


@pytest.mark.parametrize("offset, word", [(-301, "old"), (301, "future")])
def test_stale_and_future_standard_timestamps_are_rejected(offset: int, word: str) -> None:
    headers = standard_headers(BODY, KEY, "msg_1", int(NOW) + offset)
    with pytest.raises(SignatureError, match=word):
        verify_webhook(headers, BODY, [SECRET], now=NOW)


def test_tolerance_is_configurable() -> None:
    headers = standard_headers(BODY, KEY, "msg_1", int(NOW) - 100)
    with pytest.raises(SignatureError):
        verify_webhook(headers, BODY, [SECRET], now=NOW, tolerance_seconds=60)


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "missing signature headers"),
        ({"content-type": "application/json"}, "missing signature headers"),
        ({"webhook-signature": "v1,AAAA", "webhook-timestamp": str(int(NOW))}, "webhook-id"),
        ({"webhook-signature": "v1,AAAA", "webhook-id": "msg_1"}, "webhook-timestamp"),
        ({"openphone-signature": "garbage"}, "no usable"),
        ({"openphone-signature": f"hmac;1;{NOW_MS}"}, "no usable"),
        ({"openphone-signature": f"hmac;2;{NOW_MS};AAAA"}, "no usable"),
        ({"openphone-signature": "hmac;1;-5;AAAA"}, "timestamp"),
        ({"openphone-signature": f"hmac;1;{NOW_MS};not base64!"}, "base64"),
    ],
)
def test_missing_or_malformed_headers_are_rejected(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_webhook(headers, BODY, [SECRET], now=NOW)


def test_misconfiguration_is_a_value_error_not_a_signature_error() -> None:
    headers = {"openphone-signature": legacy_header(BODY, KEY, str(NOW_MS))}
    with pytest.raises(ValueError):
        verify_webhook(headers, BODY, [], now=NOW)
    with pytest.raises(ValueError):
        verify_webhook(headers, BODY, ["not*base64"], now=NOW)
    with pytest.raises(ValueError):
        verify_webhook(headers, BODY, SECRET, now=NOW)  # type: ignore[arg-type]


def test_parse_secrets() -> None:
    assert parse_secrets(f" {SECRET} ,, whsec_{OTHER_SECRET} ,") == [SECRET, f"whsec_{OTHER_SECRET}"]
    for bad in ("", " , ", f"{SECRET},not*base64"):
        with pytest.raises(ValueError, match=SECRETS_ENV_VAR) as info:
            parse_secrets(bad)
        assert SECRET not in str(info.value)
