"""/_sandbox/* test hooks: ground truth, traffic injection, stats, faults, clock control.

These are not part of OpenPhone's API; they exist so tests can prove parity and inject
situations without sleeping. They are neither authenticated nor rate-limited.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from .state import Sandbox
from .util import is_e164, parse_iso

# SandboxConfig fields that POST /_sandbox/faults may change besides FaultConfig.
RUNTIME_CONFIG = {"error_5xx_rate": float, "slow_rate": float, "slow_delay_ms": float,
                  "send_commit_on_5xx": float, "undelivered_rate": float, "rate_limit": float,
                  "retry_after": bool, "sent_after_s": float, "delivered_after_s": float}


def _bad(message: str) -> tuple[dict[str, Any], int]:
    return {"message": message, "status": 400}, 400


def register_hooks(app: Flask, sandbox: Sandbox) -> None:
    """Attach the /_sandbox routes to app."""

    @app.get("/_sandbox/info")
    def info() -> Any:
        return sandbox.describe()

    @app.get("/_sandbox/ground-truth")
    def ground_truth() -> Any:
        try:
            after = parse_iso(request.args["createdAfter"]) if request.args.get("createdAfter") else None
            before = parse_iso(request.args["createdBefore"]) if request.args.get("createdBefore") else None
        except ValueError as exc:
            return _bad(str(exc))
        msgs = sandbox.ground_truth(after, before, request.args.get("phoneNumberId"))
        return {"messages": msgs, "count": len(msgs), "lines": sandbox.describe()["lines"]}

    @app.post("/_sandbox/simulate/inbound-message")
    def simulate_inbound() -> Any:
        body = request.get_json(silent=True) or {}
        line = sandbox.resolve_line(str(body.get("phoneNumberId") or body.get("to") or sandbox.world.main.id))
        if line is None:
            return _bad("to/phoneNumberId must be a sandbox line")
        sender = body.get("from") or next(iter(sandbox.world.contacts))
        if not is_e164(sender):
            return _bad("from must be an E.164 number")
        others = body.get("others") or []
        count = int(body.get("count", 1))
        text = str(body.get("text") or "Hello from the sandbox")
        ids = []
        with sandbox.lock:
            for i in range(count):
                t = text if count == 1 else f"{text} #{i + 1}"
                ids.append(sandbox.create_incoming(line, sender, t, others=list(others)).id)
            data = sandbox.messages[ids[0]].to_api() if ids else None
        return {"data": data, "ids": ids, "count": len(ids)}, 201

    @app.post("/_sandbox/simulate/outbound-message")
    def simulate_outbound() -> Any:
        """A message a user sends from the app (not the API): same lifecycle and webhooks."""
        body = request.get_json(silent=True) or {}
        line = sandbox.resolve_line(str(body.get("from") or body.get("phoneNumberId") or sandbox.world.main.id))
        to = body.get("to")
        if isinstance(to, str):
            to = [to]
        if line is None or not to or not all(is_e164(t) for t in to):
            return _bad("from must be a sandbox line and to E.164 number(s)")
        final = body.get("finalStatus")
        if final not in (None, "delivered", "undelivered"):
            return _bad("finalStatus must be delivered or undelivered")
        msg = sandbox.create_outgoing(line, list(to), str(body.get("text") or "Sent from the app"),
                                      None, final_status=final)
        with sandbox.lock:
            return {"data": msg.to_api()}, 201

    @app.get("/_sandbox/stats")
    def stats() -> Any:
        out = sandbox.delivery.stats()
        with sandbox.lock:
            out["messages"] = len(sandbox.messages)
            out["conversations"] = len(sandbox.conversations)
        return out

    @app.get("/_sandbox/events")
    def events() -> Any:
        fate = request.args.get("fate")
        typ = request.args.get("type")
        recs = [r for r in sandbox.delivery.event_records()
                if (not fate or r["fate"] == fate) and (not typ or r["type"] == typ)]
        return {"data": recs, "count": len(recs)}

    @app.get("/_sandbox/deliveries/pending")
    def pending() -> Any:
        return {"pending": sandbox.delivery.pending()}

    @app.post("/_sandbox/flush")
    def flush() -> Any:
        """Release any reorder buffer and wait (up to `timeout` s) until no delivery is pending."""
        body = request.get_json(silent=True) or {}
        sandbox.delivery.flush_reorder()
        idle = sandbox.delivery.wait_idle(float(body.get("timeout", 10)))
        return {"idle": idle, "pending": sandbox.delivery.pending()}

    @app.get("/_sandbox/faults")
    def get_faults() -> Any:
        cfg = sandbox.config
        out = cfg.faults.to_dict()
        out.update({k: getattr(cfg, k) for k in RUNTIME_CONFIG})
        return out

    @app.post("/_sandbox/faults")
    def set_faults() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        cfg = sandbox.config
        fault_part = {k: v for k, v in body.items() if k not in RUNTIME_CONFIG and k != "receiver_down_for"}
        try:
            if "receiver_down_for" in body:  # convenience: receiver down from now for N seconds
                import time

                now = time.time()
                fault_part["receiver_down"] = [*cfg.faults.receiver_down,
                                               (now, now + float(body["receiver_down_for"]))]
            cfg.faults.update(fault_part)
            for k, typ in RUNTIME_CONFIG.items():
                if k in body:
                    setattr(cfg, k, typ(body[k]))
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return get_faults()

    @app.post("/_sandbox/settle")
    def settle() -> Any:
        return {"settled": sandbox.settle()}

    @app.post("/_sandbox/advance")
    def advance() -> Any:
        body = request.get_json(silent=True) or {}
        try:
            seconds = float(body.get("seconds", 0))
        except (TypeError, ValueError):
            return _bad("seconds must be a number")
        if seconds < 0:
            return _bad("seconds must be >= 0")
        return {"ran": sandbox.advance(seconds), "offsetSeconds": sandbox.offset_s}
