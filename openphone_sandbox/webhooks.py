"""Webhook payloads, signatures and the at-least-once delivery engine with fault injection
(shapes and signatures: docs/openphone-api.md, 'Webhook delivery').

The engine plays OpenPhone's webhook sender: it signs each attempt freshly, retries non-2xx
answers on a compressed schedule, and injects drop / duplicate / reorder / delay /
receiver-down faults decided per event from the seed, so a test can predict the exact fate
of every event.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import http.client
import itertools
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .config import FaultConfig
from .util import compact_json, iso

MESSAGE_EVENTS = ("message.received", "message.delivered")
RECEIVER_DOWN = "receiver down (simulated)"


# --------------------------------------------------------------------------- payloads

def message_object(msg: dict[str, Any], generation: str, contact_ids: list[str]) -> dict[str, Any]:
    """The message as it appears inside a webhook of the given payload generation.

    msg is the REST representation (text, to as list, userId, ...).
    """
    if generation == "v2":
        return {
            "id": msg["id"], "object": "message", "from": msg["from"],
            "to": msg["to"][0] if msg["to"] else None, "direction": msg["direction"],
            "body": msg["text"], "media": [], "status": msg["status"], "createdAt": msg["createdAt"],
            "userId": msg["userId"] or msg.get("_lineOwner"), "phoneNumberId": msg["phoneNumberId"],
            "conversationId": msg["conversationId"],
        }
    if generation == "v4":
        return {
            "id": msg["id"], "object": "message", "from": msg["from"], "to": list(msg["to"]),
            "direction": msg["direction"], "text": msg["text"], "status": msg["status"],
            "createdAt": msg["createdAt"], "userId": msg["userId"] or msg.get("_lineOwner"),
            "phoneNumberId": msg["phoneNumberId"], "contactIds": contact_ids,
        }
    resource = {k: v for k, v in msg.items() if not k.startswith("_")}
    resource["object"] = "message"
    return resource


def event_body(event_id: str, event_type: str, created_ms: int, msg: dict[str, Any],
               generation: str, contact_ids: list[str]) -> bytes:
    """Compact JSON body of one event in the chosen generation."""
    obj = message_object(msg, generation, contact_ids)
    if generation == "2026-03-30":
        payload: dict[str, Any] = {
            "id": event_id, "type": event_type, "apiVersion": "2026-03-30", "createdAt": iso(created_ms),
            "data": {"resource": obj, "context": {}, "links": {}},
        }
    else:
        payload = {"id": event_id, "object": "event", "apiVersion": generation,
                   "createdAt": iso(created_ms), "type": event_type, "data": {"object": obj}}
    return compact_json(payload)


# --------------------------------------------------------------------------- signatures

def sign_legacy(secret_b64: str, body: bytes, ts_ms: int | None = None) -> str:
    """`openphone-signature` value: hmac;1;<ms>;<b64 HMAC-SHA256(b64decode(key), ts + '.' + body)>."""
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    key = base64.b64decode(secret_b64)
    digest = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).digest()
    return f"hmac;1;{ts};{base64.b64encode(digest).decode()}"


def sign_standard(secret: str, msg_id: str, body: bytes, ts_s: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers; secret is `whsec_<base64>` (the prefix is optional here)."""
    ts = str(ts_s if ts_s is not None else int(time.time()))
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(raw)
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": ts,
            "webhook-signature": f"v1,{base64.b64encode(digest).decode()}"}


def signed_headers(generation: str, secret: str, event_id: str, body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": "OpenPhone-Sandbox-Webhooks/1.0"}
    if generation == "2026-03-30":
        headers.update(sign_standard(secret, event_id, body))
    else:
        headers["openphone-signature"] = sign_legacy(secret, body)
    return headers


# --------------------------------------------------------------------------- delivery engine

@dataclass
class Target:
    """Where events go: the CLI/constructor URL or a webhook registered via the API."""

    url: str
    secret: str
    generation: str
    webhook_id: str | None = None

    @property
    def key(self) -> str:
        return self.webhook_id or "default"


@dataclass
class Delivery:
    event_id: str
    event_type: str
    message_id: str
    target: Target
    body: bytes
    attempt: int = 0
    duplicate: bool = False


@dataclass
class EventRecord:
    """What happened to one (event, target): exposed at GET /_sandbox/events."""

    eventId: str
    type: str
    messageId: str
    target: str
    url: str
    submittedAt: str = ""  # wall clock, when the sandbox emitted it
    fate: str = "pending"  # pending | delivered | dropped | failed
    attempts: int = 0  # every try, including those refused by a simulated receiver-down window
    sent: int = 0  # tries that reached the network (attempts minus receiver-down refusals)
    deliveries: int = 0  # 2xx responses (2 when duplicated)
    duplicated: bool = False
    acknowledgedAt: str | None = None  # wall clock of the first 2xx
    lastStatus: int | None = None
    lastError: str | None = None


COUNTERS = ("events", "attempted", "delivered", "dropped", "duplicated", "retried", "failed",
            "receiver_down", "delayed", "reordered")


@dataclass
class _Stats:
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    by_event: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(COUNTERS, 0)))

    def inc(self, name: str, event_type: str, n: int = 1) -> None:
        self.total[name] += n
        self.by_event[event_type][name] += n


class DeliveryEngine:
    """Background workers delivering signed events at least once, with seeded fault injection."""

    def __init__(self, seed: int, faults: FaultConfig, retry_schedule: list[float], max_attempts: int,
                 timeout_s: float, workers: int = 8) -> None:
        self.seed = seed
        self.faults = faults
        self.retry_schedule = list(retry_schedule) or [1.0]
        self.max_attempts = max(1, max_attempts)
        self.timeout_s = timeout_s
        self.nworkers = max(1, workers)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._reorder: list[Delivery] = []
        self._reorder_since = 0.0
        self._reorder_rng = random.Random(f"{seed}:reorder")
        self._in_flight = 0
        self._stats = _Stats()
        self.records: dict[tuple[str, str], EventRecord] = {}
        self._threads: list[threading.Thread] = []
        self._stop = False
        self._local = threading.local()

    # -- lifecycle
    def start(self) -> None:
        for i in range(self.nworkers):
            t = threading.Thread(target=self._worker, name=f"sandbox-delivery-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)

    # -- submission
    def _u(self, event_id: str, target: Target, kind: str) -> float:
        from .util import unit_float

        return unit_float(self.seed, event_id, target.key, kind)

    def submit(self, event_id: str, event_type: str, message_id: str, target: Target, body: bytes) -> None:
        """Queue one event for one target, applying drop / duplicate / delay / reorder decisions."""
        f = self.faults
        rec = EventRecord(event_id, event_type, message_id, target.key, target.url,
                          submittedAt=iso(int(time.time() * 1000)))
        with self._cond:
            self.records[(event_id, target.key)] = rec
            self._stats.inc("events", event_type)
            if f.drop_rate > 0 and self._u(event_id, target, "drop") < f.drop_rate:
                rec.fate = "dropped"
                self._stats.inc("dropped", event_type)
                return
            now = time.monotonic()
            extra = 0.0
            if f.delay_ms > 0 and self._u(event_id, target, "delay?") < f.delay_rate:
                extra = self._u(event_id, target, "delay") * f.delay_ms / 1000.0
                self._stats.inc("delayed", event_type)
            items = [Delivery(event_id, event_type, message_id, target, body)]
            if f.duplicate_rate > 0 and self._u(event_id, target, "dup") < f.duplicate_rate:
                rec.duplicated = True
                self._stats.inc("duplicated", event_type)
                items.append(Delivery(event_id, event_type, message_id, target, body, duplicate=True))
            if f.reorder_window > 1:
                if not self._reorder:
                    self._reorder_since = now
                self._reorder.extend(items)
                self._stats.inc("reordered", event_type)
                if len(self._reorder) >= f.reorder_window:
                    self._release_reorder(now)
            else:
                for i, d in enumerate(items):
                    # the duplicate follows the original shortly, like a retry racing an ack
                    self._push(now + extra + (0.05 * i), d)
            self._cond.notify_all()

    def _push(self, due: float, d: Delivery) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), d))

    def _release_reorder(self, now: float) -> None:
        batch, self._reorder = self._reorder, []
        self._reorder_rng.shuffle(batch)
        for i, d in enumerate(batch):
            extra = 0.0
            if self.faults.delay_ms > 0 and self._u(d.event_id, d.target, "delay?") < self.faults.delay_rate:
                extra = self._u(d.event_id, d.target, "delay") * self.faults.delay_ms / 1000.0
            self._push(now + extra + 0.001 * i, d)

    # -- introspection
    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + len(self._reorder) + self._in_flight

    def flush_reorder(self) -> None:
        """Release a partially filled reorder window now (used by wait/flush hooks)."""
        with self._cond:
            if self._reorder:
                self._release_reorder(time.monotonic())
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued, buffered or in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._heap) + len(self._reorder) + self._in_flight > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def stats(self) -> dict[str, Any]:
        with self._cond:
            out: dict[str, Any] = dict(self._stats.total)
            out["by_event"] = {k: dict(v) for k, v in self._stats.by_event.items()}
            out["pending"] = len(self._heap) + len(self._reorder) + self._in_flight
            return out

    def event_records(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(vars(r)) for r in self.records.values()]

    # -- workers
    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST over a per-thread keep-alive connection (http.client: cheap enough for 10k events)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        conns: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):  # one transparent reconnect when a kept-alive socket went stale
            conn = conns.get(key)
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = cls(parts.netloc, timeout=self.timeout_s)
                conns[key] = conn
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    conn.close()
                    conns.pop(key, None)
                return resp.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                conns.pop(key, None)
                if attempt == 1:
                    raise
            except Exception:
                conn.close()
                conns.pop(key, None)
                raise
        raise RuntimeError("unreachable")

    def _next(self) -> Delivery | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                if self._reorder and now - self._reorder_since >= self.faults.reorder_max_hold_s:
                    self._release_reorder(now)
                if self._heap and self._heap[0][0] <= now:
                    _, _, d = heapq.heappop(self._heap)
                    self._in_flight += 1
                    return d
                wait = 0.5
                if self._heap:
                    wait = min(wait, self._heap[0][0] - now)
                if self._reorder:
                    wait = min(wait, self._reorder_since + self.faults.reorder_max_hold_s - now)
                self._cond.wait(max(wait, 0.001))
            return None

    def _receiver_down(self) -> bool:
        now = time.time()
        return any(a <= now < b for a, b in self.faults.receiver_down)

    def _worker(self) -> None:
        while True:
            d = self._next()
            if d is None:
                return
            status: int | None = None
            error: str | None = None
            if self._receiver_down():
                error = RECEIVER_DOWN
            else:
                try:
                    headers = signed_headers(d.target.generation, d.target.secret, d.event_id, d.body)
                    status = self._post(d.target.url, d.body, headers)
                except (OSError, http.client.HTTPException) as exc:
                    error = f"{type(exc).__name__}: {exc}"
            self._finish(d, status, error)

    def _finish(self, d: Delivery, status: int | None, error: str | None) -> None:
        with self._cond:
            self._in_flight -= 1
            d.attempt += 1
            rec = self.records.get((d.event_id, d.target.key))
            self._stats.inc("attempted", d.event_type)
            refused = error == RECEIVER_DOWN
            if refused:
                self._stats.inc("receiver_down", d.event_type)
            ok = status is not None and 200 <= status < 300
            if rec is not None:
                rec.attempts += 1
                rec.sent += 0 if refused else 1
                rec.lastStatus = status
                rec.lastError = error
            if ok:
                self._stats.inc("delivered", d.event_type)
                if rec is not None:
                    rec.deliveries += 1
                    rec.fate = "delivered"
                    rec.acknowledgedAt = rec.acknowledgedAt or iso(int(time.time() * 1000))
            elif d.attempt < self.max_attempts and not self._stop:
                self._stats.inc("retried", d.event_type)
                delay = self.retry_schedule[min(d.attempt - 1, len(self.retry_schedule) - 1)]
                self._push(time.monotonic() + delay, d)
            else:
                self._stats.inc("failed", d.event_type)
                if rec is not None and rec.fate != "delivered":
                    rec.fate = "failed"
            self._cond.notify_all()


def summarize(records: list[dict[str, Any]]) -> dict[str, int]:
    """Counts over (event, target) records: what a soak compares with what its receivers stored."""
    return {"events": len(records),
            "dropped": sum(r["fate"] == "dropped" for r in records),
            "duplicated": sum(r["duplicated"] for r in records),
            "acknowledged": sum(r["deliveries"] > 0 for r in records),
            "failed": sum(r["fate"] == "failed" for r in records),
            "pending": sum(r["fate"] == "pending" for r in records),
            "attempts": sum(r["attempts"] for r in records),
            "sent": sum(r["sent"] for r in records),
            "deliveries": sum(r["deliveries"] for r in records)}
