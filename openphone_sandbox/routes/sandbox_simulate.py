"""/_sandbox/simulate hooks: messages nobody sent through the API (a texter writing in, a user
sending from the app), any number at once, at chosen times, in one chosen conversation.

Shared body fields: `count` (1..100000), `createdAt` (ISO; default now, with the normal lifecycle)
with `spacingMs` between consecutive messages, `text` (any text; " #i" is appended when count > 1),
`webhooks` (false = create without any webhook: a deterministic "missed" message).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..state import Message
from ..traffic import Line
from ..util import is_e164, parse_iso
from ..web import current_sandbox, hook_error, json_body, json_response

bp = Blueprint("sandbox_simulate", __name__, url_prefix="/_sandbox/simulate")
bp.register_error_handler(ValueError, hook_error)
MAX_COUNT = 100_000



def _numbers(body: dict[str, Any], name: str) -> list[str]:
    """An E.164 number or list of them under `name` (empty when absent)."""
    value = body.get(name) or []
    numbers = [value] if isinstance(value, str) else value
    if not isinstance(numbers, list) or not all(is_e164(n) for n in numbers):
        raise ValueError(f"{name} must be E.164 number(s), got {value!r}")
    return list(numbers)


def _times(body: dict[str, Any]) -> list[int | None]:
    """One creation time per message: createdAt + i * spacingMs, or None (= now) for each."""
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an integer within 1..{MAX_COUNT}, got {count!r}")
    created, spacing = body.get("createdAt"), body.get("spacingMs")
    if created is None:
        if spacing is not None:
            raise ValueError("spacingMs needs createdAt")
        return [None] * count
    try:
        start = parse_iso(str(created))
    except ValueError as exc:
        raise ValueError(f"createdAt must be an ISO 8601 date-time, got {created!r}") from exc
    spacing = 0 if spacing is None else spacing
    if isinstance(spacing, bool) or not isinstance(spacing, int) or spacing < 0:
        raise ValueError(f"spacingMs must be an integer >= 0, got {spacing!r}")
    return [start + i * spacing for i in range(count)]


def _texts(body: dict[str, Any], default: str, count: int) -> list[str]:
    text = str(body.get("text") or default)
    return [text] if count == 1 else [f"{text} #{i + 1}" for i in range(count)]


def _webhooks(body: dict[str, Any]) -> bool:
    value = body.get("webhooks", True)
    if not isinstance(value, bool):
        raise ValueError(f"webhooks must be true or false, got {value!r}")
    return value


def _line(ref: Any) -> Line:
    line = current_sandbox().resolve_line(str(ref or current_sandbox().world.main.id))
    if line is None:
        raise ValueError(f"{ref!r} is not a sandbox line (give its PN id or number)")
    return line


def _created(msgs: list[Message]) -> Any:
    return json_response({"data": msgs[0].to_api(), "ids": [m.id for m in msgs], "count": len(msgs)}, 201)


def _senders(body: dict[str, Any]) -> tuple[list[str], list[str] | None]:
    """(senders, in turn; the conversation's participants, or None to use `others`)."""
    participants = _numbers(body, "participants")
    sender = body.get("from")
    if sender is not None and not is_e164(sender):
        raise ValueError(f"from must be an E.164 number, got {sender!r}")
    if participants and body.get("others"):
        raise ValueError("give participants or others, not both")
    if sender and participants and sender not in participants:
        raise ValueError("from must be one of participants")
    if sender:
        return [sender], participants or None
    return participants or [next(iter(current_sandbox().world.contacts))], participants or None


@bp.post("/inbound-message")
def inbound() -> Any:
    """Texts into a line (`phoneNumberId` or `to`; default the main line) from `from`, or from each
    of `participants` in turn (a group thread), or from the first contact; `others` = extra group members."""
    sandbox = current_sandbox()
    body = json_body()
    line = _line(body.get("phoneNumberId") or body.get("to"))
    senders, participants = _senders(body)
    others = _numbers(body, "others")
    times = _times(body)
    texts = _texts(body, "Hello from the sandbox", len(times))
    webhooks = _webhooks(body)
    with sandbox.lock:
        msgs = []
        for i, (text, at) in enumerate(zip(texts, times, strict=True)):
            sender = senders[i % len(senders)]
            group = [p for p in participants if p != sender] if participants else others
            msgs.append(sandbox.create_incoming(line, sender, text, others=group, created_ms=at,
                                                origin="simulated", webhooks=webhooks))
        return _created(msgs)


@bp.post("/outbound-message")
def outbound() -> Any:
    """Texts a user sends from the app (not the API) from line `from` to `to`: the API's lifecycle
    and webhooks; with createdAt, already final (`finalStatus`, default drawn) like history."""
    sandbox = current_sandbox()
    body = json_body()
    line = _line(body.get("from") or body.get("phoneNumberId"))
    to = _numbers(body, "to")
    if not to:
        raise ValueError("to must be one or more E.164 numbers")
    final = body.get("finalStatus")
    if final not in (None, "delivered", "undelivered"):
        raise ValueError("finalStatus must be delivered or undelivered")
    times = _times(body)
    texts = _texts(body, "Sent from the app", len(times))
    webhooks = _webhooks(body)
    with sandbox.lock:
        msgs = [sandbox.create_outgoing(line, to, text, None, final_status=final, created_ms=at,
                                        origin="simulated", webhooks=webhooks)
                for text, at in zip(texts, times, strict=True)]
        return _created(msgs)
