"""WitMotion end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → unlock/rate/save → stream (frames split and joined across notifications) →
forced drop → reconnect → stream → stop, checked sample by sample against the source (real
wrist samples of the committed capture).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector import ble, reconnect
from collector.capture import read_capture
from collector.devices import witmotion as wm
from collector.reconnect import Backoff, LinkLog, LinkState
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.wearable import Recording
from tests.collector.emulation.witmotion import EmulatedWitMotion

RATE_HZ = 50
PERIOD_NS = 1e9 / RATE_HZ
FAST = Backoff(initial_s=0.02, max_s=0.1, jitter=0.0)


class Collect:
    """Async sink keeping the blocks."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []

    async def __call__(self, block: SampleBlock) -> None:
        self.blocks.append(block)

    def samples(self) -> NDArray[np.float32]:
        return np.concatenate([b.accel_g for b in self.blocks])


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """2500 real wrist samples (50 s at 50 Hz, g) from the committed WitMotion capture."""
    path = (
        Path(request.config.rootpath) / "fixtures/captures/witmotion_wrist_10min.capture.jsonl.gz"
    )
    stream = b"".join(e.data for e in read_capture(path).events if e.kind == "notify")
    frames = [wm.WitFrame.from_bytes(stream[k : k + 20]) for k in range(0, 2500 * 20, 20)]
    return np.array([f.acc for f in frames], dtype=np.float64) * wm.FULL_SCALE_G / 32768


def utc_of(dev: EmulatedWitMotion, index: int) -> int:
    """True UTC of recording sample `index` (the emulator's host time base)."""
    assert dev._origin_k is not None
    return dev.utc_base_ns + dev.device_time_ns(dev._origin_k + index)


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    async with EmulatedRadio() as radio:
        dev = EmulatedWitMotion(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        found = await ble.find_device(
            wm.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
        )
        assert found.address == dev.address
        control, sink, link = reconnect.CollectionControl(), Collect(), LinkLog(name=dev.name)
        task = asyncio.get_running_loop().create_task(
            reconnect.run_collection(
                found,
                wm.PROFILE,
                {"sample_rate_hz": RATE_HZ},
                sink,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
                link_log=link,
            )
        )
        await dev.wait_sent(400)  # a wide margin before the recording ends (slow CI)
        await dev.force_disconnect()
        await asyncio.wait_for(dev.exhausted.wait(), 15)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)

    start = [wm.UNLOCK, wm.rate_command(RATE_HZ), wm.SAVE]
    assert [data for _, data in dev.commands] == start * 2  # configured on each connection
    assert dev.saved_rate_code == wm.RATE_CODES[RATE_HZ] and dev.n_saves == 2
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert result.stopped_by == "request" and result.n_decode_errors == 0

    first, second = dev.sent
    assert (first.connection, second.connection) == (1, 2)
    assert first.start == 0 and first.stop >= 400 and second.start > first.stop
    assert second.stop == len(source_g)
    want = np.concatenate([source_g[: first.stop], source_g[second.start :]])
    np.testing.assert_array_equal(sink.samples(), want.astype(np.float32))
    # Two notifications per tick of three frames, cut inside frames: all reassembled.
    assert result.n_notifications == dev.n_data_notifications >= 2 * (len(want) // 3)

    assert abs(sink.blocks[0].t0_ns - utc_of(dev, 0)) < 1_000
    second_t0 = result.sessions[1].first_sample_ns
    assert second_t0 is not None and abs(second_t0 - utc_of(dev, second.start)) < 1_000
    (gap,) = result.link_gaps
    assert abs(gap.start_ns - utc_of(dev, first.stop)) < PERIOD_NS
    assert abs(gap.length_ns - (second.start - first.stop) * PERIOD_NS) < PERIOD_NS
    states = [s for s, _ in link.history]
    assert states.count(LinkState.STREAMING) == 2 and states[-1] is LinkState.STOPPED
