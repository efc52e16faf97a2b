"""The live wearable of the chaos test, through the unmodified bleak API: a late host joins the
stream where it is, the decoded times are the recording's, out of range drops the link."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from bleak.exc import BleakError

from analysis.samples import SampleBlock
from collector import devices
from collector.ble import collect
from collector.replay_live import LiveWearable, Timeline, WarpedClock
from fixtures.make_long_capture import LongRecording, build

NS = 1_000_000_000
SPEED = 60.0


@pytest.fixture(scope="module")
def short() -> LongRecording:
    return build(duration_s=120)


def _run(wearable: LiveWearable, wall_s: float) -> tuple[list[SampleBlock], Any]:
    blocks: list[SampleBlock] = []

    async def sink(block: SampleBlock) -> None:
        blocks.append(block)

    async def main() -> Any:
        def on_session(session: Any, _client: Any) -> None:
            asyncio.get_running_loop().call_later(wall_s, session.request_stop)

        return await collect(
            devices.get(wearable.timeline.profile), {}, sink,
            address=wearable.timeline.address, backend=wearable.client_backend,
            scanner_backend=wearable.scanner_backend, on_session=on_session,
            clock=wearable.clock,
        )  # fmt: skip

    return blocks, asyncio.run(main())


def test_a_late_host_joins_where_the_stream_is_and_decodes_the_recorded_times(
    short: LongRecording,
) -> None:
    tl = short.timeline
    start = int(short.truth_ns[0]) + 30 * NS  # the wearable streamed 30 s to nobody already
    wearable = LiveWearable(tl, WarpedClock(start, time.time_ns(), SPEED))
    joins: list[int] = []
    wearable.on_join = joins.append
    blocks, result = _run(wearable, 0.5)

    assert joins and joins[0] >= start
    assert result.stopped_by == "request"
    n = sum(b.n_samples for b in blocks)
    assert 0.5 * SPEED * 30 * 0.6 < n < 0.5 * SPEED * 30 * 1.6 + 200  # ~30 s at 30 Hz
    # The first sample decoded is the first one received after the join, with its time.
    first = int(np.searchsorted(short.rx_ns, joins[0]))
    accel = np.concatenate([b.accel_g for b in blocks])
    assert np.array_equal(accel, short.accel_g[first : first + n])
    t = np.concatenate([b.t0_ns + np.arange(b.n_samples) * 1e9 / b.fs_hz for b in blocks])
    assert np.abs(t - short.truth_ns[first : first + n]).max() < 1e9 / 30


def test_out_of_range_drops_the_link_and_refuses_connections(short: LongRecording) -> None:
    tl = short.timeline
    t0 = int(short.truth_ns[0])
    away = np.array([[t0 + 10 * NS, t0 + 100 * NS]], dtype=np.int64)
    tl_away = Timeline(
        tl.profile, tl.settings, tl.address, tl.name, tl.t_ns, tl.payload, away, tl.chars
    )
    wearable = LiveWearable(tl_away, WarpedClock(t0 + 5 * NS, time.time_ns(), SPEED))
    blocks, result = _run(wearable, 5.0)
    assert result.stopped_by == "disconnect"
    end = max(b.end_ns for b in blocks)
    assert t0 + 9 * NS < end <= t0 + 10 * NS + NS // 30  # streamed up to the drop, not beyond

    client = wearable.client_backend(tl.address)
    with pytest.raises(BleakError, match="not found"):
        asyncio.run(client.connect(pair=False))
