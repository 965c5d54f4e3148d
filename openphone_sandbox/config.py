"""Configuration for the sandbox: one dataclass for the world/API, one for webhook faults, and the
table of settings that may change while it runs.

Plain dataclasses, so the CLI, the test helper and POST /_sandbox/faults share one schema and one
validator: a bad value is refused with a message naming the setting, and nothing is half-applied.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

GENERATIONS = ("v2", "v4", "2026-03-30")


@dataclass(frozen=True)
class Setting:
    """How one runtime setting is checked: its type and inclusive bounds (None = unbounded)."""

    kind: type
    low: float | None = None
    high: float | None = None

    def check(self, name: str, value: Any) -> Any:
        """The value converted to `kind`, or ValueError naming the setting."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            return value
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            number = self.kind(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a number, got {value!r}") from exc
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise ValueError(f"{name} must be within {self.low}..{self.high}, got {value!r}")
        return number


RATE = Setting(float, 0.0, 1.0)
NON_NEGATIVE = Setting(float, 0.0)
FLAG = Setting(bool)

# Webhook-delivery faults (FaultConfig fields except receiver_down, which is a list of windows).
FAULT_SETTINGS: dict[str, Setting] = {
    "drop_rate": RATE, "duplicate_rate": RATE, "reorder_window": Setting(int, 0),
    "reorder_max_hold_s": NON_NEGATIVE, "delay_ms": NON_NEGATIVE, "delay_rate": RATE,
}
# SandboxConfig fields that may change while the sandbox runs.
RUNTIME_SETTINGS: dict[str, Setting] = {
    "error_5xx_rate": RATE, "slow_rate": RATE, "slow_delay_ms": NON_NEGATIVE, "send_commit_on_5xx": RATE,
    "undelivered_rate": RATE, "rate_limit": Setting(float, 0.001), "retry_after": FLAG,
    "api_429_until": NON_NEGATIVE, "api_429_retry_after": FLAG,
    "sent_after_s": NON_NEGATIVE, "delivered_after_s": NON_NEGATIVE, "live_rate": NON_NEGATIVE,
    "created_after_inclusive": FLAG, "created_before_inclusive": FLAG,
    "updated_after_inclusive": FLAG, "updated_before_inclusive": FLAG,
}
# Conveniences that are not stored: windows given relative to now (seconds, wall clock).
RELATIVE_SETTINGS = {"receiver_down_for_s": "receiver_down", "receiver_down_for": "receiver_down",
                     "api_429_for_s": "api_429_until"}


def _windows(value: Any) -> list[tuple[float, float]]:
    """receiver_down as (start, end) epoch-second pairs, each ending after it starts."""
    if not isinstance(value, list | tuple):
        raise ValueError("receiver_down must be a list of [start, end] epoch-second pairs")
    out = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"receiver_down entries must be [start, end] pairs, got {pair!r}")
        start, end = (NON_NEGATIVE.check("receiver_down", x) for x in pair)
        if end < start:
            raise ValueError(f"receiver_down window ends before it starts: {pair!r}")
        out.append((start, end))
    return out


def parse_settings(values: dict[str, Any], current_down: list[tuple[float, float]],
                   now_s: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a runtime update; return (fault values, SandboxConfig values), both fully checked.

    Relative windows are resolved against now_s (default: the wall clock): `receiver_down_for_s: N`
    appends [now, now + N] to the receiver-down windows, `api_429_for_s: N` sets api_429_until to
    now + N. Raises ValueError naming the first bad setting; the caller applies nothing then.
    """
    now = time.time() if now_s is None else now_s
    faults: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for name, value in values.items():
        if name in FAULT_SETTINGS:
            faults[name] = FAULT_SETTINGS[name].check(name, value)
        elif name in RUNTIME_SETTINGS:
            runtime[name] = RUNTIME_SETTINGS[name].check(name, value)
        elif name == "receiver_down":
            faults[name] = _windows(value)
        elif name not in RELATIVE_SETTINGS:
            raise ValueError(f"unknown setting {name!r}")
    for name, target in RELATIVE_SETTINGS.items():
        if name not in values:
            continue
        seconds = NON_NEGATIVE.check(name, values[name])
        if target == "receiver_down":
            faults["receiver_down"] = [*faults.get("receiver_down", current_down), (now, now + seconds)]
        else:
            runtime[target] = now + seconds
    return faults, runtime


@dataclass
class FaultConfig:
    """Webhook delivery faults; every rate is a probability in [0, 1] decided per event from the seed."""

    drop_rate: float = 0.0  # event never delivered to that target
    duplicate_rate: float = 0.0  # event delivered twice (same event id)
    reorder_window: int = 0  # hold up to N events and release them shuffled (0/1 = off)
    reorder_max_hold_s: float = 1.0  # release a partial reorder window after this long
    delay_ms: float = 0.0  # extra delay, uniform in [0, delay_ms], applied to a delay_rate fraction
    delay_rate: float = 1.0
    # Receiver-down windows as (start, end) epoch seconds; attempts inside fail like a refused connection.
    receiver_down: list[tuple[float, float]] = field(default_factory=list)

    def update(self, values: dict[str, Any]) -> None:
        """Apply a partial update of fault fields, validating every name and range first."""
        unknown = set(values) - set(FAULT_SETTINGS) - {"receiver_down"}
        if unknown:
            raise ValueError(f"unknown fault setting {sorted(unknown)[0]!r}")
        checked, _ = parse_settings(values, self.receiver_down)
        for key, value in checked.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SandboxConfig:
    """Everything that shapes the sandbox: traffic, API behaviour, webhook delivery."""

    seed: int = 1
    api_key: str = "sandbox-api-key"
    extra_api_keys: list[str] = field(default_factory=list)
    now: str | None = None  # ISO anchor for history; default: wall clock at start

    # traffic
    history_days: int = 3
    messages_per_day: int = 40  # 0 = empty history
    live_rate: float = 0.0  # generated messages per second after start (never on the probe line)
    contacts: int = 40
    conversations_per_line: int = 12
    group_fraction: float = 0.2
    undelivered_rate: float = 0.05  # outgoing messages ending undelivered
    near_midnight_fraction: float = 0.1  # history messages placed within 2 minutes of midnight UTC

    # message lifecycle (seconds on the sandbox clock)
    sent_after_s: float = 0.5
    delivered_after_s: float = 1.0
    allow_group_send: bool = False  # POST /v1/messages `to` up to 10 instead of exactly 1

    # API behaviour
    rate_limit: float = 10.0  # requests per second per key (token bucket, burst = rate)
    retry_after: bool = False  # send Retry-After on 429
    api_429_until: float = 0.0  # epoch seconds (wall clock): every /v1 request answers 429 until then
    api_429_retry_after: bool = False  # Retry-After (seconds left) on those 429s
    error_shape: str = "flat"  # "flat" (documented) or "nested" ({"error":{...}} as seen live)
    error_5xx_rate: float = 0.0
    send_commit_on_5xx: float = 0.5  # share of faulted POST /v1/messages that still send (no idempotency!)
    slow_rate: float = 0.0
    slow_delay_ms: float = 2000.0
    # Window edges (undocumented upstream): True = a record exactly on the bound is included.
    created_after_inclusive: bool = True
    created_before_inclusive: bool = False
    updated_after_inclusive: bool = True
    updated_before_inclusive: bool = False

    # webhooks
    webhook_url: str | None = None
    webhook_secret: str | None = None  # base64 (or whsec_<base64> for 2026-03-30); generated if None
    payload_generation: str = "v2"
    registered_generation: str = "v4"  # hooks created via POST /v1/webhooks/messages
    history_webhooks: bool = False
    retry_schedule: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0, 2.0, 5.0])
    max_attempts: int = 6
    delivery_timeout_s: float = 5.0
    delivery_workers: int = 8
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.payload_generation not in GENERATIONS:
            raise ValueError(f"payload_generation must be one of {GENERATIONS}")
        if self.registered_generation not in GENERATIONS:
            raise ValueError(f"registered_generation must be one of {GENERATIONS}")
        if self.error_shape not in ("flat", "nested"):
            raise ValueError("error_shape must be 'flat' or 'nested'")
        if self.history_days < 0 or self.messages_per_day < 0:
            raise ValueError("history_days and messages_per_day must be >= 0")
        for name, setting in RUNTIME_SETTINGS.items():
            setattr(self, name, setting.check(name, getattr(self, name)))
        if isinstance(self.faults, dict):
            fc = FaultConfig()
            fc.update(self.faults)
            self.faults = fc

    def runtime_settings(self) -> dict[str, Any]:
        """Every setting POST /_sandbox/faults may change, with its current value."""
        out = self.faults.to_dict()
        out.update({k: getattr(self, k) for k in RUNTIME_SETTINGS})
        return out

    @classmethod
    def from_options(cls, **options: Any) -> SandboxConfig:
        """Build from keyword options; fault names (drop_rate, ...) may be given at top level."""
        fault_names = {f.name for f in fields(FaultConfig)}
        fault_values = {k: options.pop(k) for k in list(options) if k in fault_names}
        cfg = cls(**options)
        cfg.faults.update(fault_values)
        return cfg
