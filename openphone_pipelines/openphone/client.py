"""OpenPhone v1 REST client: the API as docs/openphone-api.md records it, not as remembered.

Why it looks the way it does (sections of docs/openphone-api.md in quotes):
- `Authorization: <raw key>`, no Bearer; paths under `/v1` ('Hosts and authentication').
- Lists page on `nextPageToken` until null, never on `totalItems`, with no silent cap ('Pagination').
- List-messages needs `phoneNumberId` + `participants` + `maxResults`; we check them before sending
  and encode `+` as `%2B` ourselves ('Listing messages').
- Every attempt draws from one rate budget; 429/5xx/network errors back off with full jitter and
  honour `Retry-After` ('Rate limit'; docs/design.md, rule 6).
- `POST /v1/messages` has no idempotency key, so it is never retried once the request may have
  reached OpenPhone: a timeout or 5xx raises `SendOutcomeUnknown` ('Sending a message').
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from .errors import (
    OpenPhoneAPIError,
    OpenPhoneResponseError,
    OpenPhoneServerError,
    OpenPhoneTransportError,
    SendOutcomeUnknown,
)
from .models import Conversation, Message, PhoneNumber
from .ratelimit import RateLimiter, process_limiter

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openphone.com"
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
MAX_PAGE_SIZE = 100
MAX_CONTENT_LENGTH = 1600
MAX_RETRY_AFTER = 300.0  # a sanity bound: never sleep longer than this on one Retry-After

# Failures where the request provably never reached the server, so even a send may be retried.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Params = Sequence[tuple[str, str]]


class ClientStats:
    """Thread-safe counters of what the client did, for run metadata and benchmarks."""

    FIELDS = ("requests", "pages", "retries", "rate_limited", "server_errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def format_datetime(value: datetime, *, round_up: bool = False) -> str:
    """ISO-8601 UTC with `Z`; sub-millisecond parts round down (or up for an upper bound).

    Naive datetimes are refused: guessing their zone could shift a reconciliation window by hours.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {value!r}")
    value = value.astimezone(UTC)
    extra = value.microsecond % 1000
    if extra:
        value = value - timedelta(microseconds=extra)
        if round_up:
            value += timedelta(milliseconds=1)
    spec = "seconds" if value.microsecond == 0 else "milliseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _encode_query(params: Params) -> str:
    # quote(safe="") turns `+` into %2B (a raw `+` would reach OpenPhone as a space: docs/openphone-api.md,
    # 'Listing messages').
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def _require_e164(value: Any, what: str) -> str:
    if not isinstance(value, str) or not E164_RE.match(value):
        raise ValueError(f"{what} must be an E.164 number like +15555550100, got {value!r}")
    return value


def _require_sequence(value: Any, what: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{what} must be a list of strings, not {type(value).__name__}")
    return list(value)


def _require_page_size(page_size: Any) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {page_size!r}")
    return page_size


class OpenPhoneClient:
    """Synchronous, thread-safe client for the OpenPhone v1 API (one httpx connection pool)."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        rate_limiter: RateLimiter | None = None,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        on_request: Callable[[str, str, int], None] | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ValueError("api_key is empty (set OPENPHONE_API_KEY)")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        base = base_url.rstrip("/")
        if base.endswith("/v1"):  # tolerate a base URL copied with the version segment
            base = base[: -len("/v1")]
        self.base_url = base
        if rate_limiter is None:  # the process's budget at OPENPHONE_RATE_LIMIT_RPS
            from openphone_pipelines.settings import load_settings

            rate_limiter = process_limiter(load_settings().rate_limit_rps)
        self.rate_limiter: RateLimiter = rate_limiter
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.on_request = on_request
        self.stats = ClientStats()
        self._random = random.Random()
        self._http = httpx.Client(
            base_url=base,
            headers={
                "Authorization": api_key.strip(),
                "Accept": "application/json",
                "User-Agent": "openphone-pipelines/0.1",
            },
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenPhoneClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenPhoneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport and retries

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return self._random.uniform(0, ceiling)

    def _notify(self, method: str, path: str, status: int) -> None:
        if self.on_request is not None:
            try:
                self.on_request(method, path, status)
            except Exception:  # a metrics hook must never break a request
                logger.exception("on_request hook failed")

    def _attempt(self, method: str, path: str, query: str, json_body: Any) -> httpx.Response:
        """One rate-limited HTTP attempt; transport errors propagate as httpx exceptions."""
        self.rate_limiter.acquire()
        url = f"{path}?{query}" if query else path
        self.stats.incr("requests")
        logger.debug("OpenPhone %s %s", method, url)
        try:
            response = self._http.request(method, url, json=json_body)
        except httpx.TransportError:
            self._notify(method, path, 0)
            raise
        self._notify(method, path, response.status_code)
        if response.status_code == 429:
            self.stats.incr("rate_limited")
        elif response.status_code >= 500:
            self.stats.incr("server_errors")
        return response

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params = (),
        json_body: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise a typed error.

        Idempotent calls retry 429, 5xx and any transport error. Non-idempotent ones retry only
        429 and failures where the request never left (connect errors), and otherwise raise at once.
        """
        query = _encode_query(params)
        attempt = 0
        while True:
            try:
                response = self._attempt(method, path, query, json_body)
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, _NOT_SENT_ERRORS)
                if not retryable or attempt >= self.max_retries:
                    raise OpenPhoneTransportError(
                        f"{method} {path} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff(attempt)
                logger.warning(
                    "OpenPhone %s %s: %s; retry %d/%d in %.2fs",
                    method,
                    path,
                    type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                error = OpenPhoneAPIError.from_response(response, retry_after=retry_after)
                retryable = status == 429 or (status >= 500 and idempotent)
                if not retryable or attempt >= self.max_retries:
                    raise error
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                logger.warning(
                    "OpenPhone %s %s answered %d; retry %d/%d in %.2fs",
                    method,
                    path,
                    status,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            attempt += 1
            self.stats.incr("retries")
            if delay > 0:
                time.sleep(delay)

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise OpenPhoneResponseError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code} with a body that is not JSON"
            ) from exc
        if not isinstance(data, dict):
            raise OpenPhoneResponseError(
                f"{response.request.method} {response.request.url.path} answered a JSON "
                f"{type(data).__name__}, expected an object"
            )
        return data

    @staticmethod
    def _validate(model: Any, item: Any, where: str) -> Any:
        try:
            return model.model_validate(item)
        except ValidationError as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            raise OpenPhoneResponseError(
                f"{where}: {model.__name__} {item_id!r} failed validation: {exc.error_count()} error(s): "
                + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from exc

    def _data_list(self, response: httpx.Response, path: str) -> list[Any]:
        data = self._json(response).get("data")
        if not isinstance(data, list):
            raise OpenPhoneResponseError(f"GET {path}: `data` is not a list")
        return data

    def _iter_pages(self, path: str, params: Params, model: Any) -> Iterator[list[Any]]:
        """Follow `nextPageToken` until null; a token seen twice raises instead of looping."""
        seen: set[str] = set()
        token: str | None = None
        while True:
            page_params = list(params) + ([("pageToken", token)] if token else [])
            response = self._request("GET", path, params=page_params)
            body = self._json(response)
            items = body.get("data")
            if not isinstance(items, list):
                raise OpenPhoneResponseError(f"GET {path}: `data` is not a list")
            self.stats.incr("pages")
            yield [self._validate(model, item, f"GET {path}") for item in items]
            next_token = body.get("nextPageToken")
            if next_token is None or next_token == "":
                return
            if not isinstance(next_token, str):
                raise OpenPhoneResponseError(f"GET {path}: nextPageToken is not a string")
            if next_token in seen or next_token == token:
                raise OpenPhoneResponseError(
                    f"GET {path}: nextPageToken repeated after {len(seen) + 1} pages; "
                    "stopping instead of looping forever"
                )
            seen.add(next_token)
            token = next_token

    # ---------------------------------------------------------------- endpoints

    def list_phone_numbers(self, *, user_id: str | None = None) -> list[PhoneNumber]:
        """GET /v1/phone-numbers (not paginated)."""
        path = "/v1/phone-numbers"
        params = [("userId", user_id)] if user_id else []
        response = self._request("GET", path, params=params)
        self.stats.incr("pages")
        return [self._validate(PhoneNumber, item, f"GET {path}") for item in self._data_list(response, path)]

    def iter_conversation_pages(
        self,
        *,
        phone_numbers: Sequence[str] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[list[Conversation]]:
        """GET /v1/conversations, one list per page. Arguments are checked before any request."""
        params: list[tuple[str, str]] = []
        if phone_numbers is not None:
            numbers = _require_sequence(phone_numbers, "phone_numbers")
            if not 1 <= len(numbers) <= 100:
                raise ValueError(f"phone_numbers must hold 1 to 100 items, got {len(numbers)}")
            for number in numbers:
                if not (isinstance(number, str) and (number.startswith("PN") or E164_RE.match(number))):
                    raise ValueError(f"phone_numbers items must be PN… ids or E.164, got {number!r}")
                params.append(("phoneNumbers", number))
        for name, value, up in (
            ("updatedAfter", updated_after, False),
            ("updatedBefore", updated_before, True),
            ("createdAfter", created_after, False),
            ("createdBefore", created_before, True),
        ):
            if value is not None:
                params.append((name, format_datetime(value, round_up=up)))
        params.append(("maxResults", str(_require_page_size(page_size))))
        return self._iter_pages("/v1/conversations", params, Conversation)

    def iter_message_pages(
        self,
        *,
        phone_number_id: str,
        participants: Sequence[str],
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[list[Message]]:
        """GET /v1/messages for one (line, participant set), one list per page.

        The three required parameters are checked here, eagerly, so a bad call fails before any
        request instead of as a 400 from OpenPhone.
        """
        if not isinstance(phone_number_id, str) or not phone_number_id.startswith("PN"):
            raise ValueError(f"phone_number_id must be an OpenPhone number id (PN…), got {phone_number_id!r}")
        people = _require_sequence(participants, "participants")
        if not people:
            raise ValueError("participants must name at least one E.164 number (the other party)")
        params: list[tuple[str, str]] = [("phoneNumberId", phone_number_id)]
        for person in people:
            params.append(("participants", _require_e164(person, "participants items")))
        if created_after is not None:
            params.append(("createdAfter", format_datetime(created_after)))
        if created_before is not None:
            params.append(("createdBefore", format_datetime(created_before, round_up=True)))
        params.append(("maxResults", str(_require_page_size(page_size))))
        return self._iter_pages("/v1/messages", params, Message)

    def get_message(self, message_id: str) -> Message:
        """GET /v1/messages/{id}: the current status of one message (used to poll sends)."""
        if not isinstance(message_id, str) or not message_id.strip():
            raise ValueError(f"message_id must be a non-empty string, got {message_id!r}")
        path = f"/v1/messages/{quote(message_id, safe='')}"
        response = self._request("GET", path)
        return self._validate(Message, self._json(response).get("data"), f"GET {path}")

    def send_message(
        self,
        *,
        from_: str,
        to: Sequence[str],
        content: str,
        user_id: str | None = None,
    ) -> Message:
        """POST /v1/messages; 202 returns the queued Message.

        Retried only when OpenPhone surely did not act: 429, or a connection that never opened.
        A timeout or 5xx raises `SendOutcomeUnknown` at once: look the message up, don't resend.
        """
        if not isinstance(from_, str) or not (from_.startswith("PN") or E164_RE.match(from_)):
            raise ValueError(f"from_ must be a PN… id or an E.164 number, got {from_!r}")
        recipients = _require_sequence(to, "to")
        if not recipients:
            raise ValueError("to must name at least one E.164 number")
        for number in recipients:
            _require_e164(number, "to items")
        if not isinstance(content, str) or not content.strip():
            raise ValueError("content must contain a non-whitespace character")
        if len(content) > MAX_CONTENT_LENGTH:
            raise ValueError(f"content is {len(content)} characters; OpenPhone allows {MAX_CONTENT_LENGTH}")
        if user_id is not None and not (isinstance(user_id, str) and user_id.startswith("US")):
            raise ValueError(f"user_id must be a US… id, got {user_id!r}")
        body: dict[str, Any] = {"content": content, "from": from_, "to": recipients}
        if user_id is not None:
            body["userId"] = user_id
        path = "/v1/messages"
        attempted_at = datetime.now(UTC)
        context = {"attempted_at": attempted_at, "from_": from_, "to": tuple(recipients)}
        try:
            response = self._request("POST", path, json_body=body, idempotent=False)
        except OpenPhoneServerError as exc:
            raise SendOutcomeUnknown(
                f"OpenPhone answered {exc.status_code}", status_code=exc.status_code, **context
            ) from exc
        except OpenPhoneTransportError as exc:
            cause = exc.__cause__
            if isinstance(cause, _NOT_SENT_ERRORS):
                raise  # the request never left this machine: the outcome is known (not sent)
            raise SendOutcomeUnknown(
                f"{type(cause).__name__ if cause else 'transport error'}", **context
            ) from exc
        if response.status_code != 202:
            logger.info("OpenPhone POST %s answered %d (documented: 202)", path, response.status_code)
        try:
            data = self._json(response).get("data")
            return self._validate(Message, data, f"POST {path}")
        except OpenPhoneResponseError as exc:
            raise SendOutcomeUnknown(
                "accepted, but the answer could not be read", status_code=response.status_code, **context
            ) from exc
