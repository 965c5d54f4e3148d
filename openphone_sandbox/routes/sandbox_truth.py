"""/_sandbox read-only hooks: connection facts, ground truth (all or per UTC day), webhook event
fates and delivery counters. Not part of OpenPhone; no auth, no rate limit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..truth import ground_truth, per_day
from ..util import parse_iso
from ..web import current_sandbox, hook_error
from ..webhooks import summarize

bp = Blueprint("sandbox_truth", __name__, url_prefix="/_sandbox")
bp.register_error_handler(ValueError, hook_error)
EVENT_FILTERS = {"fate": "fate", "type": "type", "eventId": "eventId", "messageId": "messageId", "target": "target"}


@bp.get("/info")
def info() -> Any:
    return current_sandbox().describe()


def _truth() -> list[dict[str, Any]]:
    """Ground truth filtered by createdAfter (>=), createdBefore (<) and phoneNumberId."""
    bounds = {}
    for name in ("createdAfter", "createdBefore"):
        raw = request.args.get(name)
        try:
            bounds[name] = parse_iso(raw) if raw else None
        except ValueError as exc:
            raise ValueError(f"{name} must be an ISO 8601 date-time, got {raw!r}") from exc
    return ground_truth(current_sandbox(), bounds["createdAfter"], bounds["createdBefore"],
                        request.args.get("phoneNumberId"))


@bp.get("/ground-truth")
def ground_truth_all() -> Any:
    msgs = _truth()
    return {"messages": msgs, "count": len(msgs), "lines": current_sandbox().describe()["lines"]}


@bp.get("/ground-truth/days")
def ground_truth_days() -> Any:
    msgs = _truth()
    return {"days": per_day(msgs), "count": len(msgs)}


@bp.get("/stats")
def stats() -> Any:
    sandbox = current_sandbox()
    out = sandbox.delivery.stats()
    with sandbox.lock:
        out["messages"] = len(sandbox.messages)
        out["conversations"] = len(sandbox.conversations)
    return out


@bp.get("/events")
def events() -> Any:
    wanted = {field: request.args[arg] for arg, field in EVENT_FILTERS.items() if request.args.get(arg)}
    recs = [r for r in current_sandbox().delivery.event_records()
            if all(r[field] == value for field, value in wanted.items())]
    return {"data": recs, "count": len(recs), "summary": summarize(recs)}


@bp.get("/deliveries/pending")
def pending() -> Any:
    return {"pending": current_sandbox().delivery.pending()}
