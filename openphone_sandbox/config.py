"""Configuration for the sandbox: one dataclass for the world/API, one for webhook faults.

Kept as plain dataclasses so the CLI, the test helper and POST /_sandbox/faults share one schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

GENERATIONS = ("v2", "v4", "2026-03-30")


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
        """Apply a partial update (from POST /_sandbox/faults), validating names and ranges."""
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r}")
            if key == "receiver_down":
                value = [(float(a), float(b)) for a, b in value]
            elif key == "reorder_window":
                value = int(value)
            else:
                value = float(value)
                if key.endswith("_rate") and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be within 0..1")
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
    messages_per_day: int = 40
    live_rate: float = 0.0  # generated messages per second after start
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
    error_shape: str = "flat"  # "flat" (documented) or "nested" ({"error":{...}} as seen live)
    error_5xx_rate: float = 0.0
    send_commit_on_5xx: float = 0.5  # share of faulted POST /v1/messages that still send (no idempotency!)
    slow_rate: float = 0.0
    slow_delay_ms: float = 2000.0

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
        if isinstance(self.faults, dict):
            fc = FaultConfig()
            fc.update(self.faults)
            self.faults = fc

    @classmethod
    def from_options(cls, **options: Any) -> SandboxConfig:
        """Build from keyword options; fault names (drop_rate, ...) may be given at top level."""
        fault_names = {f.name for f in fields(FaultConfig)}
        fault_values = {k: options.pop(k) for k in list(options) if k in fault_names}
        cfg = cls(**options)
        cfg.faults.update(fault_values)
        return cfg
