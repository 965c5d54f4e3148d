"""Flask app: the OpenPhone v1 REST surface plus /_sandbox test hooks.

Behaviour follows reference/openphone-api.md: raw-key auth (no Bearer), required parameters
with 400 envelopes, keyset pagination ending in a null nextPageToken, 202 on send, 10 rps per
key with 429, and an approximate totalItems. Unknown routes answer Flask's HTML 404, as the
real gateway reportedly does.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from typing import Any

from flask import Flask, Response, g, request

from .state import Conversation, Message, Sandbox
from .util import is_e164, iso, parse_iso

DOCS = "https://www.openphone.com/docs/mdx/api-reference/introduction"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          429: "Too Many Requests", 500: "Unknown", 503: "Service Unavailable"}
NESTED_KEYS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
RESOURCE_CODES = {"messages": "02", "webhooks": "03", "phone-numbers": "04", "conversations": "10"}


class ApiError(Exception):
    """Raised inside views; rendered as the configured error envelope."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None,
                 sub: str = "00", title: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.sub = sub
        self.title = title


def _param_error(path: str, message: str, value: Any = None, typ: str = "string") -> ApiError:
    return ApiError(400, f"Invalid request: {path} {message}",
                    errors=[{"path": f"/{path}", "message": message, "value": value, "schema": {"type": typ}}])


class TokenBucket:
    """Per-key token bucket: burst of `rate` requests, refilled at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> tuple[bool, float]:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0.0
        return False, (1 - self.tokens) / self.rate


def _encode_token(key: tuple[int, str], filters: str) -> str:
    raw = json.dumps({"t": key[0], "i": key[1], "f": filters}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, filters: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        if data["f"] != filters:
            raise ValueError("filters changed")
        return int(data["t"]), str(data["i"])
    except Exception as exc:
        raise _param_error("pageToken", "is not a valid page token for this query", token) from exc


def _approx_total(n: int) -> int:
    """totalItems is documented as inaccurate: undercount by 10% so loops on it lose data."""
    return n - n // 10


def create_app(sandbox: Sandbox) -> Flask:
    """Build the Flask app bound to one Sandbox."""
    app = Flask("openphone_sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    cfg = sandbox.config
    buckets: dict[str, TokenBucket] = {}
    bucket_lock = threading.Lock()
    trace_counter = iter(range(10**12, 10**13))

    def envelope(status: int, message: str, resource: str = "00", errors: list | None = None,
                 sub: str = "00", title: str | None = None) -> dict[str, Any]:
        trace = str(next(trace_counter))
        if cfg.error_shape == "nested":
            return {"error": {"message": message, "key": NESTED_KEYS.get(status, "Error"), "trace": trace}}
        body: dict[str, Any] = {"message": message, "code": f"{resource}{sub}{status}", "status": status,
                                "docs": DOCS, "title": title or TITLES.get(status, "Error"), "trace": trace}
        if errors:
            body["errors"] = errors
        return body

    def resource_code() -> str:
        parts = request.path.split("/")
        return RESOURCE_CODES.get(parts[2] if len(parts) > 2 else "", "00")

    def error(status: int, message: str, errors: list | None = None, headers: dict | None = None,
              sub: str = "00", title: str | None = None) -> Response:
        resp = app.json.response(envelope(status, message, resource_code(), errors, sub, title))
        resp.status_code = status
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error(exc.status, exc.message, exc.errors, sub=exc.sub, title=exc.title)

    @app.before_request
    def _gate() -> Response | None:
        if not request.path.startswith("/v1/"):
            return None
        key = request.headers.get("Authorization")
        if not key:
            return error(401, "Missing authorization header")
        valid = {cfg.api_key, *cfg.extra_api_keys}
        if key not in valid:  # includes "Bearer <key>": the API wants the raw key
            return error(401, "Unauthorized")
        with bucket_lock:
            bucket = buckets.get(key)
            if bucket is None or bucket.rate != cfg.rate_limit:  # rate changed at runtime
                bucket = buckets[key] = TokenBucket(cfg.rate_limit)
            ok, wait = bucket.take()
            remaining = int(bucket.tokens)
        g.rl_headers = {"ratelimit-policy": f'"per-second"; q={int(cfg.rate_limit)}; w=1',
                        "ratelimit": f'"per-second"; r={remaining}; t=1'}
        if not ok:
            headers = dict(g.rl_headers)
            if cfg.retry_after:
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return error(429, "Too many requests, please slow down", headers=headers)
        if sandbox.api_fault(cfg.slow_rate):
            time.sleep(cfg.slow_delay_ms / 1000.0)
        if sandbox.api_fault(cfg.error_5xx_rate):
            if request.method == "POST" and request.path == "/v1/messages":
                g.fault_5xx = True  # the view decides whether the text still goes out
                return None
            return error(500, "Something went wrong on our end")
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        for k, v in getattr(g, "rl_headers", {}).items():
            resp.headers.setdefault(k, v)
        return resp

    # ------------------------------------------------------------------ helpers
    def max_results() -> int:
        raw = request.args.get("maxResults")
        if raw is None or raw == "":
            raise _param_error("maxResults", "is required", None, "integer")
        try:
            n = int(raw)
        except ValueError as exc:
            raise _param_error("maxResults", "must be an integer", raw, "integer") from exc
        if not 1 <= n <= 100:
            raise _param_error("maxResults", "must be between 1 and 100", n, "integer")
        return n

    def time_arg(name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_iso(raw)
        except ValueError as exc:
            raise _param_error(name, "must be an ISO 8601 date-time", raw) from exc

    def list_arg(name: str) -> list[str]:
        return request.args.getlist(name) + request.args.getlist(name + "[]")

    def page(items: list[Any], key_of: Any, limit: int, filters: str) -> tuple[list[Any], str | None]:
        """Keyset pagination over items sorted by key_of descending: no loss or repeat under inserts."""
        token = request.args.get("pageToken")
        if token:
            after = _decode_token(token, filters)
            items = [it for it in items if key_of(it) < after]
        chunk = items[:limit]
        nxt = _encode_token(key_of(chunk[-1]), filters) if len(items) > limit else None
        return chunk, nxt

    # ------------------------------------------------------------------ phone numbers
    @app.get("/v1/phone-numbers")
    def phone_numbers() -> Any:
        user = request.args.get("userId")
        with sandbox.lock:
            data = [ln.to_api() for ln in sandbox.world.lines
                    if not user or any(u["id"] == user for u in ln.users)]
        return {"data": data}

    @app.get("/v1/phone-numbers/<pid>")
    def phone_number(pid: str) -> Any:
        line = sandbox.lines.get(pid)
        if line is None:
            raise ApiError(404, "Phone number not found", sub="01")
        return {"data": line.to_api()}

    # ------------------------------------------------------------------ conversations
    @app.get("/v1/conversations")
    def conversations() -> Any:
        limit = max_results()
        refs = list_arg("phoneNumbers") or ([request.args["phoneNumber"]] if request.args.get("phoneNumber") else [])
        if len(refs) > 100:
            raise _param_error("phoneNumbers", "must have at most 100 items", refs, "array")
        line_ids: set[str] = set()
        for ref in refs:
            if not (ref.startswith("PN") or is_e164(ref)):
                raise _param_error("phoneNumbers", "items must be a PN id or an E.164 number", ref, "array")
            line = sandbox.resolve_line(ref)
            if line is not None:
                line_ids.add(line.id)
        bounds = {n: time_arg(n) for n in ("createdAfter", "createdBefore", "updatedAfter", "updatedBefore")}
        user = request.args.get("userId")
        with sandbox.lock:
            convs: list[Conversation] = []
            for c in sandbox.conversations.values():
                if refs and c.line_id not in line_ids:
                    continue
                if user and not any(u["id"] == user for u in sandbox.lines[c.line_id].users):
                    continue
                if bounds["createdAfter"] is not None and c.created_ms < bounds["createdAfter"]:
                    continue
                if bounds["createdBefore"] is not None and c.created_ms >= bounds["createdBefore"]:
                    continue
                if bounds["updatedAfter"] is not None and c.last_activity_ms < bounds["updatedAfter"]:
                    continue
                if bounds["updatedBefore"] is not None and c.last_activity_ms >= bounds["updatedBefore"]:
                    continue
                convs.append(c)
            convs.sort(key=lambda c: (c.last_activity_ms, c.id), reverse=True)
            filters = json.dumps([sorted(line_ids), user, bounds], sort_keys=True)
            total = len(convs)
            chunk, nxt = page(convs, lambda c: (c.last_activity_ms, c.id), limit, filters)
            data = [c.to_api() for c in chunk]
        return {"data": data, "totalItems": _approx_total(total), "nextPageToken": nxt}

    # ------------------------------------------------------------------ messages
    @app.get("/v1/messages")
    def list_messages() -> Any:
        pid = request.args.get("phoneNumberId")
        if not pid:
            raise _param_error("phoneNumberId", "is required")
        if not pid.startswith("PN"):
            raise _param_error("phoneNumberId", "must match pattern ^PN(.*)$", pid)
        participants = list_arg("participants")
        if not participants:
            raise _param_error("participants", "is required and must not be empty", participants, "array")
        for p in participants:
            if not is_e164(p):
                raise _param_error("participants", "items must be E.164 phone numbers", p, "array")
        limit = max_results()
        after = time_arg("createdAfter")
        before = time_arg("createdBefore")
        since = time_arg("since")  # deprecated; behaves as createdBefore (documented trap)
        if since is not None:
            before = since if before is None else min(before, since)
        user = request.args.get("userId")
        line = sandbox.lines.get(pid)
        if line is None:
            raise ApiError(404, "Phone number not found", sub="01")
        from .traffic import conversation_id

        with sandbox.lock:
            conv = sandbox.conversations.get(conversation_id(sandbox.config.seed, pid, sorted(set(participants))))
            msgs: list[Message] = []
            if conv is not None and sorted(set(participants)) == conv.participants:
                for _, mid in reversed(conv.messages):
                    m = sandbox.messages[mid]
                    if after is not None and m.created_ms < after:
                        continue
                    if before is not None and m.created_ms >= before:
                        continue
                    if user and m.user_id != user:
                        continue
                    msgs.append(m)
            filters = json.dumps([pid, sorted(set(participants)), after, before, user])
            chunk, nxt = page(msgs, lambda m: (m.created_ms, m.id), limit, filters)
            data = [m.to_api() for m in chunk]
        return {"data": data, "totalItems": _approx_total(len(msgs)), "nextPageToken": nxt}

    @app.get("/v1/messages/<mid>")
    def get_message(mid: str) -> Any:
        with sandbox.lock:
            m = sandbox.messages.get(mid)
            if m is None:
                raise ApiError(404, "Message not found", sub="01")
            return {"data": m.to_api()}

    @app.post("/v1/messages")
    def send_message() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid request: body must be a JSON object")
        content = body.get("content")
        if not isinstance(content, str):
            raise _param_error("content", "is required and must be a string", content)
        if not 1 <= len(content) <= 1600:
            raise _param_error("content", "must be 1-1600 characters long", len(content))
        if not content.strip():
            raise _param_error("content", "must match pattern .*\\S.*", content)
        sender_ref = body.get("from") or body.get("phoneNumberId")
        if not isinstance(sender_ref, str) or not sender_ref:
            raise _param_error("from", "is required", sender_ref)
        if not (sender_ref.startswith("PN") or is_e164(sender_ref)):
            raise _param_error("from", "must be a PN id or an E.164 number", sender_ref)
        line = sandbox.resolve_line(sender_ref)
        if line is None:
            raise _param_error("from", "is not a phone number in this workspace", sender_ref)
        to = body.get("to")
        max_to = 10 if cfg.allow_group_send else 1
        if not isinstance(to, list) or not to:
            raise _param_error("to", "is required and must be a non-empty array", to, "array")
        if len(to) > max_to:
            raise _param_error("to", f"must have at most {max_to} item(s)", to, "array")
        for t in to:
            if not is_e164(t):
                raise _param_error("to", "items must be E.164 phone numbers", t, "array")
        if len(set(to)) != len(to) or line.number in to:
            raise _param_error("to", "must be distinct numbers other than the sender", to, "array")
        user_id = body.get("userId")
        if user_id is not None:
            if not isinstance(user_id, str) or not user_id.startswith("US"):
                raise _param_error("userId", "must match pattern ^US(.*)$", user_id)
            if not any(u["id"] == user_id for u in line.users):
                raise ApiError(403, "Not Phone Number User", sub="02", title="Not Phone Number User")
        inbox = body.get("setInboxStatus")
        if inbox is not None and inbox != "done":
            raise _param_error("setInboxStatus", "must be 'done'", inbox)
        if getattr(g, "fault_5xx", False):
            if sandbox.api_fault(cfg.send_commit_on_5xx):
                sandbox.create_outgoing(line, list(to), content, user_id)
            return error(500, "Something went wrong on our end")
        msg = sandbox.create_outgoing(line, list(to), content, user_id)
        with sandbox.lock:
            data = msg.to_api()
        return data_response({"data": data}, 202)

    # ------------------------------------------------------------------ webhooks
    @app.post("/v1/webhooks/messages")
    def create_webhook() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid request: body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _param_error("url", "is required and must be an http(s) URL", url)
        events = body.get("events")
        if (not isinstance(events, list) or not events
                or any(e not in ("message.received", "message.delivered") for e in events)):
            raise _param_error("events", "must be a non-empty array of message.received, message.delivered",
                               events, "array")
        rids = body.get("resourceIds") or ["*"]
        if not isinstance(rids, list) or any(not (r == "*" or (isinstance(r, str) and r.startswith("PN")))
                                             for r in rids):
            raise _param_error("resourceIds", "items must be PN ids or '*'", rids, "array")
        status = body.get("status", "enabled")
        if status not in ("enabled", "disabled"):
            raise _param_error("status", "must be enabled or disabled", status)
        label = body.get("label")
        wh = sandbox.register_webhook(url, events, rids, label, status, body.get("userId"))
        return data_response({"data": wh}, 201)

    @app.get("/v1/webhooks")
    def list_webhooks() -> Any:
        with sandbox.lock:
            return {"data": list(sandbox.webhooks.values())}

    @app.get("/v1/webhooks/<wid>")
    def get_webhook(wid: str) -> Any:
        with sandbox.lock:
            wh = sandbox.webhooks.get(wid)
            if wh is None:
                raise ApiError(404, "Webhook not found", sub="01")
            return {"data": wh}

    @app.delete("/v1/webhooks/<wid>")
    def delete_webhook(wid: str) -> Any:
        with sandbox.lock:
            if sandbox.webhooks.pop(wid, None) is None:
                raise ApiError(404, "Webhook not found", sub="01")
        return Response(status=204)

    def data_response(obj: Any, status: int) -> Response:
        resp = app.json.response(obj)
        resp.status_code = status
        return resp

    # ------------------------------------------------------------------ test hooks
    from .hooks import register_hooks

    register_hooks(app, sandbox)
    return app


__all__ = ["create_app", "iso"]
