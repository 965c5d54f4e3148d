"""Glue between Flask and the Sandbox: where a view finds its Sandbox, and JSON responses with a status."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, request

from .state import Sandbox

EXTENSION = "openphone_sandbox"


def bind(app: Flask, sandbox: Sandbox) -> None:
    """Attach the Sandbox to the app so blueprints (shared by every app) can reach it."""
    app.extensions[EXTENSION] = sandbox


def current_sandbox() -> Sandbox:
    """The Sandbox behind the app serving this request."""
    return current_app.extensions[EXTENSION]


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """obj as JSON (compact, keys in insertion order) with the given status and headers."""
    resp = current_app.json.response(obj)
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def hook_error(exc: ValueError) -> Response:
    """The /_sandbox hooks' answer to bad input: 400 with the reason (their inputs raise ValueError)."""
    return json_response({"message": str(exc), "status": 400}, 400)


def json_body() -> dict[str, Any]:
    """A hook's JSON object body ({} when there is none); ValueError for any other JSON."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body
