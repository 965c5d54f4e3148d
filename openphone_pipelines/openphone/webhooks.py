"""Parse webhook bodies of all three payload generations into `WebhookEvent` (docs/openphone-api.md,
'Webhook payload generations').

A (app-created, apiVersion v2/v3): `data.object`, `body`, `to` as a string.
B (API-created, apiVersion v4):    `data.object`, `text`, `to` as an array.
C (dated, apiVersion 2026-03-30):  `data.resource` + `data.context`; dedupe on the `webhook-id` header.

`event_envelope` never raises, so the receiver can store *every* signed delivery under a stable key
before trying to parse it (docs/design.md, rule 2); `parse_webhook_event` raises `PayloadError`
(permanent) for anything it cannot turn into an event.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .models import Message, WebhookEvent

MESSAGE_EVENT_TYPES = frozenset(
    {"message.received", "message.delivered", "message.failed", "message.undelivered"}
)
# Event families we know and deliberately do not turn into messages. WHG samples name the summary
# and transcript events `callSummary` / `callTranscript`; HKD names app task events with `_`.
OTHER_EVENT_PREFIXES = ("call.", "contact.", "task.", "task_")
OTHER_EVENT_TYPES = frozenset({"callSummary", "callTranscript"})

# Missing direction/status on a message object is inferred from the event type (seen in dated
# payloads whose resource may leave them to the envelope).
_DIRECTION_BY_TYPE = {
    "message.received": "incoming",
    "message.delivered": "outgoing",
    "message.failed": "outgoing",
    "message.undelivered": "outgoing",
}
_STATUS_BY_TYPE = {
    "message.received": "received",
    "message.delivered": "delivered",
    "message.failed": "failed",
    "message.undelivered": "undelivered",
}


class PayloadError(ValueError):
    """The body is signed but cannot be understood: a permanent failure (dead letter, replayable)."""


def is_known_event_type(event_type: str | None) -> bool:
    if not event_type:
        return False
    return (
        event_type in MESSAGE_EVENT_TYPES
        or event_type in OTHER_EVENT_TYPES
        or event_type.startswith(OTHER_EVENT_PREFIXES)
    )


def body_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


MAX_STORED_ID_CHARS = 255  # a longer id (the unique index holds about 2.7 KB) is stored as its hash
MAX_EVENT_TYPE_CHARS = 200
MAX_API_VERSION_CHARS = 64


def storable_id(raw: str) -> str:
    """The dedupe key as stored: the id itself, or `sha256:<hex>` of it when Postgres could not store
    or index it (NUL, unpaired surrogates, over 255 characters). The raw body keeps the original."""
    if len(raw) <= MAX_STORED_ID_CHARS and "\x00" not in raw:
        try:
            raw.encode("utf-8")
            return raw
        except UnicodeEncodeError:
            pass
    return "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def storable_text(value: str, limit: int) -> str:
    """`value` cut to `limit` characters with what a text column refuses (NUL, unpaired surrogates)
    replaced (U+FFFD, `?`): for labels kept beside the raw body (event type, apiVersion, errors)."""
    cut = value[:limit].replace("\x00", "\ufffd")
    return cut if cut.isascii() else cut.encode("utf-8", "replace").decode("utf-8")


def _load(body: bytes) -> Any:
    if isinstance(body, str):  # be forgiving to callers that decoded already
        body = body.encode("utf-8")
    return json.loads(body)


_SKIP_TO = re.compile(r'["{}\[\]]')
_SCALAR = re.compile(r"\s*(-?[0-9][0-9.eE+-]*|true|false|null)")
_WS = re.compile(r"\s*")


def _top_level_strings(text: str, names: frozenset[str]) -> dict[str, Any]:
    """The top-level `names` of a JSON object, read without recursion (a body nested deeper than
    Python's recursion limit still yields its own `id`, `type` and `apiVersion`). Iterative and
    linear in the body; gives up (returns what it has) on anything malformed."""
    scan = json.decoder.scanstring
    found: dict[str, Any] = {}
    pos = _WS.match(text, 0).end()
    if not text.startswith("{", pos):
        return found
    pos += 1
    try:
        while True:
            pos = _WS.match(text, pos).end()
            if text.startswith("}", pos) or not text.startswith('"', pos):
                return found
            key, pos = scan(text, pos + 1)
            pos = _WS.match(text, pos).end()
            if not text.startswith(":", pos):
                return found
            pos = _WS.match(text, pos + 1).end()
            if text.startswith('"', pos):
                value, pos = scan(text, pos + 1)
                if key in names:
                    found[key] = value
            elif text.startswith(("{", "["), pos):
                depth, pos = 1, pos + 1
                while depth:
                    hit = _SKIP_TO.search(text, pos)
                    if hit is None:
                        return found
                    char, pos = hit.group(), hit.end()
                    if char == '"':
                        _, pos = scan(text, pos)
                    else:
                        depth += 1 if char in "{[" else -1
            else:
                scalar = _SCALAR.match(text, pos)
                if scalar is None:
                    return found
                if key in names:
                    found[key] = json.loads(scalar.group(1))
                pos = scalar.end()
            pos = _WS.match(text, pos).end()
            if not text.startswith(",", pos):
                return found
            pos += 1
    except (ValueError, IndexError):
        return found


_ENVELOPE_FIELDS = frozenset({"id", "type", "apiVersion"})


def _envelope_fields(body: bytes) -> dict[str, Any]:
    """`id`, `type` and `apiVersion` of a JSON object body, however deeply its data nests."""
    try:
        data = _load(body)
    except RecursionError:
        try:
            return _top_level_strings(bytes(body).decode("utf-8"), _ENVELOPE_FIELDS)
        except UnicodeDecodeError:
            return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class EventEnvelope:
    """What the receiver stores beside the raw bytes, read without validation, always storable."""

    event_id: str
    event_type: str | None
    api_version: str | None


def event_envelope(body: bytes, delivery_id: str | None = None) -> EventEnvelope:
    """Dedupe key, type and apiVersion of a delivery in one parse; never raises.

    The id is the `webhook-id` delivery id when given (generation C), else the body's `id`, else a
    sha256 of the raw bytes, so even an unparseable signed body has a stable dedupe key; an id
    Postgres cannot store or index is replaced by its hash (`storable_id`).
    """
    event_type: str | None = None
    payload_id: str | None = None
    api_version: str | None = None
    try:
        data = _envelope_fields(body)
        if isinstance(data.get("type"), str) and data["type"]:
            event_type = storable_text(data["type"], MAX_EVENT_TYPE_CHARS)
        if isinstance(data.get("id"), str) and data["id"].strip():
            payload_id = data["id"].strip()
        if data.get("apiVersion") is not None:
            api_version = storable_text(str(data["apiVersion"]), MAX_API_VERSION_CHARS)
    except Exception:  # noqa: BLE001 - the contract is "never raises"
        pass
    if delivery_id and delivery_id.strip():
        event_id = storable_id(delivery_id.strip())
    elif payload_id:
        event_id = storable_id(payload_id)
    else:
        try:
            event_id = body_digest(bytes(body) if not isinstance(body, str) else body.encode())
        except Exception:  # noqa: BLE001
            event_id = body_digest(repr(body).encode())
    return EventEnvelope(event_id, event_type, api_version)


def _parse_created_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = value / 1000.0 if value > 10**11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError("createdAt is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PayloadError(f"createdAt is not ISO 8601: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PayloadError(f"createdAt has an unexpected type {type(value).__name__}")


def _generation(payload: dict[str, Any], data: dict[str, Any]) -> str:
    if "resource" in data and "object" not in data:
        return "C"
    return "B" if payload.get("apiVersion") == "v4" else "A"


def _from_context(context: Any, *names: str) -> Any:
    """First of `names` found in the dated payload's `data.context` (`x` or `{x: {id}}` forms)."""
    if not isinstance(context, dict):
        return None
    for name in names:
        value = context.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value["id"]
    return None


def _message_fields(event_type: str, obj: dict[str, Any], context: Any) -> dict[str, Any]:
    """The message as the event type says it is: direction belongs to the type (a received message
    is incoming, a delivered one outgoing), so a payload claiming otherwise is an anomaly to look
    at, never something arrival order may settle (docs/design.md, rule 3)."""
    fields = dict(obj)
    expected = _DIRECTION_BY_TYPE[event_type]
    if fields.get("direction") is not None and fields["direction"] != expected:
        raise PayloadError("direction contradicts event type")
    fields["direction"] = expected
    fields.setdefault("status", _STATUS_BY_TYPE[event_type])
    if not fields.get("phoneNumberId"):
        found = _from_context(context, "phoneNumberId", "phoneNumber")
        if found and found.startswith("PN"):
            fields["phoneNumberId"] = found
    if not fields.get("conversationId"):
        found = _from_context(context, "conversationId", "conversation")
        if found:
            fields["conversationId"] = found
    return fields


def parse_webhook_event(body: bytes, delivery_id: str | None = None) -> WebhookEvent:
    """Parse one delivery body; `delivery_id` is the `webhook-id` header (generation C) if any."""
    try:
        payload = _load(body)
    except RecursionError:
        raise PayloadError("body nests deeper than the parser allows") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise PayloadError(f"body is a JSON {type(payload).__name__}, expected an object")

    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("event has no type")
    payload_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    raw_id = (delivery_id or "").strip() or (payload_id or "").strip()
    event_id = storable_id(raw_id) if raw_id else ""
    if not event_id:
        raise PayloadError("event has no id (and no webhook-id delivery id)")
    if not is_known_event_type(event_type):
        raise PayloadError(f"unknown event type {storable_text(event_type, 100)!r}")

    data = payload.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PayloadError("event data is not an object")
    generation = _generation(payload, data)
    obj = data.get("resource") if generation == "C" else data.get("object")
    api_version = payload.get("apiVersion")

    message: Message | None = None
    if event_type in MESSAGE_EVENT_TYPES:
        if not isinstance(obj, dict):
            raise PayloadError(f"{event_type} carries no message object")
        try:
            message = Message.model_validate(_message_fields(event_type, obj, data.get("context")))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PayloadError(f"{event_type} message failed validation: {problems}") from None

    resource_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
    return WebhookEvent(
        event_id=event_id,
        type=event_type,
        api_version=str(api_version) if api_version is not None else None,
        created_at=_parse_created_at(payload.get("createdAt")),
        message=message,
        resource_id=resource_id,
        generation=generation,
        delivery_id=delivery_id or None,
    )


__all__ = [
    "MESSAGE_EVENT_TYPES",
    "PayloadError",
    "WebhookEvent",
    "EventEnvelope",
    "event_envelope",
    "is_known_event_type",
    "parse_webhook_event",
]
