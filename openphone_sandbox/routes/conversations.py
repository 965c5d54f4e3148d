"""GET /v1/conversations: filter by line, user, created and updated windows; most recent activity first.

`updatedAt` is the last activity, so updatedAfter/updatedBefore filter on lastActivityAt. Each
window edge follows its switch in SandboxConfig (docs/openphone-api.md, 'Window edges').
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request

from ..envelope import param_error
from ..params import list_arg, list_body, max_results, page, window
from ..state import Conversation
from ..util import is_e164
from ..web import current_sandbox

bp = Blueprint("conversations", __name__, url_prefix="/v1/conversations")


def _line_filter() -> tuple[list[str], set[str]]:
    """(the phoneNumbers refs as given, the ids of the sandbox lines they name)."""
    sandbox = current_sandbox()
    refs = list_arg("phoneNumbers") or ([request.args["phoneNumber"]] if request.args.get("phoneNumber") else [])
    if len(refs) > 100:
        raise param_error("phoneNumbers", "must have at most 100 items", refs, "array")
    line_ids: set[str] = set()
    for ref in refs:
        if not (ref.startswith("PN") or is_e164(ref)):
            raise param_error("phoneNumbers", "items must be a PN id or an E.164 number", ref, "array")
        line = sandbox.resolve_line(ref)
        if line is not None:
            line_ids.add(line.id)
    return refs, line_ids


@bp.get("")
def conversations() -> Any:
    sandbox = current_sandbox()
    cfg = sandbox.config
    limit = max_results()
    refs, line_ids = _line_filter()
    created = window("createdAfter", "createdBefore", cfg.created_after_inclusive, cfg.created_before_inclusive)
    updated = window("updatedAfter", "updatedBefore", cfg.updated_after_inclusive, cfg.updated_before_inclusive)
    user = request.args.get("userId")
    with sandbox.lock:
        convs: list[Conversation] = [
            c for c in sandbox.conversations.values()
            if (not refs or c.line_id in line_ids)
            and (not user or any(u["id"] == user for u in sandbox.lines[c.line_id].users))
            and created.contains(c.created_ms) and updated.contains(c.last_activity_ms)]
        convs.sort(key=lambda c: (c.last_activity_ms, c.id), reverse=True)
        bounds = {"createdAfter": created.after, "createdBefore": created.before,
                  "updatedAfter": updated.after, "updatedBefore": updated.before}
        filters = json.dumps([sorted(line_ids), user, bounds], sort_keys=True)
        chunk, nxt = page(convs, lambda c: (c.last_activity_ms, c.id), limit, filters)
        return list_body([c.to_api() for c in chunk], len(convs), nxt)
