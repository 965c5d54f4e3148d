"""/v1/messages: list one conversation's messages, get one, and send (202, no idempotency).

Listing needs phoneNumberId + the conversation's full participant set + maxResults, newest first,
with createdAfter/createdBefore edges as switched in SandboxConfig and the deprecated `since`
acting as createdBefore (docs/openphone-api.md, 'Listing messages' and 'Window edges').
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from flask import Blueprint, g, request

from ..envelope import ApiError, error_response, found, param_error
from ..params import list_arg, list_body, max_results, page, time_arg, window
from ..state import Message
from ..traffic import Line, conversation_id
from ..util import is_e164
from ..web import current_sandbox, json_response

bp = Blueprint("messages", __name__, url_prefix="/v1/messages")


def _participants() -> list[str]:
    participants = list_arg("participants")
    if not participants:
        raise param_error("participants", "is required and must not be empty", participants, "array")
    for p in participants:
        if not is_e164(p):
            raise param_error("participants", "items must be E.164 phone numbers", p, "array")
    return sorted(set(participants))


@bp.get("")
def list_messages() -> Any:
    sandbox = current_sandbox()
    cfg = sandbox.config
    pid = request.args.get("phoneNumberId")
    if not pid:
        raise param_error("phoneNumberId", "is required")
    if not pid.startswith("PN"):
        raise param_error("phoneNumberId", "must match pattern ^PN(.*)$", pid)
    participants = _participants()
    limit = max_results()
    w = window("createdAfter", "createdBefore", cfg.created_after_inclusive, cfg.created_before_inclusive)
    since = time_arg("since")  # deprecated; behaves as createdBefore (documented trap)
    if since is not None:
        w = dataclasses.replace(w, before=since if w.before is None else min(w.before, since))
    user = request.args.get("userId")
    found(sandbox.lines.get(pid), "Phone number")
    with sandbox.lock:
        conv = sandbox.conversations.get(conversation_id(cfg.seed, pid, participants))
        msgs: list[Message] = []
        if conv is not None and participants == conv.participants:
            msgs = [m for m in (sandbox.messages[mid] for _, mid in reversed(conv.messages))
                    if w.contains(m.created_ms) and (not user or m.user_id == user)]
        filters = json.dumps([pid, participants, w.after, w.before, user])
        chunk, nxt = page(msgs, Message.sort_key, limit, filters)
        return list_body([m.to_api() for m in chunk], len(msgs), nxt)


@bp.get("/<mid>")
def get_message(mid: str) -> Any:
    sandbox = current_sandbox()
    with sandbox.lock:
        return {"data": found(sandbox.messages.get(mid), "Message").to_api()}


def _sender(body: dict[str, Any]) -> Line:
    sender_ref = body.get("from") or body.get("phoneNumberId")
    if not isinstance(sender_ref, str) or not sender_ref:
        raise param_error("from", "is required", sender_ref)
    if not (sender_ref.startswith("PN") or is_e164(sender_ref)):
        raise param_error("from", "must be a PN id or an E.164 number", sender_ref)
    line = current_sandbox().resolve_line(sender_ref)
    if line is None:
        raise param_error("from", "is not a phone number in this workspace", sender_ref)
    return line


def _recipients(body: dict[str, Any], line: Line) -> list[str]:
    to = body.get("to")
    max_to = 10 if current_sandbox().config.allow_group_send else 1
    if not isinstance(to, list) or not to:
        raise param_error("to", "is required and must be a non-empty array", to, "array")
    if len(to) > max_to:
        raise param_error("to", f"must have at most {max_to} item(s)", to, "array")
    for t in to:
        if not is_e164(t):
            raise param_error("to", "items must be E.164 phone numbers", t, "array")
    if len(set(to)) != len(to) or line.number in to:
        raise param_error("to", "must be distinct numbers other than the sender", to, "array")
    return list(to)


def _send_request() -> tuple[str, Line, list[str], str | None]:
    """(content, line, to, userId) of a valid send, or ApiError."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request: body must be a JSON object")
    content = body.get("content")
    if not isinstance(content, str):
        raise param_error("content", "is required and must be a string", content)
    if not 1 <= len(content) <= 1600:
        raise param_error("content", "must be 1-1600 characters long", len(content))
    if not content.strip():
        raise param_error("content", "must match pattern .*\\S.*", content)
    line = _sender(body)
    to = _recipients(body, line)
    user_id = body.get("userId")
    if user_id is not None:
        if not isinstance(user_id, str) or not user_id.startswith("US"):
            raise param_error("userId", "must match pattern ^US(.*)$", user_id)
        if not any(u["id"] == user_id for u in line.users):
            raise ApiError(403, "Not Phone Number User", sub="02", title="Not Phone Number User")
    inbox = body.get("setInboxStatus")
    if inbox is not None and inbox != "done":
        raise param_error("setInboxStatus", "must be 'done'", inbox)
    return content, line, to, user_id


@bp.post("")
def send_message() -> Any:
    sandbox = current_sandbox()
    content, line, to, user_id = _send_request()
    if getattr(g, "fault_5xx", False):
        if sandbox.api_fault(sandbox.config.send_commit_on_5xx):
            sandbox.create_outgoing(line, to, content, user_id, origin="api")
        return error_response(500, "Something went wrong on our end")
    msg = sandbox.create_outgoing(line, to, content, user_id, origin="api")
    with sandbox.lock:
        data = msg.to_api()
    return json_response({"data": data}, 202)
