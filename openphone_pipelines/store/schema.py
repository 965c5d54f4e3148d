"""The app database's tables (Alembic owns the live schema; these models mirror it).

One MetaData with a naming convention so Alembic produces stable constraint names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    func,
)
from sqlalchemy import (
    text as sql,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MessageRow(Base):
    """One row per OpenPhone message id; `first_seen_via = 'reconciliation'` means webhooks missed it."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    phone_number_id: Mapped[str | None] = mapped_column(Text)
    conversation_id: Mapped[str | None] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(Text)
    from_number: Mapped[str | None] = mapped_column(Text)
    to_numbers: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=sql("'{}'"))
    text: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[Any]] = mapped_column(JSONB, server_default=sql("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime | None] = mapped_column(TZ)
    first_seen_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    first_seen_via: Mapped[str] = mapped_column(Text)
    last_synced_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (
        CheckConstraint("direction IN ('incoming', 'outgoing')", name="direction"),
        CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'delivered', 'undelivered', 'received')", name="status"
        ),
        CheckConstraint("first_seen_via IN ('webhook', 'reconciliation', 'send')", name="first_seen_via"),
        Index("ix_messages_line_created", "phone_number_id", "created_at"),
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_conversation_id", "conversation_id"),
    )


class WebhookEventRow(Base):
    """Every signed delivery, raw body byte-for-byte, unique on the provider's event id."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    event_type: Mapped[str | None] = mapped_column(Text)
    api_version: Mapped[str | None] = mapped_column(Text)
    signature_scheme: Mapped[str] = mapped_column(Text)
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(TZ)
    processing_status: Mapped[str] = mapped_column(Text, server_default=sql("'pending'"))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "processing_status IN ('pending', 'processed', 'probe', 'ignored', 'failed')",
            name="processing_status",
        ),
        Index("ix_webhook_events_status_received", "processing_status", "received_at"),
        Index("ix_webhook_events_received_at", "received_at"),
    )


class FailedWebhookRow(Base):
    """Retry policy as data: one row per event whose processing failed."""

    __tablename__ = "failed_webhook_queue"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), unique=True
    )
    error_class: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=sql("5"))
    next_retry_at: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    claimed_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    discarded_at: Mapped[datetime | None] = mapped_column(TZ)
    discard_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("error_class IN ('transient', 'permanent')", name="error_class"),
        CheckConstraint(
            "status IN ('pending', 'processing', 'resolved', 'dead', 'discarded')", name="status"
        ),
        Index(
            "ix_failed_webhook_queue_due",
            "next_retry_at",
            postgresql_where=sql("status = 'pending'"),
        ),
        Index("ix_failed_webhook_queue_status_updated", "status", "updated_at"),
    )


class HealthCheckRow(Base):
    """One row per health probe: sent through the API, expected back as a webhook."""

    __tablename__ = "webhook_health_checks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    nonce: Mapped[str] = mapped_column(Text, unique=True)
    from_line: Mapped[str] = mapped_column(Text)
    to_number: Mapped[str] = mapped_column(Text)
    sent_message_id: Mapped[str | None] = mapped_column(Text, unique=True)
    sent_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    received_at: Mapped[datetime | None] = mapped_column(TZ)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    alerted_at: Mapped[datetime | None] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint("status IN ('sent', 'received', 'failed')", name="status"),
        Index("ix_webhook_health_checks_sent_at", "sent_at"),
        Index("ix_webhook_health_checks_pending", "sent_at", postgresql_where=sql("status = 'sent'")),
    )


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    phone_number_id: Mapped[str] = mapped_column(Text)
    participants: Mapped[list[str]] = mapped_column(ARRAY(Text))
    name: Mapped[str | None] = mapped_column(Text)
    last_activity_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime | None] = mapped_column(TZ)
    updated_at: Mapped[datetime | None] = mapped_column(TZ)
    last_synced_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (Index("ix_conversations_phone_number_id", "phone_number_id"),)


class PhoneNumberRow(Base):
    __tablename__ = "phone_numbers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    number: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class ApiRateSlotRow(Base):
    """The next free request slot per API key (hashed): one budget shared by every process."""

    __tablename__ = "api_rate_slots"

    key_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    next_slot_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class AlertLogRow(Base):
    """Alerts already sent, keyed so that the same failure emails once, not every tick."""

    __tablename__ = "alert_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alert_key: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


metadata = Base.metadata
