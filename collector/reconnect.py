"""Live collection that survives drops: backoff policy, link state log, `run_collection`.

Why not bleak-retry-connector (4.7.1, which does accept bleak>=3.0.2): it retries one
`establish_connection` a few times, not a long-lived stream after an unsolicited drop, and on
Linux it calls BlueZ over D-Bus (`get_connected_devices`, cache clearing) before connecting, which
fails without BlueZ and bypasses injected bleak backends; it also pulls bluetooth-adapters. A
backoff loop of a dozen lines does what the collector needs on every backend.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice

from analysis.samples import SampleBlock
from collector.assembly import DEFAULT_MAX_SAMPLES, Gap
from collector.ble import CONNECT_TIMEOUT_S, run_session
from collector.capture import CaptureWriter
from collector.devices.base import DeviceProfile
from collector.errors import BluetoothUnavailableError, ProtocolError
from collector.session import Clock, EventSink, Session, SessionResult, Sink

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


class CollectionControl:
    """Handle on a running `run_collection`: `request_stop()` ends it from anywhere."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self._stop = asyncio.Event()

    @property
    def stop_requested(self) -> bool:
        """True once `request_stop()` was called."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop the current session (stop command, flush) and do not reconnect."""
        self._stop.set()
        if self.session is not None:
            self.session.request_stop()

    async def sleep(self, delay_s: float) -> None:
        """Sleep `delay_s`, or less if a stop is requested meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), delay_s)
        except TimeoutError:
            pass


@dataclass(slots=True)
class CollectionResult:
    """What a collection with reconnects did: one SessionResult per connection."""

    sessions: list[SessionResult] = field(default_factory=list)
    link_gaps: list[Gap] = field(default_factory=list)  # last sample before a drop -> first after
    stopped_by: str = ""  # "request" | "device" | "gave up"

    @property
    def n_samples(self) -> int:
        """Samples delivered over all connections."""
        return sum(s.n_samples for s in self.sessions)

    @property
    def n_blocks(self) -> int:
        """Blocks delivered over all connections."""
        return sum(s.n_blocks for s in self.sessions)

    @property
    def n_decode_errors(self) -> int:
        """Undecodable notifications over all connections."""
        return sum(s.n_decode_errors for s in self.sessions)

    @property
    def n_notifications(self) -> int:
        """Data notifications over all connections."""
        return sum(s.n_notifications for s in self.sessions)


class _LinkGapSink:
    """Passes blocks on; before the first block after a drop, reports the drop's gap.

    The gap runs from the end of the last block delivered (any earlier connection) to the
    first sample of the new connection: the `link_gaps` entry, reported when it is known, so
    a collector killed later has already committed it.
    """

    def __init__(self, sink: Sink, events: EventSink | None) -> None:
        self.sink = sink
        self.events = events
        self.last_end_ns: int | None = None
        self.new_connection = False

    async def _report_link_gap(self, first_sample_ns: int) -> None:
        if self.new_connection:
            self.new_connection = False
            last = self.last_end_ns
            if self.events is not None and last is not None and first_sample_ns > last:
                await self.events.gap(last, first_sample_ns, "ble_disconnect")

    async def __call__(self, block: SampleBlock) -> None:
        await self._report_link_gap(block.t0_ns)
        self.last_end_ns = block.end_ns
        await self.sink(block)

    # The EventSink side: a draft of the new connection's first block already knows where the
    # connection's samples start, so the drop is committed before it (a run killed after only
    # a draft would otherwise lose the gap: the next run promotes the draft, which moves the
    # stream's end past the drop).
    async def draft(self, block: SampleBlock) -> None:
        assert self.events is not None
        await self._report_link_gap(block.t0_ns)
        await self.events.draft(block)

    async def gap(self, start_ns: int, end_ns: int, cause: str) -> None:
        assert self.events is not None
        await self.events.gap(start_ns, end_ns, cause)

    async def press(self, at_ns: int) -> None:
        assert self.events is not None
        await self.events.press(at_ns)


def _link_gaps(sessions: list[SessionResult]) -> list[Gap]:
    """Gap (predicted next sample time, missing time) across each drop with samples on both sides."""
    gaps: list[Gap] = []
    last: SessionResult | None = None
    for s in sessions:
        if s.first_sample_ns is None or s.end_ns is None:
            continue
        if last is not None and last.end_ns is not None:
            gaps.append(Gap(last.end_ns, s.first_sample_ns - last.end_ns))
        last = s
    return gaps


async def run_collection(
    device: BLEDevice | str,
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    sink: Sink,
    *,
    backoff: Backoff | None = None,
    control: CollectionControl | None = None,
    clock: Clock = time.time_ns,
    capture: CaptureWriter | None = None,
    backend: type[BaseBleakClient] | None = None,
    on_session: Callable[[Session, BleakClient], None] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    rng: random.Random | None = None,
    link_log: LinkLog | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    events: EventSink | None = None,
    **backend_kwargs: Any,
) -> CollectionResult:
    """Stream from `device` until stopped; after an unsolicited drop reconnect with backoff.

    Each connection subscribes, negotiates and starts again, with a fresh decoder (new clock
    anchor) and its own blocks; the time lost between connections is in `link_gaps`.
    `events` (optional) gets each link gap as it becomes known (`ble_disconnect`), the gaps a
    decoder finds inside a connection (`device_drop`) and button presses.

    Raises:
        BluetoothUnavailableError: no adapter or BLE stack (never retried).
        ProtocolError: the device refused a command, or no connection ever succeeded and
            the backoff gave up.
    """
    backoff = backoff or Backoff()
    control = control or CollectionControl()
    rng = rng or random.Random()
    address = device.address if isinstance(device, BLEDevice) else device
    link = link_log or LinkLog(name=address)
    result = CollectionResult()
    deliver = _LinkGapSink(sink, events)
    attempt = 0  # failed attempts since the last connection that streamed
    while not control.stop_requested:
        link.set(LinkState.CONNECTING, f"attempt {attempt + 1}" if attempt else "")
        current: list[Session] = []
        watchers: list[asyncio.Task[None]] = []

        def connected(
            session: Session,
            client: BleakClient,
            current: list[Session] = current,
            watchers: list[asyncio.Task[None]] = watchers,
        ) -> None:
            current.append(session)
            control.session = session
            link.set(LinkState.CONNECTED, f"MTU {client.mtu_size}")
            watchers.append(asyncio.get_running_loop().create_task(_log_streaming(session, link)))
            if control.stop_requested:
                session.request_stop()
            if on_session is not None:
                on_session(session, client)

        failure: ProtocolError | None = None
        deliver.new_connection = True
        try:
            session_result = await run_session(
                device,
                profile,
                requested,
                deliver,
                clock=clock,
                capture=capture,
                backend=backend,
                on_session=connected,
                max_samples=max_samples,
                connect_timeout_s=connect_timeout_s,
                events=deliver if events is not None else None,
                **backend_kwargs,
            )
        except BluetoothUnavailableError as exc:
            link.set(LinkState.GAVE_UP, str(exc))
            raise
        except ProtocolError as exc:
            if current and not current[0].link_lost:  # connected, and the device said no
                link.set(LinkState.GAVE_UP, str(exc))
                raise
            failure = exc
            link.set(LinkState.LINK_LOST, str(exc))
        else:
            result.sessions.append(session_result)
            if session_result.stopped_by != "disconnect":
                result.stopped_by = session_result.stopped_by
                break
            attempt = 0 if session_result.n_notifications else attempt
            link.set(LinkState.LINK_LOST, f"after {session_result.n_samples} samples")
        finally:
            control.session = None
            for task in watchers:
                task.cancel()
        attempt += 1
        if backoff.gives_up(attempt):
            link.set(LinkState.GAVE_UP, f"after {attempt - 1} reconnect attempts")
            if failure is not None and not result.sessions:
                raise failure
            result.stopped_by = "gave up"
            break
        delay_s = backoff.delay_s(attempt, rng)
        link.set(LinkState.RETRYING, f"retrying in {delay_s:.1f} s")
        await control.sleep(delay_s)
    if not result.stopped_by:
        result.stopped_by = "request"
    if result.stopped_by != "gave up":
        link.set(LinkState.STOPPED, result.stopped_by)
    result.link_gaps = _link_gaps(result.sessions)
    return result


async def _log_streaming(session: Session, link: LinkLog) -> None:
    await session.started.wait()
    rate = session.settings.get("sample_rate_hz") if session.settings else None
    link.set(LinkState.STREAMING, f"{rate} Hz" if rate else "")


__all__ = [
    "Backoff",
    "CollectionControl",
    "CollectionResult",
    "LinkLog",
    "LinkState",
    "run_collection",
]
