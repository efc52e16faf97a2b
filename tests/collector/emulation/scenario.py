"""The end-to-end scenario every emulated device runs, and its "equal except one gap" checks.

scan → connect → configure → stream → forced drop → reconnect → stream → stop, through the
unmodified `BleakScanner`/`BleakClient` on the bumble radio; then the collected samples must equal
the source except one gap, reported with its start and length. The device tests keep only what is
specific to their device (source, emulator, commands written, notification counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector import ble
from collector.devices.base import DeviceProfile
from collector.reconnect import (
    Backoff,
    CollectionControl,
    CollectionResult,
    LinkLog,
    LinkState,
    run_collection,
)
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.wearable import EmulatedWearable

# Reconnect quickly in tests; the policy itself is tested in test_ble_reconnect.py.
FAST = Backoff(initial_s=0.02, max_s=0.1, jitter=0.0)
# Block times are exact on the emulator's clock up to float rounding of the anchor.
T0_TOL_NS = 1_000


class Collect:
    """Async sink keeping the blocks."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []

    async def __call__(self, block: SampleBlock) -> None:
        self.blocks.append(block)

    def samples(self) -> NDArray[np.float32]:
        return np.concatenate([b.accel_g for b in self.blocks])


def utc_of(dev: EmulatedWearable, index: int) -> int:
    """True UTC of recording sample `index` (the emulator's host time base)."""
    assert dev._origin_k is not None
    return dev.utc_base_ns + dev.device_time_ns(dev._origin_k + index)


def as_float32(samples_g: NDArray[np.float64]) -> NDArray[np.float32]:
    """What a lossless decoder delivers for source samples `samples_g` (g)."""
    return samples_g.astype(np.float32)


@dataclass
class Run:
    """What one collection left behind: the result, the sink's blocks and the link history."""

    result: CollectionResult
    sink: Collect
    link: LinkLog

    @property
    def states(self) -> list[LinkState]:
        return [s for s, _ in self.link.history]


async def start_collection(
    radio: EmulatedRadio,
    dev: EmulatedWearable,
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    backoff: Backoff = FAST,
    **kw: Any,
) -> tuple[asyncio.Task[CollectionResult], CollectionControl, Collect, LinkLog]:
    """Scan for `dev` (it must be the one found) and run the collection in a task."""
    found = await ble.find_device(profile, timeout_s=5, scanner_backend=radio.scanner_backend)
    assert found.address == dev.address
    control, sink, link = CollectionControl(), Collect(), LinkLog(name=dev.name)
    task = asyncio.get_running_loop().create_task(
        run_collection(
            found,
            profile,
            requested,
            sink,
            backoff=backoff,
            control=control,
            clock=dev.host_clock,
            backend=radio.client_backend,
            link_log=link,
            **kw,
        )
    )
    return task, control, sink, link


async def drop_and_reconnect(
    radio: EmulatedRadio,
    dev: EmulatedWearable,
    profile: DeviceProfile,
    requested: Mapping[str, Any],
    *,
    drop_after: int,
    exhausted_timeout_s: float = 10,
    while_away: Callable[[], None] | None = None,
) -> Run:
    """Stream `drop_after` samples, drop the link, let it reconnect and stream to the end, stop."""
    task, control, sink, link = await start_collection(radio, dev, profile, requested)
    await dev.wait_sent(drop_after)
    await dev.force_disconnect()
    if while_away is not None:
        while_away()
    await asyncio.wait_for(dev.exhausted.wait(), exhausted_timeout_s)
    control.request_stop()
    result = await asyncio.wait_for(task, 10)
    return Run(result, sink, link)


def sent_around_drop(
    dev: EmulatedWearable, n_source: int, drop_after: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two sent [start, stop) ranges: from the start to the drop, then after it to the end."""
    first, second = dev.sent
    assert (first.connection, second.connection) == (1, 2)
    assert first.start == 0 and first.stop >= drop_after and second.start > first.stop
    assert second.stop == n_source
    return (first.start, first.stop), (second.start, second.stop)


def assert_equal_except_gap(
    run: Run,
    dev: EmulatedWearable,
    source_g: NDArray[np.float64],
    kept: tuple[tuple[int, int], tuple[int, int]],
    period_ns: float,
    *,
    expected: Callable[[NDArray[np.float64]], NDArray[np.float32]] = as_float32,
    gap_tol_ns: float | None = None,
) -> NDArray[np.float64]:
    """Samples = source[kept[0]] + source[kept[1]], on time, one gap between; return those.

    `kept` are the [start, stop) recording indices the host can know on connection 1 and 2;
    `gap_tol_ns` (default one period) bounds the error of the gap's start and length.
    """
    (start1, stop1), (start2, stop2) = kept
    result, sink = run.result, run.sink
    tol_ns = period_ns if gap_tol_ns is None else gap_tol_ns
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert result.stopped_by == "request" and result.n_decode_errors == 0

    # samples: exactly the source, minus what fell into the drop
    want = np.concatenate([source_g[start1:stop1], source_g[start2:stop2]])
    np.testing.assert_array_equal(sink.samples(), expected(want))
    # blocks never straddle the drop; each connection has its own anchor and blocks
    assert result.sessions[0].n_samples == stop1 - start1
    assert sum(b.n_samples for b in sink.blocks) == len(want)

    # times: sample counting anchored per connection, exact on the emulator's clock
    assert abs(sink.blocks[0].t0_ns - utc_of(dev, start1)) < T0_TOL_NS
    second_t0 = result.sessions[1].first_sample_ns
    assert second_t0 is not None and abs(second_t0 - utc_of(dev, start2)) < T0_TOL_NS
    after = [b for b in sink.blocks if b.t0_ns >= second_t0]
    assert sum(b.n_samples for b in after) == stop2 - start2
    assert abs(after[0].t0_ns - utc_of(dev, start2)) < T0_TOL_NS

    # the gap: starts where sample stop1 was due, lasts the missing samples
    (gap,) = result.link_gaps
    assert abs(gap.start_ns - utc_of(dev, stop1)) < tol_ns
    assert abs(gap.length_ns - (start2 - stop1) * period_ns) < tol_ns
    assert run.states.count(LinkState.STREAMING) == 2 and run.states[-1] is LinkState.STOPPED
    return want
