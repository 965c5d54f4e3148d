"""Webhook payload parsing for all three generations (docs/openphone-api.md, 'Webhook payload generations'), plus probe markers.

Ids are obviously fake: real-looking AC + 32 hex ids trip secret scanners (a Twilio SID pattern)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from openphone_pipelines.openphone.models import Message
from openphone_pipelines.openphone.probes import (
    PROBE_MARKER_PREFIX,
    RecordedProbes,
    new_probe_nonce,
    probe_nonce,
    probe_text,
)
from openphone_pipelines.openphone.webhooks import (
    MESSAGE_EVENT_TYPES,
    PayloadError,
    event_envelope,
    parse_webhook_event,
)


def event_identity(body: bytes, delivery_id: str | None) -> tuple[str, str | None]:
    """The dedupe key and type the receiver stores for a delivery, before any parsing."""
    envelope = event_envelope(body, delivery_id)
    return envelope.event_id, envelope.event_type

V2_DELIVERED = {
    "id": "EVtestA0001",
    "object": "event",
    "apiVersion": "v2",
    "createdAt": "2025-11-03T18:22:47.220Z",
    "type": "message.delivered",
    "data": {
        "object": {
            "id": "ACtestA0001",
            "object": "message",
            "from": "+16505550199",
            "to": "+14155550142",
            "direction": "outgoing",
            "body": "Your appointment is confirmed for 3pm.",
            "media": [],
            "status": "delivered",
            "createdAt": "2025-11-03T18:22:41.512Z",
            "userId": "UStestUser",
            "phoneNumberId": "PNtestLine1",
            "conversationId": "CNtestConv1",
        }
    },
}

V4_RECEIVED = {
    "id": "EVtestB0001",
    "object": "event",
    "apiVersion": "v4",
    "createdAt": "2025-11-03T18:30:12.884Z",
    "type": "message.received",
    "data": {
        "object": {
            "id": "ACtestB0001",
            "object": "message",
            "from": "+14155550142",
            "to": ["+16505550199"],
            "direction": "incoming",
            "text": "Can we move it to 4pm?",
            "status": "received",
            "createdAt": "2025-11-03T18:30:12.701Z",
            "userId": "UStestUser",
            "phoneNumberId": "PNtestLine1",
            "contactIds": ["contact-test-1"],
        }
    },
}

DATED_RECEIVED = {
    "id": "EVtestC0001",
    "apiVersion": "2026-03-30",
    "createdAt": "2026-04-13T12:00:00.000Z",
    "type": "message.received",
    "data": {
        "resource": {
            "id": "ACtestC0001",
            "from": "+14155550142",
            "to": ["+16505550199"],
            "text": "Dated surface hello",
            "createdAt": "2026-04-13T11:59:59.500Z",
        },
        "context": {"phoneNumber": {"id": "PNtestLine1"}, "conversation": {"id": "CNtestConv9"}},
        "links": {"quo": "https://my.quo.example/inbox"},
    },
}


def dumps(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def test_generation_a_v2_body_and_string_to() -> None:
    event = parse_webhook_event(dumps(V2_DELIVERED))
    assert (event.event_id, event.type, event.api_version, event.generation) == (
        "EVtestA0001",
        "message.delivered",
        "v2",
        "A",
    )
    assert event.created_at == datetime(2025, 11, 3, 18, 22, 47, 220000, tzinfo=UTC)
    assert event.resource_id == "ACtestA0001"
    message = event.message
    assert isinstance(message, Message)
    assert message.text == "Your appointment is confirmed for 3pm."
    assert message.to_numbers == ["+14155550142"]
    assert (message.status, message.direction, message.conversation_id) == (
        "delivered",
        "outgoing",
        "CNtestConv1",
    )
    assert event.type in MESSAGE_EVENT_TYPES


def test_generation_a_v3_real_capture_shape() -> None:
    payload = json.loads(json.dumps(V2_DELIVERED))
    payload["apiVersion"] = "v3"
    payload["type"] = "message.received"
    payload["data"]["object"].update(direction="incoming", status="received")
    event = parse_webhook_event(dumps(payload))
    assert event.generation == "A" and event.message is not None
    assert event.message.status == "received"


def test_generation_b_v4_text_and_array_to() -> None:
    event = parse_webhook_event(dumps(V4_RECEIVED))
    assert (event.event_id, event.generation, event.api_version) == ("EVtestB0001", "B", "v4")
    assert event.message is not None
    assert event.message.text == "Can we move it to 4pm?"
    assert event.message.to_numbers == ["+16505550199"]
    assert event.message.direction == "incoming"
    assert event.message.phone_number_id == "PNtestLine1"


def test_generation_c_resource_with_delivery_id() -> None:
    body = dumps(DATED_RECEIVED)
    event = parse_webhook_event(body, delivery_id="msg_delivery_1")
    assert (event.event_id, event.delivery_id, event.generation) == ("msg_delivery_1", "msg_delivery_1", "C")
    assert event.api_version == "2026-03-30"
    assert event.resource_id == "ACtestC0001"
    assert event.message is not None
    # direction/status inferred from the type; line and conversation taken from data.context
    assert (event.message.direction, event.message.status) == ("incoming", "received")
    assert event.message.phone_number_id == "PNtestLine1"
    assert event.message.conversation_id == "CNtestConv9"
    # without the header the body's id is the key
    assert parse_webhook_event(body).event_id == "EVtestC0001"


@pytest.mark.parametrize(
    "event_type",
    [
        "call.completed",
        "call.ringing",
        "contact.updated",
        "task.assigned",
        "callSummary",
        "call.summary.completed",
    ],
)
def test_known_non_message_types_parse_without_a_message(event_type: str) -> None:
    payload = {
        "id": "EVtestCall1",
        "object": "event",
        "apiVersion": "v4",
        "createdAt": "2025-11-03T17:43:17.000Z",
        "type": event_type,
        "data": {"object": {"id": "ACtestCall1", "object": "call", "status": "completed"}},
    }
    event = parse_webhook_event(dumps(payload))
    assert event.message is None
    assert event.resource_id == "ACtestCall1"
    assert event.type not in MESSAGE_EVENT_TYPES


def test_unknown_type_is_a_payload_error() -> None:
    payload = {**V4_RECEIVED, "type": "billing.invoice.paid"}
    with pytest.raises(PayloadError, match="unknown event type"):
        parse_webhook_event(dumps(payload))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"just a string"',
        b'{"type": "message.received"}',  # no id
        b'{"id": "EVtestX"}',  # no type
        b'{"id": "EVtestX", "type": "message.received", "data": {}}',  # no message object
        b'{"id": "EVtestX", "type": "message.received", "data": "nope"}',
        b'{"id": "EVtestX", "type": "message.delivered", "createdAt": "yesterday", "data": {}}',
    ],
)
def test_garbage_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_webhook_event(body)


def test_message_event_failing_validation_is_a_payload_error() -> None:
    payload = json.loads(json.dumps(V4_RECEIVED))
    payload["data"]["object"]["status"] = "teleported"
    with pytest.raises(PayloadError, match="validation"):
        parse_webhook_event(dumps(payload))
    del payload["data"]["object"]["createdAt"]
    with pytest.raises(PayloadError):
        parse_webhook_event(dumps(payload))


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


def test_message_event_types() -> None:
    assert {
        "message.received",
        "message.delivered",
        "message.failed",
        "message.undelivered",
    } == MESSAGE_EVENT_TYPES


# ------------------------------------------------------------------ event_envelope (never raises)


def test_event_identity_of_well_formed_bodies() -> None:
    assert event_identity(dumps(V2_DELIVERED), None) == ("EVtestA0001", "message.delivered")
    assert event_identity(dumps(DATED_RECEIVED), "msg_delivery_1") == ("msg_delivery_1", "message.received")
    assert event_identity(dumps(DATED_RECEIVED), None) == ("EVtestC0001", "message.received")


def test_event_identity_matches_parse() -> None:
    for payload, delivery in ((V2_DELIVERED, None), (V4_RECEIVED, None), (DATED_RECEIVED, "msg_9")):
        body = dumps(payload)
        assert event_identity(body, delivery)[0] == parse_webhook_event(body, delivery).event_id


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe garbage", b"[1,2]", b'{"type": 5, "id": 7}'])
def test_event_identity_of_garbage_is_a_stable_hash(body: bytes) -> None:
    event_id, event_type = event_identity(body, None)
    assert event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert event_type is None
    assert event_identity(body, None) == (event_id, event_type)


def test_event_identity_keeps_the_type_of_an_unparseable_event() -> None:
    assert event_identity(b'{"type": "message.received", "data": 1}', None)[1] == "message.received"
    assert event_identity(b"garbage", "msg_5") == ("msg_5", None)


# ------------------------------------------------------------------ probe markers


def test_probe_text_round_trip() -> None:
    nonce = new_probe_nonce()
    text = probe_text(nonce)
    assert PROBE_MARKER_PREFIX in text
    assert text.endswith("]")
    assert len(text) <= 160
    assert probe_nonce(text) == nonce


def test_only_a_recorded_probe_on_its_line_pair_is_a_probe() -> None:
    obj = V4_RECEIVED["data"]["object"]
    ours = Message.model_validate({**obj, "text": probe_text("n1"), "from": "+15550009999", "to": ["+15550001111"]})
    probes = RecordedProbes(frozenset({"ACsent"}), {"n1": ("+15550009999", "+15550001111")})
    assert probes.covers(ours)
    assert not RecordedProbes().covers(ours)  # the marker alone proves nothing
    quoted_by_customer = ours.model_copy(update={"from_number": "+15550002222"})
    assert not probes.covers(quoted_by_customer)
    to_someone_else = ours.model_copy(update={"to_numbers": ["+15550003333"]})
    assert not probes.covers(to_someone_else)
    assert probes.covers(Message.model_validate({**obj, "id": "ACsent", "text": "anything"}))
    by_line = RecordedProbes(pairs={"n1": ("PNprobe", "+15550001111")})
    assert by_line.covers(ours)  # incoming copy on the monitored line: its sender number is unknown
    assert by_line.covers(ours.model_copy(update={"direction": "outgoing", "phone_number_id": "PNprobe"}))
    assert not by_line.covers(ours.model_copy(update={"direction": "outgoing", "phone_number_id": "PNother"}))


def test_ordinary_texts_are_not_probes() -> None:
    assert probe_nonce(None) is None
    assert probe_nonce("") is None
    assert probe_nonce("[openphone-pipelines health probe ]") is None
    assert probe_nonce("see you at 3pm") is None


@pytest.mark.parametrize("nonce", ["", "has space", "brack]et", "x" * 65])
def test_probe_text_rejects_unsafe_nonces(nonce: str) -> None:
    with pytest.raises(ValueError):
        probe_text(nonce)
