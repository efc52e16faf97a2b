"""Thingy:52 end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → write motion config → stream → forced drop → reconnect → stream → stop, checked
sample by sample against the source (real wrist samples of the committed capture).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient
from bumble.att import ATT_Error
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector import ble, reconnect
from collector.capture import read_capture
from collector.devices import thingy52 as th
from collector.reconnect import Backoff, LinkLog, LinkState
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.thingy52 import EmulatedThingy52
from tests.collector.emulation.wearable import Recording

RATE_HZ = 30
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
    """1500 real wrist samples (50 s at 30 Hz, g) from the committed Thingy:52 capture."""
    path = Path(request.config.rootpath) / "fixtures/captures/thingy52_wrist_15min.capture.jsonl.gz"
    events = [e for e in read_capture(path).events if e.kind == "notify"][:1500]
    return np.array([th.RawMotion.from_bytes(e.data).accel_g for e in events])


def utc_of(dev: EmulatedThingy52, index: int) -> int:
    """True UTC of recording sample `index` (the emulator's host time base)."""
    assert dev._origin_k is not None
    return dev.utc_base_ns + dev.device_time_ns(dev._origin_k + index)


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    async with EmulatedRadio() as radio:
        dev = EmulatedThingy52(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        found = await ble.find_device(
            th.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
        )
        assert found.address == dev.address
        control, sink, link = reconnect.CollectionControl(), Collect(), LinkLog(name=dev.name)
        task = asyncio.get_running_loop().create_task(
            reconnect.run_collection(
                found,
                th.PROFILE,
                {"sample_rate_hz": RATE_HZ},
                sink,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
                link_log=link,
            )
        )
        await dev.wait_sent(200)  # a wide margin before the recording ends (slow CI)
        await dev.force_disconnect()
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)

    config = th.config_from_settings({"sample_rate_hz": RATE_HZ})
    assert dev.config_writes == [bytes(config)] * 2  # configured again on the new connection
    assert dev.config == config and dev.n_rejected == 0
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert result.stopped_by == "request" and result.n_decode_errors == 0

    first, second = dev.sent
    assert (first.connection, second.connection) == (1, 2)
    assert first.start == 0 and first.stop >= 200 and second.start > first.stop
    assert second.stop == len(source_g)
    want = np.concatenate([source_g[: first.stop], source_g[second.start :]])
    np.testing.assert_array_equal(sink.samples(), want.astype(np.float32))
    assert result.n_notifications == len(want) and result.sessions[0].n_samples == first.stop

    assert abs(sink.blocks[0].t0_ns - utc_of(dev, 0)) < 1_000
    second_t0 = result.sessions[1].first_sample_ns
    assert second_t0 is not None and abs(second_t0 - utc_of(dev, second.start)) < 1_000
    (gap,) = result.link_gaps
    assert abs(gap.start_ns - utc_of(dev, first.stop)) < PERIOD_NS
    assert abs(gap.length_ns - (second.start - first.stop) * PERIOD_NS) < PERIOD_NS
    states = [s for s, _ in link.history]
    assert states.count(LinkState.STREAMING) == 2 and states[-1] is LinkState.STOPPED


async def test_emulator_rejects_out_of_range_config(source_g: NDArray[np.float64]) -> None:
    """A config outside the firmware's ranges is refused with an ATT error; reads give it back."""
    async with EmulatedRadio() as radio:
        dev = EmulatedThingy52(recording=Recording(source_g[:30], RATE_HZ))
        await radio.add(dev)
        async with BleakClient(dev.address, backend=radio.client_backend) as client:
            bad = bytes.fromhex("e803e803f401c90001")  # 201 Hz
            # The harness backend passes bumble's ATT error through BleakClient untranslated.
            with pytest.raises(ATT_Error, match="VALUE_NOT_ALLOWED"):
                await client.write_gatt_char(th.CONFIG_UUID, bad, response=True)
            good = bytes(th.MotionConfig(1000, 1000, 500, 30, 1))
            await client.write_gatt_char(th.CONFIG_UUID, good, response=True)
            assert bytes(await client.read_gatt_char(th.CONFIG_UUID)) == good
    assert dev.n_rejected == 1
