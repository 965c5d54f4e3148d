"""Deterministic traffic: the workspace (lines, users, contacts, conversation plans) and history.

Everything derives from the seed so two sandboxes with the same seed and anchor serve identical
history; each UTC day uses its own RNG keyed by the date, so a restart later in the day leaves
earlier days unchanged (the reconciler's view of "yesterday" stays stable).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .config import SandboxConfig
from .util import rand_alnum, rand_hex, stable_hex

DAY_MS = 86_400_000
# Fictional 555-01xx numbers. 415 is deliberately absent: +1415555xxxx is never a sandbox line or
# contact, so tests can use it for outside parties.
AREA_CODES = ["628", "650", "212", "305", "512", "206", "303", "312", "404", "503", "602", "617",
              "702", "713", "718", "801", "808", "907", "919", "971"]
FIRST_NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lena",
               "Milo", "Nia", "Otto", "Pia", "Quin", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes", "Xia"]
LAST_NAMES = ["Example", "Sample", "Testwell", "Mock", "Fixture", "Dummy", "Placeholder", "Demo"]
TEXTS = [
    "Hi, is the order ready for pickup?", "Your appointment is confirmed for {h}pm.",
    "Can we move it to {h}:30?", "Thanks! See you tomorrow.", "Invoice #{n} has been sent.",
    "Running {m} minutes late, sorry.", "Yes, that works for me.", "Please call me back when free.",
    "Reminder: your visit is on {d}.", "Got it, thanks 👍", "Where should I park?",
    "The technician is on the way.", "Quote #{n}: $ {n}.00 total.", "Can you send the address again?",
]


@dataclass
class Line:
    """One OpenPhone number in the sandbox workspace."""

    id: str
    number: str
    name: str
    role: str  # "main", "probe" or "other"
    owner_id: str
    users: list[dict]
    created_ms: int

    def to_api(self) -> dict:
        from .util import iso

        n = self.number
        return {
            "id": self.id, "number": n, "formattedNumber": f"({n[2:5]}) {n[5:8]}-{n[8:]}",
            "name": self.name, "symbol": "📞", "groupId": None, "forward": None,
            "portRequestId": None, "portingStatus": None,
            "createdAt": iso(self.created_ms), "updatedAt": iso(self.created_ms),
            "users": self.users,
            "restrictions": {"calling": {"US": "unrestricted", "CA": "unrestricted", "Intl": "restricted"},
                             "messaging": {"US": "unrestricted", "CA": "unrestricted", "Intl": "restricted"}},
        }


@dataclass
class HistoryMessage:
    """A past message with its final status; the sandbox loads these at start."""

    id: str
    line_id: str
    participants: tuple[str, ...]
    direction: str
    from_: str
    to: list[str]
    text: str
    user_id: str | None
    status: str
    created_ms: int
    updated_ms: int


@dataclass
class World:
    """Static workspace built from the seed."""

    seed: int
    lines: list[Line]
    contacts: dict[str, str]  # number -> contact id
    contact_names: dict[str, str]
    plans: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # line id -> participant sets

    @property
    def main(self) -> Line:
        return next(ln for ln in self.lines if ln.role == "main")

    @property
    def probe(self) -> Line:
        return next(ln for ln in self.lines if ln.role == "probe")

    def traffic_lines(self) -> list[Line]:
        return [ln for ln in self.lines if ln.role != "probe"]


def conversation_id(seed: int, line_id: str, participants: tuple[str, ...] | list[str]) -> str:
    """Stable conversation id: same line + participant set always maps to the same CN id."""
    return "CN" + stable_hex("conv", seed, line_id, ",".join(sorted(participants)))


def build_world(cfg: SandboxConfig) -> World:
    """Lines (main, support, probe), their users, contacts and the conversation plans."""
    rng = random.Random(f"{cfg.seed}:world")
    used: set[str] = set()

    if cfg.contacts > 1500:
        raise ValueError("at most 1500 contacts (fictional 555-01xx numbers only)")

    def number() -> str:
        while True:
            n = f"+1{rng.choice(AREA_CODES)}555{rng.randint(100, 199):04d}"
            if n not in used:
                used.add(n)
                return n

    created = int(datetime(2024, 1, 15, tzinfo=UTC).timestamp() * 1000)
    lines: list[Line] = []
    for role, name in (("main", "Main line"), ("other", "Support"), ("probe", "Health probe")):
        uid = "US" + rand_alnum(rng, 8)
        first = rng.choice(FIRST_NAMES)
        users = [{"id": uid, "email": f"{first.lower()}@sandbox.example", "firstName": first,
                  "lastName": "Owner", "role": "owner", "groupId": None}]
        lines.append(Line(id="PN" + rand_alnum(rng, 8), number=number(), name=name, role=role,
                          owner_id=uid, users=users, created_ms=created))
    contacts: dict[str, str] = {}
    names: dict[str, str] = {}
    for _ in range(cfg.contacts):
        n = number()
        contacts[n] = rand_hex(rng, 24)
        names[n] = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    world = World(seed=cfg.seed, lines=lines, contacts=contacts, contact_names=names)
    pool = list(contacts)
    for line in world.traffic_lines():
        plans: list[tuple[str, ...]] = []
        seen: set[tuple[str, ...]] = set()
        while len(plans) < cfg.conversations_per_line:
            k = rng.choice([2, 3]) if rng.random() < cfg.group_fraction else 1
            p = tuple(sorted(rng.sample(pool, k)))
            if p not in seen:
                seen.add(p)
                plans.append(p)
        world.plans[line.id] = plans
    return world


def anchor_ms(cfg: SandboxConfig) -> int:
    """The history anchor: cfg.now if given, else the wall clock."""
    from .util import parse_iso

    if cfg.now:
        return parse_iso(cfg.now)
    return int(datetime.now(UTC).timestamp() * 1000)


def random_text(rng: random.Random) -> str:
    t = rng.choice(TEXTS)
    return t.format(h=rng.randint(1, 9), n=rng.randint(100, 9999), m=rng.randint(5, 25),
                    d=rng.choice(["Monday", "Tuesday", "Friday"]))


def make_message(world: World, cfg: SandboxConfig, rng: random.Random, line: Line,
                 participants: tuple[str, ...], created_ms: int) -> HistoryMessage:
    """One message with its final status, drawn from rng (used for history and live traffic)."""
    direction = "incoming" if rng.random() < 0.5 else "outgoing"
    text = random_text(rng)
    mid = "AC" + rand_hex(rng, 32)
    if direction == "incoming":
        sender = rng.choice(participants)
        to = [line.number] + [p for p in participants if p != sender]
        return HistoryMessage(mid, line.id, participants, direction, sender, to, text, None,
                              "received", created_ms, created_ms)
    status = "undelivered" if rng.random() < cfg.undelivered_rate else "delivered"
    updated = created_ms + rng.randint(1_000, 30_000)
    return HistoryMessage(mid, line.id, participants, direction, line.number, list(participants),
                          text, line.owner_id, status, created_ms, updated)


def history(world: World, cfg: SandboxConfig, anchor: int) -> list[HistoryMessage]:
    """History messages: messages_per_day per UTC day for history_days full days plus today so far.

    A near_midnight_fraction of them sits within two minutes of a UTC midnight, where
    window-edge bugs live. Messages newer than anchor minus one minute are cut off so every
    history message is already final.
    """
    out: list[HistoryMessage] = []
    lines = world.traffic_lines()
    today = datetime.fromtimestamp(anchor / 1000, tz=UTC).date()
    cutoff = anchor - 60_000
    for back in range(cfg.history_days, -1, -1):
        day = today - timedelta(days=back)
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        rng = random.Random(f"{cfg.seed}:day:{day.isoformat()}")
        for _ in range(cfg.messages_per_day):
            r = rng.random()
            if r < cfg.near_midnight_fraction / 2:
                created = start + rng.randint(0, 120_000)
            elif r < cfg.near_midnight_fraction:
                created = start + DAY_MS - 1 - rng.randint(0, 120_000)
            else:
                created = start + rng.randint(0, DAY_MS - 1)
            line = rng.choice(lines)
            participants = rng.choice(world.plans[line.id])
            msg = make_message(world, cfg, rng, line, participants, created)
            if msg.created_ms < cutoff and msg.updated_ms < anchor:
                out.append(msg)
    out.sort(key=lambda m: (m.created_ms, m.id))
    return out
