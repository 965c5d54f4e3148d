"""Query parameters of the v1 list endpoints: the required maxResults, ISO date-times, arrays, time
windows with switchable edges, and keyset pages that end in a null nextPageToken.

See docs/openphone-api.md, 'Listing messages' and 'Window edges'.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import request

from .envelope import param_error
from .util import parse_iso

T = TypeVar("T")


def max_results() -> int:
    """maxResults: required (despite its documented default), an integer within 1..100."""
    raw = request.args.get("maxResults")
    if raw is None or raw == "":
        raise param_error("maxResults", "is required", None, "integer")
    try:
        n = int(raw)
    except ValueError as exc:
        raise param_error("maxResults", "must be an integer", raw, "integer") from exc
    if not 1 <= n <= 100:
        raise param_error("maxResults", "must be between 1 and 100", n, "integer")
    return n


def time_arg(name: str) -> int | None:
    """An optional ISO 8601 date-time parameter as epoch ms."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw)
    except ValueError as exc:
        raise param_error(name, "must be an ISO 8601 date-time", raw) from exc


def list_arg(name: str) -> list[str]:
    """An array parameter sent either as repeated `name=` or as `name[]=` (both seen in public code)."""
    return request.args.getlist(name) + request.args.getlist(name + "[]")


@dataclass(frozen=True)
class Window:
    """A time filter whose edges may each include or exclude a record exactly on them."""

    after: int | None = None
    before: int | None = None
    after_inclusive: bool = True
    before_inclusive: bool = False

    def contains(self, ms: int) -> bool:
        if self.after is not None and (ms < self.after if self.after_inclusive else ms <= self.after):
            return False
        return self.before is None or (ms <= self.before if self.before_inclusive else ms < self.before)


def window(after_name: str, before_name: str, after_inclusive: bool, before_inclusive: bool) -> Window:
    """The Window given by two request parameters and the sandbox's edge switches for them."""
    return Window(time_arg(after_name), time_arg(before_name), after_inclusive, before_inclusive)


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
        raise param_error("pageToken", "is not a valid page token for this query", token) from exc


def page(items: list[T], key_of: Callable[[T], tuple[int, str]], limit: int,
         filters: str) -> tuple[list[T], str | None]:
    """Keyset pagination over items sorted by key_of descending: no loss or repeat under inserts.

    The token is bound to `filters`, so reusing it with another query is a 400.
    """
    token = request.args.get("pageToken")
    if token:
        after = _decode_token(token, filters)
        items = [it for it in items if key_of(it) < after]
    chunk = items[:limit]
    nxt = _encode_token(key_of(chunk[-1]), filters) if len(items) > limit else None
    return chunk, nxt


def list_body(data: list[Any], total: int, next_token: str | None) -> dict[str, Any]:
    """The list envelope; totalItems is documented as inaccurate, so undercount by 10%: loops on it lose data."""
    return {"data": data, "totalItems": total - total // 10, "nextPageToken": next_token}
