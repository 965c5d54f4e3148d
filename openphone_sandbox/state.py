"""The sandbox state: workspace, conversations, messages, lifecycles, registered webhooks.

One re-entrant lock guards all of it; a scheduler thread runs due lifecycle steps and the live
generator on a sandbox clock (wall clock plus an offset that /_sandbox/advance moves), so tests
can step time instead of sleeping.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import SandboxConfig, parse_settings
from .traffic import HistoryMessage, Line, anchor_ms, build_world, conversation_id, history, make_message
from .util import b64_secret, iso, rand_alnum, rand_hex, stable_hex
from .webhooks import DeliveryEngine, Target, event_body


@dataclass
class Message:
    """Internal message record; final_status is what the API will eventually show.

    origin says where it came from (history, live, api, simulated, or line: the incoming copy of a
    send between two sandbox lines); webhooks=False creates it without any webhook (a test's
    deterministic "missed" message).
    """

    id: str
    line_id: str
    conversation_id: str
    direction: str
    from_: str
    to: list[str]
    text: str
    user_id: str | None
    status: str
    final_status: str
    created_ms: int
    updated_ms: int
    line_owner: str | None = None
    origin: str = "history"
    webhooks: bool = True

    def sort_key(self) -> tuple[int, str]:
        return (self.created_ms, self.id)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "to": list(self.to), "from": self.from_, "text": self.text,
            "phoneNumberId": self.line_id, "conversationId": self.conversation_id,
            "direction": self.direction, "userId": self.user_id, "status": self.status,
            "createdAt": iso(self.created_ms), "updatedAt": iso(self.updated_ms), "media": [],
        }


@dataclass
class Conversation:
    id: str
    line_id: str
    participants: list[str]
    name: str | None
    created_ms: int
    last_activity_ms: int
    last_activity_id: str
    messages: list[tuple[tuple[int, str], str]] = field(default_factory=list)  # (sort key, id), ascending

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "phoneNumberId": self.line_id, "participants": list(self.participants),
            "name": self.name, "assignedTo": None, "lastActivityAt": iso(self.last_activity_ms),
            "lastActivityId": self.last_activity_id, "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.last_activity_ms), "deletedAt": None, "mutedUntil": None,
            "snoozedUntil": None,
        }


class Sandbox:
    """A running fake OpenPhone workspace."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        cfg = self.config
        self.lock = threading.RLock()
        self.world = build_world(cfg)
        self.lines: dict[str, Line] = {ln.id: ln for ln in self.world.lines}
        self.line_by_number: dict[str, Line] = {ln.number: ln for ln in self.world.lines}
        self.messages: dict[str, Message] = {}
        self.conversations: dict[str, Conversation] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.offset_s = 0.0
        self.anchor = anchor_ms(cfg)
        self._rng = random.Random(f"{cfg.seed}:runtime")  # ids for API/live messages
        self._live_rng = random.Random(f"{cfg.seed}:live")
        self._api_fault_rng = random.Random(f"{cfg.seed}:api-faults")
        self._tasks: list[tuple[float, int, str, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(self.lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        if cfg.webhook_secret is None:
            secret = b64_secret()
            cfg.webhook_secret = ("whsec_" + secret) if cfg.payload_generation == "2026-03-30" else secret
        self.delivery = DeliveryEngine(cfg.seed, cfg.faults, cfg.retry_schedule, cfg.max_attempts,
                                       cfg.delivery_timeout_s, cfg.delivery_workers)
        self._history = history(self.world, cfg, self.anchor)
        for hm in self._history:
            self._insert(self._from_history(hm))

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        """Sandbox wall clock (epoch ms): real time plus the advance offset."""
        return int((time.time() + self.offset_s) * 1000)

    def _mono(self) -> float:
        return time.monotonic() + self.offset_s

    # ------------------------------------------------------------------ lifecycle of the sandbox
    def start(self) -> None:
        """Start delivery workers, the scheduler, history webhooks and the live generator."""
        self.delivery.start()
        with self.lock:
            if self.config.history_webhooks:
                for hm in self._history:
                    msg = self.messages[hm.id]
                    if msg.direction == "incoming":
                        self._emit("message.received", msg, msg.created_ms)
                    elif msg.status == "delivered":
                        self._emit("message.delivered", msg, msg.updated_ms)
            self.set_live_rate(self.config.live_rate)
        self._thread = threading.Thread(target=self._run, name="sandbox-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=2)
        self.delivery.stop()

    def set_live_rate(self, rate: float) -> None:
        """Change live traffic at once: drop the pending tick and, if rate > 0, tick 1/rate from now."""
        with self._cond:
            self.config.live_rate = rate
            self._tasks = [t for t in self._tasks if t[2] != "live"]
            heapq.heapify(self._tasks)
            if rate > 0:
                self._schedule_live(self._mono() + 1.0 / rate)

    def apply_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply a runtime update (POST /_sandbox/faults) all at once; return the settings.

        Raises ValueError naming the bad setting, having changed nothing.
        """
        with self.lock:
            faults, runtime = parse_settings(values, self.config.faults.receiver_down)
            for key, value in faults.items():
                setattr(self.config.faults, key, value)
            for key, value in runtime.items():
                if key == "live_rate":
                    self.set_live_rate(value)
                else:
                    setattr(self.config, key, value)
            return self.config.runtime_settings()

    def _schedule_live(self, due: float) -> None:
        """Live ticks chain from their own due time so advance(N) yields N * live_rate messages."""
        heapq.heappush(self._tasks, (due, next(self._seq), "live", lambda: self._live_tick(due)))
        self._cond.notify_all()

    def _schedule(self, delay_s: float, kind: str, fn: Callable[[], None]) -> None:
        heapq.heappush(self._tasks, (self._mono() + delay_s, next(self._seq), kind, fn))
        self._cond.notify_all()

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                self.run_due()
                wait = 0.5
                if self._tasks:
                    wait = min(wait, self._tasks[0][0] - self._mono())
                self._cond.wait(max(wait, 0.001))

    def run_due(self) -> int:
        """Run every scheduled task due on the sandbox clock; returns how many ran."""
        n = 0
        with self.lock:
            while self._tasks and self._tasks[0][0] <= self._mono():
                _, _, _, fn = heapq.heappop(self._tasks)
                fn()
                n += 1
        return n

    def advance(self, seconds: float) -> int:
        """Move the sandbox clock forward and run what became due (tests step time, never sleep)."""
        with self.lock:
            self.offset_s += float(seconds)
            n = self.run_due()
            self._cond.notify_all()
            return n

    def settle(self) -> int:
        """Finish every pending message lifecycle now (live generation keeps its schedule)."""
        n = 0
        with self.lock:
            while True:
                lifecycle = sorted(t for t in self._tasks if t[2] == "lifecycle")
                if not lifecycle:
                    break
                self._tasks = [t for t in self._tasks if t[2] != "lifecycle"]
                heapq.heapify(self._tasks)
                for _, _, _, fn in lifecycle:
                    fn()
                    n += 1
        return n

    # ------------------------------------------------------------------ storage
    def _from_history(self, hm: HistoryMessage) -> Message:
        line = self.lines[hm.line_id]
        cid = conversation_id(self.config.seed, hm.line_id, hm.participants)
        return Message(hm.id, hm.line_id, cid, hm.direction, hm.from_, list(hm.to), hm.text, hm.user_id,
                       hm.status, hm.status, hm.created_ms, hm.updated_ms, line.owner_id, origin="history")

    def _conversation(self, line_id: str, participants: list[str] | tuple[str, ...], created_ms: int,
                      first_id: str) -> Conversation:
        cid = conversation_id(self.config.seed, line_id, participants)
        conv = self.conversations.get(cid)
        if conv is None:
            parts = sorted(participants)
            name = None
            if len(parts) == 1:
                name = self.world.contact_names.get(parts[0])
                other = self.line_by_number.get(parts[0])
                name = other.name if other else name
            conv = Conversation(cid, line_id, parts, name, created_ms, created_ms, first_id)
            self.conversations[cid] = conv
        return conv

    def _insert(self, msg: Message) -> None:
        participants = self._participants_of(msg)
        conv = self._conversation(msg.line_id, participants, msg.created_ms, msg.id)
        msg.conversation_id = conv.id
        self.messages[msg.id] = msg
        bisect.insort(conv.messages, (msg.sort_key(), msg.id))
        conv.created_ms = min(conv.created_ms, msg.created_ms)
        if msg.created_ms >= conv.last_activity_ms:
            conv.last_activity_ms = msg.created_ms
            conv.last_activity_id = msg.id

    def _participants_of(self, msg: Message) -> list[str]:
        line = self.lines[msg.line_id]
        if msg.direction == "outgoing":
            return sorted(set(msg.to))
        return sorted({msg.from_, *msg.to} - {line.number})

    # ------------------------------------------------------------------ webhooks
    def targets(self, event_type: str, line_id: str) -> list[Target]:
        """Configured URL plus registered webhooks subscribed to this event and line."""
        out: list[Target] = []
        cfg = self.config
        if cfg.webhook_url:
            out.append(Target(cfg.webhook_url, cfg.webhook_secret or "", cfg.payload_generation))
        for wh in self.webhooks.values():
            if wh["status"] != "enabled" or event_type not in wh["events"]:
                continue
            rids = wh["resourceIds"]
            if rids and "*" not in rids and line_id not in rids:
                continue
            out.append(Target(wh["url"], wh["key"], cfg.registered_generation, wh["id"]))
        return out

    def _emit(self, event_type: str, msg: Message, created_ms: int | None = None) -> None:
        targets = self.targets(event_type, msg.line_id) if msg.webhooks else []
        if not targets:
            return
        api = msg.to_api()
        api["_lineOwner"] = msg.line_owner
        counterpart = [p for p in self._participants_of(msg)]
        contact_ids = [self.world.contacts[p] for p in counterpart if p in self.world.contacts]
        event_id = "EV" + stable_hex("event", self.config.seed, msg.id, event_type)
        when = created_ms if created_ms is not None else self.now_ms()
        for t in targets:
            body = event_body(event_id, event_type, when, api, t.generation, contact_ids)
            self.delivery.submit(event_id, event_type, msg.id, t, body)

    # ------------------------------------------------------------------ message creation
    def _new_id(self, prefix: str = "AC") -> str:
        return prefix + rand_hex(self._rng, 32)

    def create_incoming(self, line: Line, sender: str, text: str, others: list[str] | None = None,
                        created_ms: int | None = None, *, origin: str, webhooks: bool = True) -> Message:
        """An incoming message on line (status received) plus its message.received webhook.

        created_ms defaults to now; the event's createdAt equals the message's.
        """
        with self.lock:
            now = created_ms if created_ms is not None else self.now_ms()
            to = [line.number] + [p for p in (others or []) if p not in (line.number, sender)]
            msg = Message(self._new_id(), line.id, "", "incoming", sender, to, text, None, "received",
                          "received", now, now, line.owner_id, origin=origin, webhooks=webhooks)
            self._insert(msg)
            self._emit("message.received", msg, now)
            return msg

    def create_outgoing(self, line: Line, to: list[str], text: str, user_id: str | None,
                        final_status: str | None = None, *, created_ms: int | None = None, origin: str,
                        webhooks: bool = True) -> Message:
        """An outgoing message: queued now with its lifecycle on the sandbox clock, or, given
        created_ms, already final (updatedAt one second later) like a history message."""
        with self.lock:
            if final_status is None:
                internal = all(t in self.line_by_number for t in to)
                undelivered = (not internal and self._rng.random() < self.config.undelivered_rate)
                final_status = "undelivered" if undelivered else "delivered"
            created = created_ms if created_ms is not None else self.now_ms()
            msg = Message(self._new_id(), line.id, "", "outgoing", line.number, list(to), text,
                          user_id or line.owner_id, "queued", final_status, created, created, line.owner_id,
                          origin=origin, webhooks=webhooks)
            self._insert(msg)
            if created_ms is None:
                self._schedule(self.config.sent_after_s, "lifecycle", lambda: self._mark_sent(msg))
            else:
                self._mark_final(msg, at_ms=created_ms + 1000)
            return msg

    def _mark_sent(self, msg: Message) -> None:
        msg.status = "sent"
        msg.updated_ms = max(self.now_ms(), msg.updated_ms)
        self._schedule(self.config.delivered_after_s, "lifecycle", lambda: self._mark_final(msg))

    def _mark_final(self, msg: Message, at_ms: int | None = None) -> None:
        """Final status now (or at at_ms); a delivered send to a sandbox line arrives there as incoming."""
        msg.status = msg.final_status
        msg.updated_ms = at_ms if at_ms is not None else max(self.now_ms(), msg.updated_ms)
        if msg.status != "delivered":
            return  # legacy webhooks never report undelivered: only polling finds it
        self._emit("message.delivered", msg, msg.updated_ms)
        sender = self.lines[msg.line_id]
        for number in msg.to:
            target_line = self.line_by_number.get(number)
            if target_line is not None:
                others = [p for p in msg.to if p != number]
                self.create_incoming(target_line, sender.number, msg.text, others=others, created_ms=at_ms,
                                     origin="line", webhooks=msg.webhooks)

    def _live_tick(self, due: float) -> None:
        rng = self._live_rng
        line = rng.choice(self.world.traffic_lines())
        participants = rng.choice(self.world.plans[line.id])
        hm = make_message(self.world, self.config, rng, line, participants, self.now_ms())
        if hm.direction == "incoming":
            self.create_incoming(line, hm.from_, hm.text, others=[p for p in participants if p != hm.from_],
                                 origin="live")
        else:
            self.create_outgoing(line, list(participants), hm.text, line.owner_id, final_status=hm.status,
                                 origin="live")
        if self.config.live_rate > 0:
            # catch up after advance(), but never replay more than a minute of backlog
            self._schedule_live(max(due + 1.0 / self.config.live_rate, self._mono() - 60.0))

    # ------------------------------------------------------------------ lookups
    def resolve_line(self, ref: str) -> Line | None:
        """A sandbox line by PN id or E.164 number."""
        return self.lines.get(ref) or self.line_by_number.get(ref)

    def api_fault(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self._api_fault_rng.random() < rate

    def register_webhook(self, url: str, events: list[str], resource_ids: list[str], label: str | None,
                         status: str, user_id: str | None) -> dict[str, Any]:
        with self.lock:
            now = iso(self.now_ms())
            key = b64_secret()
            if self.config.registered_generation == "2026-03-30":
                key = "whsec_" + key
            wh = {"id": "WH" + rand_hex(self._rng, 32), "userId": user_id or self.world.main.owner_id,
                  "orgId": "OR" + rand_alnum(random.Random(f"{self.config.seed}:org"), 8),
                  "label": label, "status": status, "url": url, "key": key, "createdAt": now,
                  "updatedAt": now, "deletedAt": None, "events": list(events),
                  "resourceIds": list(resource_ids)}
            self.webhooks[wh["id"]] = wh
            return wh

    def describe(self) -> dict[str, Any]:
        """Connection facts printed by the CLI and returned by GET /_sandbox/info."""
        return {
            "seed": self.config.seed, "apiKey": self.config.api_key,
            "webhookSecret": self.config.webhook_secret, "webhookUrl": self.config.webhook_url,
            "payloadGeneration": self.config.payload_generation,
            "mainLine": {"id": self.world.main.id, "number": self.world.main.number},
            "probeLine": {"id": self.world.probe.id, "number": self.world.probe.number},
            "lines": [{"id": ln.id, "number": ln.number, "name": ln.name, "role": ln.role}
                      for ln in self.world.lines],
            "anchor": iso(self.anchor),
        }

