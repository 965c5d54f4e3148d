"""Ground truth: every message the sandbox holds with the status the API will finally show, and
per-UTC-day counts, so a test or soak harness can compare the product's copy against the provider's.

The window here is always createdAfter <= createdAt < createdBefore, whatever the API's edge
switches say: the truth does not move with the behaviour under test.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .state import Message, Sandbox
from .util import iso


def ground_truth(sandbox: Sandbox, created_after: int | None = None, created_before: int | None = None,
                 phone_number_id: str | None = None) -> list[dict[str, Any]]:
    """Every message in the window, oldest first, with its final status and where it came from.

    lineRole is the role of the message's own line; senderLineRole the role of the sandbox line that
    sent it (null when an outside number did), so health probes are the messages whose
    senderLineRole is "probe".
    """
    with sandbox.lock:
        roles = {ln.number: ln.role for ln in sandbox.world.lines}
        out = []
        for m in sorted(sandbox.messages.values(), key=Message.sort_key):
            if created_after is not None and m.created_ms < created_after:
                continue
            if created_before is not None and m.created_ms >= created_before:
                continue
            if phone_number_id and m.line_id != phone_number_id:
                continue
            conv = sandbox.conversations[m.conversation_id]
            out.append({"id": m.id, "phoneNumberId": m.line_id, "conversationId": m.conversation_id,
                        "participants": list(conv.participants), "direction": m.direction,
                        "from": m.from_, "to": list(m.to), "text": m.text, "userId": m.user_id,
                        "status": m.final_status, "currentStatus": m.status,
                        "createdAt": iso(m.created_ms), "origin": m.origin,
                        "lineRole": sandbox.lines[m.line_id].role, "senderLineRole": roles.get(m.from_)})
        return out


def per_day(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts per UTC day of createdAt: total, by final status, direction, line role and origin."""
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        days[m["createdAt"][:10]].append(m)
    return [{"day": day, "count": len(msgs),
             "byStatus": dict(Counter(m["status"] for m in msgs)),
             "byDirection": dict(Counter(m["direction"] for m in msgs)),
             "byLineRole": dict(Counter(m["lineRole"] for m in msgs)),
             "byOrigin": dict(Counter(m["origin"] for m in msgs))}
            for day, msgs in sorted(days.items())]
