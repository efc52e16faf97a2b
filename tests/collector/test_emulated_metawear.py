"""MetaWear end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → discover/configure/start → stream → forced drop → reconnect → stream → stop,
checked sample by sample against the source (real wrist samples of the committed capture).
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
from collector.devices import metawear as mw
from collector.reconnect import Backoff, LinkLog, LinkState
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.metawear import EmulatedMetaWear
from tests.collector.emulation.wearable import Recording

RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ
FAST = Backoff(initial_s=0.02, max_s=0.1, jitter=0.0)
LSB_PER_G = 4096.0  # ±8 g


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
    """1500 real wrist samples (30 s at 50 Hz, BMI270 ±8 g counts) from the committed capture."""
    path = Path(request.config.rootpath) / "fixtures/captures/metawear_wrist_15min.capture.jsonl.gz"
    capture = read_capture(path)
    dec = mw.MetaWearDecoder(capture.settings)
    blocks = [
        b
        for e in capture.events[:2000]
        if e.kind == "notify" and e.char == mw.NOTIFY_UUID
        for b in dec.decode(e.data, e.t_ns)
    ]
    return np.concatenate([b.accel_g for b in blocks])[:1500].astype(np.float64)


def utc_of(dev: EmulatedMetaWear, index: int) -> int:
    """True UTC of recording sample `index` (the emulator's host time base)."""
    assert dev._origin_k is not None
    return dev.utc_base_ns + dev.device_time_ns(dev._origin_k + index)


@pytest.mark.parametrize("packed", [True, False])
async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    packed: bool, source_g: NDArray[np.float64]
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    requested = {"chip": "BMI270", "sample_rate_hz": 50, "range_g": 8, "packed": packed}
    async with EmulatedRadio() as radio:
        dev = EmulatedMetaWear(recording=Recording(source_g, RATE_HZ), packed=packed)
        await radio.add(dev)
        found = await ble.find_device(
            mw.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
        )
        assert found.address == dev.address
        control, sink, link = reconnect.CollectionControl(), Collect(), LinkLog(name=dev.name)
        task = asyncio.get_running_loop().create_task(
            reconnect.run_collection(
                found,
                mw.PROFILE,
                requested,
                sink,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
                link_log=link,
            )
        )
        await dev.wait_sent(300)  # a wide margin before the recording ends (slow CI)
        await dev.force_disconnect()
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)

    # configured explicitly on each connection, the SDK's byte sequence
    assert dev.configured == [(50.0, 8), (50.0, 8)]
    data_reg = "05" if packed else "04"
    one_start = ["0380", "0303a702", f"03{data_reg}01", "03020100", "030101"]
    stop = ["030100", "03020001", "030400", "030500"]
    assert [d.hex() for _, d in dev.commands] == one_start + one_start + stop
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert result.stopped_by == "request" and result.n_decode_errors == 0

    # samples: exactly the source, minus what fell into the drop
    first, second = dev.sent
    assert (first.connection, second.connection) == (1, 2)
    assert first.start == 0 and first.stop >= 300 and second.start > first.stop
    assert second.stop == len(source_g)
    want = np.concatenate([source_g[: first.stop], source_g[second.start :]])
    expected = (mw.g_to_counts(want, LSB_PER_G) / LSB_PER_G).astype(np.float32)
    np.testing.assert_array_equal(sink.samples(), expected)
    assert result.sessions[0].n_samples == first.stop
    # one discovery reply per connection plus the data notifications
    per_note = mw.PACKED_SAMPLES if packed else 1
    assert result.n_notifications == 2 + len(want) // per_note

    # times: sample counting anchored per connection, exact on the emulator's clock
    assert abs(sink.blocks[0].t0_ns - utc_of(dev, 0)) < 1_000
    second_t0 = result.sessions[1].first_sample_ns
    assert second_t0 is not None
    after = [b for b in sink.blocks if b.t0_ns >= second_t0]
    assert sum(b.n_samples for b in after) == len(source_g) - second.start
    assert abs(after[0].t0_ns - utc_of(dev, second.start)) < 1_000
    (gap,) = result.link_gaps
    assert abs(gap.start_ns - utc_of(dev, first.stop)) < PERIOD_NS
    assert abs(gap.length_ns - (second.start - first.stop) * PERIOD_NS) < PERIOD_NS
    states = [s for s, _ in link.history]
    assert states.count(LinkState.STREAMING) == 2 and states[-1] is LinkState.STOPPED


async def test_wrong_chip_setting_refuses_the_stream(source_g: NDArray[np.float64]) -> None:
    """A BMI160 board configured as a BMI270: the discovery reply makes the decoder refuse."""
    async with EmulatedRadio() as radio:
        dev = EmulatedMetaWear(
            recording=Recording(source_g[:150], RATE_HZ), chip="BMI160", revision=1
        )
        await radio.add(dev)
        found = await ble.find_device(
            mw.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
        )
        control, sink = reconnect.CollectionControl(), Collect()
        task = asyncio.get_running_loop().create_task(
            reconnect.run_collection(
                found,
                mw.PROFILE,
                {"chip": "BMI270", "sample_rate_hz": 50},
                sink,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
            )
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        await asyncio.sleep(0.05)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)
    # the BMI160 ignores BMI270 bytes it cannot parse the same way: nothing it sends is decoded
    assert result.n_decode_errors >= 1 and result.n_notifications >= 1
    assert dev.commands[0][1] == mw.DISCOVERY
