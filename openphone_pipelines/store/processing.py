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
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from openphone_pipelines.openphone.probes import probe_nonce
from openphone_pipelines.openphone.webhooks import PayloadError, parse_webhook_event, storable_text
from openphone_pipelines.store import health_checks, retry_queue
from openphone_pipelines.store.messages import stored_direction, upsert_messages
from openphone_pipelines.store.webhook_events import EventRecord, load_event, mark_event

log = logging.getLogger(__name__)

STANDARD_WEBHOOKS = "standard-webhooks"


@dataclass(frozen=True)
class ProcessingResult:
    outcome: str  # processed | probe | ignored | failed
    error_class: str | None = None  # transient | permanent, when failed
    error: str | None = None
    queue_status: str | None = None  # pending | dead, when failed


# SQLSTATE classes and codes that say the event itself is at fault: retrying the same bytes can only
# fail the same way (class 22 data exception, 54 program limit such as "index row too large",
# class 23 integrity violation except a unique violation, which a concurrent writer can cause).
_PERMANENT_SQLSTATE_CLASSES = ("22", "54")
_TRANSIENT_INTEGRITY = "23505"
# Python errors a payload causes while it is parsed, validated or adapted for the database.
_PERMANENT_ERRORS = (PayloadError, ValidationError, UnicodeError, RecursionError, OverflowError, ValueError)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) if orig is not None else None


def classify_error(exc: BaseException) -> str:
    """Permanent when retrying cannot help (the event itself is at fault); transient otherwise.

    The one place that decides: the receiver, the retry sweep and replay all queue failures by it.
    Lock and statement timeouts, lost connections and every unknown error (a bug a fix may cure)
    are transient."""
    if isinstance(exc, DataError):
        return "permanent"  # class 22, or refused by the driver itself (a NUL in text)
    if isinstance(exc, DBAPIError):
        state = _sqlstate(exc) or ""
        if state.startswith(_PERMANENT_SQLSTATE_CLASSES):
            return "permanent"
        if state.startswith("23") and state != _TRANSIENT_INTEGRITY:
            return "permanent"
        return "transient"
    if isinstance(exc, _PERMANENT_ERRORS):
        return "permanent"
    return "transient"


def database_unavailable(exc: BaseException) -> bool:
    """True only when the database itself could not be reached or could not serve in time: a lost
    or refused connection, a pool with no free connection, a statement or lock timeout. Anything
    else the database refused was caused by what we asked it to store (and is not a 503): psycopg
    files "index row too large" (54000) under OperationalError too, so the SQLSTATE decides."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return isinstance(exc, OperationalError | InterfaceError) and classify_error(exc) == "transient"


def _describe(exc: BaseException) -> str:
    # Never echo payload text into errors: the class and a short, payload-free reason only.
    if isinstance(exc, ValidationError):
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors()[:5])
        reason = f"ValidationError: invalid fields {fields}"
    elif isinstance(exc, DBAPIError):
        state = _sqlstate(exc)
        first = str(exc.orig).splitlines()[0] if exc.orig else "database error"
        reason = f"{type(exc.orig or exc).__name__}{f' ({state})' if state else ''}: {first}"
    elif isinstance(exc, RecursionError):
        reason = "RecursionError: payload nests too deeply"
    else:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    return storable_text(reason, 500)


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
            # One statement records a probe: the message id its send returned, or its nonce on the
            # probe line pair while the probe is outstanding. The marker alone makes nothing a probe:
            # a customer text quoting it is a customer message (docs/design.md, rule 7).
            matched = health_checks.mark_probe_received(
                conn, nonce=probe_nonce(message.text), message_id=message.id, to_numbers=message.to_numbers,
                from_number=message.from_number, line_id=message.phone_number_id, direction=message.direction)
            if matched:
                outcome = "probe"  # synthetic traffic never reaches the messages table
            else:
                # Direction belongs to the message: it is written once, from the event type, and an
                # event implying the other one is an anomaly to look at, never a silent rewrite.
                existing = stored_direction(conn, message.id)
                if existing is not None and existing != message.direction:
                    raise PayloadError("direction contradicts event type of the stored message")
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
