"""The suite's one event factory: webhook bodies of every payload generation, signed the way OpenPhone
signs them, and stored in the inbox the way the receiver stores them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from openphone_pipelines.openphone.probes import probe_text
from openphone_pipelines.openphone.signatures import decode_secret
from openphone_pipelines.store.webhook_events import record_webhook_event

GENERATIONS = ("v2", "v4", "2026-03-30")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LINE = "PNline000001"
OUR_NUMBER = "+15550001000"
THEIR_NUMBER = "+15550002000"


def sign_legacy(body: bytes, secret: str, timestamp_ms: int) -> str:
    """An `openphone-signature` header value: HMAC-SHA256 over `<ms timestamp>.<raw body>`."""
    ts = str(timestamp_ms)
    digest = hmac.new(decode_secret(secret), ts.encode("ascii") + b"." + body, hashlib.sha256).digest()
    return f"hmac;1;{ts};{base64.b64encode(digest).decode('ascii')}"


def sign_standard(body: bytes, secret: str, delivery_id: str, timestamp_s: int) -> dict[str, str]:
    """Standard Webhooks headers: HMAC-SHA256 over `<webhook-id>.<seconds>.<raw body>`."""
    signed = f"{delivery_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp_s),
            "webhook-signature": f"v1,{base64.b64encode(digest).decode('ascii')}"}


def new_secret(standard: bool = False) -> str:
    raw = base64.b64encode(os.urandom(32)).decode()
    return "whsec_" + raw if standard else raw


def event_id() -> str:
    return "EV" + uuid.uuid4().hex


def message_id() -> str:
    return "AC" + uuid.uuid4().hex


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_event(
    generation: str,
    *,
    event_type: str = "message.received",
    ev_id: str | None = None,
    msg_id: str | None = None,
    status: str | None = None,
    text: str = "see you at 4",
    created: datetime = T0,
    updated: datetime | None = None,
) -> tuple[str, str, bytes]:
    """(event id, message id, compact JSON body) for one message event of `generation`."""
    ev_id = ev_id or event_id()
    msg_id = msg_id or message_id()
    incoming = event_type == "message.received"
    status = status or ("received" if incoming else "delivered")
    sender, recipient = (THEIR_NUMBER, OUR_NUMBER) if incoming else (OUR_NUMBER, THEIR_NUMBER)
    direction = "incoming" if incoming else "outgoing"
    obj: dict[str, Any] = {"id": msg_id, "object": "message", "from": sender, "direction": direction,
                           "status": status, "createdAt": _iso(created), "userId": "USuser0001",
                           "phoneNumberId": LINE}
    if updated is not None:
        obj["updatedAt"] = _iso(updated)
    if generation == "v2":
        obj.update({"to": recipient, "body": text, "media": [], "conversationId": "CNconv000001"})
        payload: dict[str, Any] = {"id": ev_id, "object": "event", "apiVersion": "v2",
                                   "createdAt": _iso(updated or created), "type": event_type,
                                   "data": {"object": obj}}
    elif generation == "v4":
        obj.update({"to": [recipient], "text": text, "contactIds": ["c1"]})
        payload = {"id": ev_id, "object": "event", "apiVersion": "v4", "createdAt": _iso(updated or created),
                   "type": event_type, "data": {"object": obj}}
    else:
        obj.update({"to": [recipient], "text": text, "conversationId": "CNconv000001"})
        payload = {"id": ev_id, "type": event_type, "apiVersion": "2026-03-30",
                   "createdAt": _iso(updated or created), "data": {"resource": obj, "context": {}, "links": {}}}
    return ev_id, msg_id, json.dumps(payload, separators=(",", ":")).encode()


def probe_event(generation: str, nonce: str) -> tuple[str, str, bytes]:
    return message_event(generation, text=probe_text(nonce))


@dataclass
class Delivery:
    """One HTTP delivery: body plus the headers the sender would put on it."""

    body: bytes
    headers: dict[str, str]


def sign(body: bytes, secret: str, generation: str, *, ev_id: str | None = None,
         at: float | None = None) -> Delivery:
    """Headers for `body`: legacy (ms timestamp) for v2/v4, Standard Webhooks for 2026-03-30."""
    now = time.time() if at is None else at
    headers = {"content-type": "application/json"}
    if generation == "2026-03-30":
        headers.update(sign_standard(body, secret, ev_id or event_id(), int(now)))
    else:
        headers["openphone-signature"] = sign_legacy(body, secret, int(now * 1000))
    return Delivery(body, headers)


def delivery(generation: str, secret: str, **kwargs: Any) -> tuple[str, str, Delivery]:
    """A signed message event: (dedupe key, message id, delivery)."""
    ev_id, msg_id, body = message_event(generation, **kwargs)
    return ev_id, msg_id, sign(body, secret, generation, ev_id=ev_id)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def numbered_event(n: int, *, text: str = "hello there") -> tuple[str, bytes]:
    """(event id, body) of the n-th v4 `message.received` of a test, created now: stable ids per n."""
    ev_id, _msg_id, body = message_event("v4", ev_id=f"EV{n:032x}", msg_id=f"AC{n:032x}", text=text,
                                         created=datetime.now(UTC))
    return ev_id, body


def store_event(engine: Engine, n: int, body: bytes | None = None) -> int:
    """The n-th event committed to the inbox as the receiver commits it (its body may be any bytes)."""
    ev_id, default_body = numbered_event(n)
    stored = record_webhook_event(engine, event_id=ev_id, raw_body=default_body if body is None else body,
                                  signature_scheme="openphone-legacy", event_type="message.received",
                                  api_version="v4")
    return stored.id
