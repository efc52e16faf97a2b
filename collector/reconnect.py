"""Reconnect policy (exponential backoff with jitter) and the link state log.

Why not bleak-retry-connector (4.7.1, which does accept bleak>=3.0.2): it retries one
`establish_connection` a few times, not a long-lived stream after an unsolicited drop, and on
Linux it calls BlueZ over D-Bus (`get_connected_devices`, cache clearing) before connecting, which
fails without BlueZ and bypasses injected bleak backends; it also pulls bluetooth-adapters. A
backoff loop of a dozen lines does what the collector needs on every backend.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("collector.link")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt n (1-based): min(max_s, initial_s · factor^(n−1)) ± jitter.

    Defaults: a wearable that walked out of range usually returns within a minute, so retry
    quickly at first (1 s), then every 60 s at most; ±20 % jitter keeps several collectors from
    retrying in lockstep. `max_attempts` None = retry until stopped.
    """

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.2
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < self.initial_s:
            raise ValueError(f"need 0 <= initial_s <= max_s, got {self.initial_s}, {self.max_s}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0, got {self.max_attempts}")

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before reconnect attempt `attempt` (1-based)."""
        base = min(self.max_s, self.initial_s * self.factor ** (attempt - 1))
        return base * (1 + self.jitter * (2 * rng.random() - 1))

    def gives_up(self, attempt: int) -> bool:
        """True when attempt number `attempt` (1-based) exceeds `max_attempts`."""
        return self.max_attempts is not None and attempt > self.max_attempts


class LinkState(enum.Enum):
    """States of a live collection."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    STREAMING = "streaming"
    LINK_LOST = "link lost"
    RETRYING = "retrying"
    GAVE_UP = "gave up"
    STOPPED = "stopped"


@dataclass(slots=True)
class LinkLog:
    """Logs each state change once (INFO; GAVE_UP as ERROR) and keeps the history."""

    name: str = "device"
    on_change: Callable[[LinkState, str], None] | None = None
    history: list[tuple[LinkState, str]] = field(default_factory=list)

    @property
    def state(self) -> LinkState | None:
        """The current state (None before the first)."""
        return self.history[-1][0] if self.history else None

    def set(self, state: LinkState, detail: str = "") -> None:
        """Enter `state`; a repeat of the current state without new detail is not logged."""
        if self.history and self.history[-1] == (state, detail):
            return
        self.history.append((state, detail))
        text = f"{self.name}: {state.value}" + (f" ({detail})" if detail else "")
        log.log(logging.ERROR if state is LinkState.GAVE_UP else logging.INFO, "%s", text)
        if self.on_change is not None:
            self.on_change(state, detail)


__all__ = ["Backoff", "LinkLog", "LinkState"]
