"""/v1/webhooks: register message webhooks through the API (201, with their signing `key`), list,
get and delete them (docs/openphone-api.md, 'Webhook delivery')."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ..envelope import ApiError, found, param_error
from ..web import current_sandbox, json_response
from ..webhooks import MESSAGE_EVENTS

bp = Blueprint("webhook_admin", __name__, url_prefix="/v1/webhooks")


def _resource_ids(body: dict[str, Any]) -> list[str]:
    rids = body.get("resourceIds") or ["*"]
    if not isinstance(rids, list) or any(not (r == "*" or (isinstance(r, str) and r.startswith("PN")))
                                         for r in rids):
        raise param_error("resourceIds", "items must be PN ids or '*'", rids, "array")
    return rids


@bp.post("/messages")
def create_webhook() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request: body must be a JSON object")
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise param_error("url", "is required and must be an http(s) URL", url)
    events = body.get("events")
    if not isinstance(events, list) or not events or any(e not in MESSAGE_EVENTS for e in events):
        raise param_error("events", "must be a non-empty array of message.received, message.delivered",
                          events, "array")
    rids = _resource_ids(body)
    status = body.get("status", "enabled")
    if status not in ("enabled", "disabled"):
        raise param_error("status", "must be enabled or disabled", status)
    wh = current_sandbox().register_webhook(url, events, rids, body.get("label"), status, body.get("userId"))
    return json_response({"data": wh}, 201)


@bp.get("")
def list_webhooks() -> Any:
    sandbox = current_sandbox()
    with sandbox.lock:
        return {"data": list(sandbox.webhooks.values())}


@bp.get("/<wid>")
def get_webhook(wid: str) -> Any:
    sandbox = current_sandbox()
    with sandbox.lock:
        return {"data": found(sandbox.webhooks.get(wid), "Webhook")}


@bp.delete("/<wid>")
def delete_webhook(wid: str) -> Any:
    sandbox = current_sandbox()
    with sandbox.lock:
        found(sandbox.webhooks.pop(wid, None), "Webhook")
    return Response(status=204)
