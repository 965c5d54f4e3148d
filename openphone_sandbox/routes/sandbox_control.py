"""/_sandbox control hooks: runtime settings (faults, API behaviour, window edges, live rate), the
sandbox clock, and draining deliveries, so tests and a soak harness steer a running sandbox over HTTP."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..web import current_sandbox, hook_error, json_body

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")
bp.register_error_handler(ValueError, hook_error)



@bp.get("/faults")
def get_faults() -> Any:
    sandbox = current_sandbox()
    with sandbox.lock:
        return sandbox.config.runtime_settings()


@bp.post("/faults")
def set_faults() -> Any:
    """Change any runtime setting; all-or-nothing, answers with every setting's new value."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return current_sandbox().apply_settings(body)


@bp.post("/flush")
def flush() -> Any:
    """Release any reorder buffer and wait (up to `timeout` s) until no delivery is pending."""
    delivery = current_sandbox().delivery
    delivery.flush_reorder()
    idle = delivery.wait_idle(float(json_body().get("timeout", 10)))
    return {"idle": idle, "pending": delivery.pending()}


@bp.post("/settle")
def settle() -> Any:
    return {"settled": current_sandbox().settle()}


@bp.post("/advance")
def advance() -> Any:
    sandbox = current_sandbox()
    try:
        seconds = float(json_body().get("seconds", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError("seconds must be a number") from exc
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    return {"ran": sandbox.advance(seconds), "offsetSeconds": sandbox.offset_s}
