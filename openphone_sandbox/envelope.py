"""The v1 error envelope: the documented flat object, or the nested shape seen live on gateway errors.

See docs/openphone-api.md, 'Errors'. `code` is seven digits: two for the resource (from the path),
two for a sub-code, then the HTTP status.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from flask import Response, request

from .web import current_sandbox, json_response

DOCS = "https://www.openphone.com/docs"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          429: "Too Many Requests", 500: "Unknown", 503: "Service Unavailable"}
NESTED_KEYS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
RESOURCE_CODES = {"messages": "02", "webhooks": "03", "phone-numbers": "04", "conversations": "10"}
_traces = itertools.count(10**12)
T = TypeVar("T")


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


def found(value: T | None, what: str) -> T:
    """value, or the 404 envelope (sub-code 01) naming what was not found."""
    if value is None:
        raise ApiError(404, f"{what} not found", sub="01")
    return value


def param_error(path: str, message: str, value: Any = None, typ: str = "string") -> ApiError:
    """A 400 naming the offending parameter in errors[], as the documented envelope does."""
    return ApiError(400, f"Invalid request: {path} {message}",
                    errors=[{"path": f"/{path}", "message": message, "value": value, "schema": {"type": typ}}])


def envelope(shape: str, status: int, message: str, resource: str = "00", errors: list | None = None,
             sub: str = "00", title: str | None = None) -> dict[str, Any]:
    """The error body in the configured shape ("flat" or "nested")."""
    trace = str(next(_traces))
    if shape == "nested":
        return {"error": {"message": message, "key": NESTED_KEYS.get(status, "Error"), "trace": trace}}
    body: dict[str, Any] = {"message": message, "code": f"{resource}{sub}{status}", "status": status,
                            "docs": DOCS, "title": title or TITLES.get(status, "Error"), "trace": trace}
    if errors:
        body["errors"] = errors
    return body


def _resource_code() -> str:
    parts = request.path.split("/")
    return RESOURCE_CODES.get(parts[2] if len(parts) > 2 else "", "00")


def error_response(status: int, message: str, errors: list | None = None, headers: dict | None = None,
                   sub: str = "00", title: str | None = None) -> Response:
    """An error envelope for the current request, in the sandbox's configured shape."""
    shape = current_sandbox().config.error_shape
    return json_response(envelope(shape, status, message, _resource_code(), errors, sub, title), status, headers)


def render_api_error(exc: ApiError) -> Response:
    """Flask error handler for ApiError."""
    return error_response(exc.status, exc.message, exc.errors, sub=exc.sub, title=exc.title)
