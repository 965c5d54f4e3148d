"""Turning a stored webhook event into message rows: the one function the receiver, the retry
sweep and manual replay all call, so the three paths can never disagree (the sweep itself is in
openphone_pipelines/recovery.py).

Order of truth: the raw event is already committed (webhook_events). Processing runs in its own
transaction (upsert + outcome together). A failure is recorded in a second transaction and
classified: permanent (the payload itself is bad) goes dead at once, anything else is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from openphone_pipelines.openphone.probes import probe_nonce
from openphone_pipelines.openphone.webhooks import PayloadError, parse_webhook_event
from openphone_pipelines.store import health_checks, retry_queue
from openphone_pipelines.store.messages import upsert_messages
from openphone_pipelines.store.webhook_events import EventRecord, load_event, mark_event

log = logging.getLogger(__name__)

STANDARD_WEBHOOKS = "standard-webhooks"


@dataclass(frozen=True)
class ProcessingResult:
    outcome: str  # processed | probe | ignored | failed
    error_class: str | None = None  # transient | permanent, when failed
    error: str | None = None
    queue_status: str | None = None  # pending | dead, when failed


def classify_error(exc: BaseException) -> str:
    """Permanent when retrying cannot help (the payload is bad); transient otherwise."""
    if isinstance(exc, PayloadError | ValidationError | UnicodeDecodeError):
        return "permanent"
    return "transient"


def _describe(exc: BaseException) -> str:
    # Never echo payload text into errors: the class and a short, payload-free reason only.
    if isinstance(exc, ValidationError):
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors()[:5])
        return f"ValidationError: invalid fields {fields}"
    if isinstance(exc, OperationalError | DBAPIError):
        return f"{type(exc).__name__}: {str(exc.orig).splitlines()[0] if exc.orig else 'database error'}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def apply_event(engine: Engine, webhook_event_id: int, *, resolves_queue_id: int | None = None,
                record: EventRecord | None = None) -> str:
    """Parse and apply one stored event in one transaction; raises on failure. Returns the outcome.

    `resolves_queue_id` marks that retry-queue row resolved in the same transaction, so a row is
    resolved exactly when its event was applied. `record` is the stored event when the caller
    (the receiver) already holds it, saving a read."""
    with engine.begin() as conn:
        record = record or load_event(conn, webhook_event_id)
        delivery_id = record.event_id if record.signature_scheme == STANDARD_WEBHOOKS else None
        event = parse_webhook_event(record.raw_body, delivery_id)
        message = event.message
        if message is None:
            outcome = "ignored"  # a known non-message event (calls, contacts): stored, nothing to apply
        else:
            # One statement records a probe, recognised by its marker or by the message id its send
            # returned; a marked message is synthetic even if its probe row is unknown here.
            nonce = probe_nonce(message.text)
            matched = health_checks.mark_probe_received(conn, nonce=nonce, message_id=message.id)
            if matched or nonce is not None:
                outcome = "probe"  # synthetic traffic never reaches the messages table
            else:
                upsert_messages(conn, [message], via="webhook")
                outcome = "processed"
        mark_event(conn, webhook_event_id, outcome)
        if resolves_queue_id is not None:
            retry_queue.mark_resolved(conn, resolves_queue_id)
    return outcome


def process_webhook_event(engine: Engine, webhook_event_id: int, *,
                          record: EventRecord | None = None) -> ProcessingResult:
    """First processing of a freshly stored event; a failure is queued (pending or dead)."""
    try:
        return ProcessingResult(apply_event(engine, webhook_event_id, record=record))
    except Exception as exc:  # every failure is recorded, none escapes unclassified
        error_class, error = classify_error(exc), _describe(exc)
        log.warning("webhook event %s failed (%s): %s", webhook_event_id, error_class, error)
        with engine.begin() as conn:
            mark_event(conn, webhook_event_id, "failed", error)
            status = retry_queue.enqueue_failure(conn, webhook_event_id, error_class=error_class, error=error)
        return ProcessingResult("failed", error_class, error, status)


def retry_claimed(engine: Engine, claim: retry_queue.ClaimedRetry) -> ProcessingResult:
    """Reprocess one claimed queue row: resolved on success, backed off or dead on failure."""
    try:
        outcome = apply_event(engine, claim.webhook_event_id, resolves_queue_id=claim.id)
    except Exception as exc:
        error_class, error = classify_error(exc), _describe(exc)
        with engine.begin() as conn:
            mark_event(conn, claim.webhook_event_id, "failed", error)
            status = retry_queue.mark_retry_failed(conn, claim.id, error_class=error_class, error=error)
        return ProcessingResult("failed", error_class, error, status)
    return ProcessingResult(outcome)
