"""Typed OpenPhone resources, tolerant of the documented field drift (docs/openphone-api.md,
'Listing messages' and 'Webhook payload generations').

REST and v4 webhooks say `text` and give `to` as an array; app-created (v2/v3) webhooks say `body`
and give `to` as a string; `media` and `conversationId` may be absent. One model accepts all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

# Forward-only order of message statuses. `received` (incoming) and the outgoing terminal states
# share the top rank; `failed` (dated surface only) can still be retried, so it ranks with `sent`.
STATUS_RANK: dict[str, int] = {
    "queued": 1,
    "sent": 2,
    "failed": 2,
    "delivered": 3,
    "undelivered": 3,
    "received": 3,
}
# Outgoing statuses that may still change: a message left in one of them long after it was sent is
# re-polled (legacy webhooks never report `undelivered`). The SQL that finds them binds this tuple.
UNSETTLED_STATUSES = ("queued", "sent")


class _Resource(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class Message(_Resource):
    """One SMS/MMS as OpenPhone describes it (REST, webhook v2/v3/v4 or dated payloads)."""

    id: str
    phone_number_id: str | None = Field(default=None, alias="phoneNumberId")
    conversation_id: str | None = Field(default=None, alias="conversationId")
    direction: str
    from_number: str | None = Field(default=None, alias="from")
    to_numbers: list[str] = Field(default_factory=list, alias="to")
    text: str | None = Field(default=None, validation_alias=AliasChoices("text", "body", "content"))
    media: list[dict[str, Any]] = Field(default_factory=list)
    status: str
    user_id: str | None = Field(default=None, alias="userId")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")

    @field_validator("to_numbers", mode="before")
    @classmethod
    def _to_as_list(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return list(value)

    @field_validator("media", mode="before")
    @classmethod
    def _media_as_objects(cls, value: Any) -> list[dict[str, Any]]:
        if not value:
            return []
        return [item if isinstance(item, dict) else {"url": str(item)} for item in value]

    @field_validator("direction")
    @classmethod
    def _known_direction(cls, value: str) -> str:
        if value not in ("incoming", "outgoing"):
            raise ValueError(f"unknown message direction {value!r}")
        return value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in STATUS_RANK:
            raise ValueError(f"unknown message status {value!r}")
        return value

    @property
    def effective_updated_at(self) -> datetime:
        """When the status last changed; OpenPhone omits updatedAt in some webhook payloads."""
        return self.updated_at or self.created_at


class Conversation(_Resource):
    id: str
    phone_number_id: str = Field(alias="phoneNumberId")
    participants: list[str] = Field(default_factory=list)
    name: str | None = None
    last_activity_at: datetime | None = Field(default=None, alias="lastActivityAt")
    last_activity_id: str | None = Field(default=None, alias="lastActivityId")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    deleted_at: datetime | None = Field(default=None, alias="deletedAt")


class PhoneNumber(_Resource):
    id: str
    number: str | None = Field(default=None, validation_alias=AliasChoices("number", "phoneNumber"))
    name: str | None = None
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class WebhookEvent(_Resource):
    """One webhook delivery, normalised across payload generations A (v2/v3), B (v4) and C (dated).

    `event_id` is the dedupe key: the `EV…` id for A/B, the `webhook-id` header for C (falling back
    to the body's id). `message` is set only for message events; `resource_id` is the id of
    whatever object the event is about (message, call, contact...).
    """

    event_id: str
    type: str
    api_version: str | None = None
    created_at: datetime | None = None
    message: Message | None = None
    resource_id: str | None = None
    generation: str = "A"
    delivery_id: str | None = None
