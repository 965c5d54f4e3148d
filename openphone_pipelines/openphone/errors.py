"""Typed errors for the OpenPhone client, so callers can classify failures (docs/design.md, rule 4).

OpenPhone documents a flat error envelope (`{message, code, status, docs, title, errors[], trace}`)
but gateway-level errors have been observed as `{"error": {message, key, trace}}`, and unknown
routes answer HTML (docs/openphone-api.md, 'Errors'). `OpenPhoneAPIError.from_response` accepts all three.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

_SNIPPET = 200


class OpenPhoneError(Exception):
    """Base class of every error raised by this package's client."""


class OpenPhoneResponseError(OpenPhoneError):
    """A 2xx answer we could not read (not JSON, wrong shape, or an object failing validation)."""


class OpenPhoneAPIError(OpenPhoneError):
    """OpenPhone answered with an error status; the envelope is parsed whatever its shape."""

    def __init__(
        self,
        status_code: int,
        *,
        message: str | None = None,
        code: str | None = None,
        title: str | None = None,
        docs: str | None = None,
        trace: str | None = None,
        key: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: str = "",
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.code = code
        self.title = title
        self.docs = docs
        self.trace = trace
        self.key = key
        self.errors = errors or []
        self.body = body
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        # Only the envelope's own words: `errors[].value` can echo a phone number, so it is left out.
        where = f" {self.method} {self.path}" if self.method and self.path else ""
        parts = [f"OpenPhone API{where} answered {self.status_code}"]
        if self.title:
            parts.append(f"{self.title}")
        if self.code:
            parts.append(f"(code {self.code})")
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        details = [
            f"{e.get('path')}: {e.get('message')}" if e.get("path") else str(e.get("message"))
            for e in self.errors
            if isinstance(e, dict) and e.get("message")
        ]
        if details:
            text += " [" + "; ".join(details) + "]"
        if self.trace:
            text += f" (trace {self.trace})"
        return text

    @classmethod
    def from_response(
        cls, response: httpx.Response, *, retry_after: float | None = None
    ) -> OpenPhoneAPIError:
        """Build the most specific subclass for `response`, parsing either envelope shape."""
        status = response.status_code
        error_cls: type[OpenPhoneAPIError]
        if status == 429:
            error_cls = OpenPhoneRateLimited
        elif status >= 500:
            error_cls = OpenPhoneServerError
        else:
            error_cls = OpenPhoneAPIError
        raw = response.text if response.content else ""
        fields = parse_error_envelope(raw)
        if not fields.get("message") and raw and not fields.get("_json"):
            # HTML or plain text: keep a short snippet so the error says something useful.
            fields["message"] = " ".join(raw.split())[:_SNIPPET]
        fields.pop("_json", None)
        try:
            request: httpx.Request | None = response.request
        except RuntimeError:  # a Response built by hand has no request
            request = None
        return error_cls(
            status,
            body=raw,
            method=request.method if request is not None else None,
            path=request.url.path if request is not None else None,
            retry_after=retry_after,
            **fields,
        )


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def parse_error_envelope(raw: str) -> dict[str, Any]:
    """Fields of an OpenPhone error body: flat or nested `error` shape; {} when not JSON."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    inner = data.get("error")
    if isinstance(inner, dict):
        data = {**data, **inner}
    elif isinstance(inner, str) and "message" not in data:
        data = {**data, "message": inner}
    errors = data.get("errors")
    return {
        "_json": True,
        "message": _str_or_none(data.get("message")),
        "code": _str_or_none(data.get("code")),
        "title": _str_or_none(data.get("title")) or _str_or_none(data.get("key")),
        "docs": _str_or_none(data.get("docs")),
        "trace": _str_or_none(data.get("trace")),
        "key": _str_or_none(data.get("key")),
        "errors": [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
    }


class OpenPhoneRateLimited(OpenPhoneAPIError):
    """429: over the 10 requests/second budget of this API key, after all retries."""


class OpenPhoneServerError(OpenPhoneAPIError):
    """5xx from OpenPhone, after all retries (or at once for a non-idempotent call)."""


class OpenPhoneTransportError(OpenPhoneError):
    """No usable HTTP answer: connection refused/reset, DNS, or a timeout."""


class SendOutcomeUnknown(OpenPhoneError):
    """POST /v1/messages met a timeout or a 5xx, so the text may already have gone out.

    The API has no idempotency key, so resending could text the customer twice. Look the message
    up instead (GET /v1/messages with `createdAfter` just before `attempted_at`, or wait for its
    `message.delivered` webhook). Phone numbers and content are kept as attributes, not in str().
    """

    def __init__(
        self,
        reason: str,
        *,
        attempted_at: datetime | None = None,
        from_: str | None = None,
        to: tuple[str, ...] = (),
        status_code: int | None = None,
    ) -> None:
        self.reason = reason
        self.attempted_at = attempted_at
        self.from_ = from_
        self.to = to
        self.status_code = status_code
        when = f" at {attempted_at.isoformat()}" if attempted_at is not None else ""
        super().__init__(
            f"send outcome unknown ({reason}){when}: the message may have been sent; "
            "look it up (list messages createdAfter the attempt, or await message.delivered) "
            "rather than resending"
        )
