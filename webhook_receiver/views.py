"""The receiver's routes: verify, persist, acknowledge; then process through the shared store code.

Order per delivery (docs/design.md, rules 1 and 2):
1. raw bytes, at most RECEIVER_MAX_BODY_BYTES however they arrive (413 above, never truncated),
   never parsed before the signature verifies (401, nothing stored);
2. commit the raw event (ON CONFLICT DO NOTHING): the database unreachable means 503, never 2xx;
   an event the database cannot index as sent is stored under a hashed key, never refused;
3. process it in the same request with `process_webhook_event`, the function the retry sweep
   and replay use; any failure is queued there (transient pending, permanent dead), and the
   answer is still 200 because the raw event is safe.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import Engine, text

from openphone_pipelines.openphone.signatures import SignatureError, SignatureLimits, verify_webhook
from openphone_pipelines.openphone.webhooks import EventEnvelope, body_digest, event_envelope
from openphone_pipelines.store.db import retry_on_stale_connection
from openphone_pipelines.store.processing import database_unavailable, process_webhook_event
from openphone_pipelines.store.webhook_events import EventRecord, StoredEvent, record_webhook_event

from .config import ReceiverConfig
from .metrics import ReceiverMetrics

log = logging.getLogger("webhook_receiver")
bp = Blueprint("receiver", __name__)

EXTENSION_KEY = "openphone_receiver"
_ENDPOINT_LABELS = {
    "receiver.openphone_webhook": "webhook",
    "receiver.healthz": "healthz",
    "receiver.metrics": "metrics",
}


@dataclass
class ReceiverState:
    """What the routes share inside one app (one per server worker)."""

    config: ReceiverConfig
    engine: Engine
    metrics: ReceiverMetrics
    # The inbox insert is one statement: in autocommit it is its own durable transaction without
    # the BEGIN and COMMIT round trips (same pool, same synchronous_commit).
    autocommit_engine: Engine | None = None
    signature_limits: SignatureLimits = field(init=False)

    def __post_init__(self) -> None:
        if self.autocommit_engine is None:
            self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.signature_limits = SignatureLimits(self.config.tolerance_seconds, self.config.signature_max_entries,
                                                self.config.signature_max_header_bytes)


def state() -> ReceiverState:
    return current_app.extensions[EXTENSION_KEY]


def signature_reason(reason: str) -> str:
    """A low-cardinality metric label for a SignatureError reason."""
    lowered = reason.lower()
    for needle, label in (("missing", "missing"), ("too old", "stale"), ("future", "future"),
                          ("mismatch", "mismatch")):
        if needle in lowered:
            return label
    return "malformed"


def _elapsed_ms() -> float:
    t0 = g.get("receiver_t0")
    return round((time.perf_counter() - t0) * 1000, 2) if t0 is not None else -1.0


def _unavailable(st: ReceiverState) -> Response:
    resp = jsonify(error="database unavailable, retry later")
    resp.status_code = 503
    resp.headers["Retry-After"] = str(st.config.retry_after_seconds)
    return resp


@bp.before_app_request
def _start_timer() -> None:
    g.receiver_t0 = time.perf_counter()


@bp.after_app_request
def _observe_latency(response: Response) -> Response:
    t0 = g.get("receiver_t0")
    if t0 is not None:
        label = _ENDPOINT_LABELS.get(request.endpoint or "", "other")
        state().metrics.request_latency.labels(label).observe(time.perf_counter() - t0)
    return response


def read_capped_body(limit: int) -> bytes | None:
    """The raw body, or None when it is over `limit` bytes. A declared Content-Length over the cap is
    refused unread; a chunked body is read up to `limit + 1` bytes and refused there, never cut."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(65536, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return None if total > limit else b"".join(chunks)


def _too_large(st: ReceiverState) -> Response:
    st.metrics.deliveries.labels("too_large").inc()
    log.warning("webhook refused: body too large", extra={"fields": {"limit": st.config.max_body_bytes}})
    resp = jsonify(error="payload too large")
    resp.status_code = 413
    resp.headers["Connection"] = "close"  # the rest of the body is not read
    return resp


def store_delivery(st: ReceiverState, body: bytes, scheme: str, envelope: EventEnvelope) -> StoredEvent:
    """Commit the raw event. If the database refuses the event's own labels for a reason other than
    being unreachable, the delivery is stored anyway under the hash of its bytes, without labels:
    a signed event is never refused because of what it contains (the raw body keeps everything)."""
    def insert(env: EventEnvelope) -> StoredEvent:
        return retry_on_stale_connection(lambda: record_webhook_event(
            st.autocommit_engine, event_id=env.event_id, raw_body=body, signature_scheme=scheme,
            event_type=env.event_type, api_version=env.api_version))

    try:
        return insert(envelope)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        log.warning("webhook labels refused by the database; stored under its body hash",
                    extra={"fields": {"event_id": envelope.event_id, "error": type(exc).__name__}})
        return insert(EventEnvelope(body_digest(body), None, None))


@bp.post("/webhooks/openphone")
def openphone_webhook() -> Any:
    st = state()
    metrics = st.metrics
    body = read_capped_body(st.config.max_body_bytes)
    if body is None:
        return _too_large(st)

    try:
        verified = verify_webhook(request.headers, body, st.config.secrets, limits=st.signature_limits)
    except SignatureError as exc:
        reason = signature_reason(exc.reason)
        metrics.signature_failures.labels(reason).inc()
        metrics.deliveries.labels("bad_signature").inc()
        log.warning("webhook signature rejected", extra={"fields": {"reason": reason, "detail": exc.reason}})
        return jsonify(error="invalid signature"), 401

    envelope = event_envelope(body, verified.delivery_id)
    try:
        stored = store_delivery(st, body, verified.scheme, envelope)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        metrics.deliveries.labels("db_unavailable").inc()
        log.error("webhook not stored: database unavailable",
                  extra={"fields": {"event_id": envelope.event_id, "error": type(exc).__name__}})
        return _unavailable(st)

    event_id = stored.event_id
    fields: dict[str, Any] = {"event_id": event_id, "event_type": envelope.event_type, "scheme": verified.scheme,
                              "webhook_event_id": stored.id}
    if not stored.created:
        metrics.deliveries.labels("duplicate").inc()
        log.info("webhook duplicate", extra={"fields": {**fields, "status": stored.processing_status}})
        return jsonify(status="duplicate", outcome=stored.processing_status), 200

    metrics.deliveries.labels("stored").inc()
    try:
        record = EventRecord(stored.id, event_id, verified.scheme, body)
        result = process_webhook_event(st.engine, stored.id, record=record)
    except Exception as exc:  # noqa: BLE001 - even recording the failure failed (DB gone mid-request)
        # The raw event is committed with processing_status 'pending'; the retry sweep adopts it.
        metrics.processing.labels("deferred").inc()
        metrics.processing_failures.labels("transient").inc()
        log.error("webhook stored, processing deferred",
                  extra={"fields": {**fields, "error": type(exc).__name__}})
        return jsonify(status="stored", outcome="deferred"), 200

    metrics.processing.labels(result.outcome).inc()
    if result.outcome == "failed":
        metrics.processing_failures.labels(result.error_class or "transient").inc()
        log.warning("webhook stored, processing failed",
                    extra={"fields": {**fields, "error_class": result.error_class,
                                      "queue_status": result.queue_status, "error": result.error}})
        return jsonify(status="stored", outcome="failed", error_class=result.error_class,
                       queue_status=result.queue_status), 200
    log.info("webhook stored", extra={"fields": {**fields, "outcome": result.outcome, "ms": _elapsed_ms()}})
    return jsonify(status="stored", outcome=result.outcome), 200


@bp.get("/healthz")
def healthz() -> Any:
    """200 only when the database answers, judged by the same rule as the webhook path's 503, so a
    load balancer stops routing to a receiver that would refuse deliveries."""
    st = state()
    try:
        with st.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("healthz: database unavailable", extra={"fields": {"error": type(exc).__name__}})
        resp = jsonify(status="unavailable", database="unreachable")
        resp.status_code = 503
        resp.headers["Retry-After"] = str(st.config.retry_after_seconds)
        return resp
    return jsonify(status="ok", database="ok"), 200


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text; behind `Authorization: Bearer <RECEIVER_METRICS_TOKEN>` when that is set."""
    from prometheus_client import CONTENT_TYPE_LATEST

    st = state()
    token = st.config.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            resp = jsonify(error="metrics need the bearer token (RECEIVER_METRICS_TOKEN)")
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
    return Response(st.metrics.render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)
