"""micro:bit end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → set period → stream → forced drop → reconnect → stream → stop, checked sample by
sample against the source (real wrist samples of the committed capture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient
from numpy.typing import NDArray

from collector.capture import read_capture
from collector.devices import microbit as mb
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.microbit import EmulatedMicrobit
from tests.collector.emulation.scenario import (
    assert_equal_except_gap,
    drop_and_reconnect,
    sent_around_drop,
)
from tests.collector.emulation.wearable import Recording

RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """1500 real wrist samples (30 s at 50 Hz, milli-g) from the committed micro:bit capture."""
    path = Path(request.config.rootpath) / "fixtures/captures/microbit_wrist_10min.capture.jsonl.gz"
    events = [e for e in read_capture(path).events if e.kind == "notify"][:1500]
    return np.concatenate([mb.MicrobitDecoder.parse(e.data) for e in events]).astype(np.float64)


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    async with EmulatedRadio() as radio:
        dev = EmulatedMicrobit(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        # 48 Hz is 20.8 ms: the nearest listed period is 20 ms
        run = await drop_and_reconnect(
            radio, dev, mb.PROFILE, {"sample_rate_hz": 48}, drop_after=200
        )  # a wide margin before the recording ends (slow CI)
    result = run.result

    assert dev.period_writes == [20, 20]  # set again on the new connection
    assert [s.settings for s in result.sessions] == [{"period_ms": 20, "sample_rate_hz": 50.0}] * 2

    kept = sent_around_drop(dev, len(source_g), 200)
    want = assert_equal_except_gap(run, dev, source_g, kept, PERIOD_NS)
    assert result.n_notifications == len(want)


async def test_emulator_period_snaps_and_reads_back(source_g: NDArray[np.float64]) -> None:
    """The device keeps the nearest listed period and reports it on read (what start relies on)."""
    async with EmulatedRadio() as radio:
        dev = EmulatedMicrobit(recording=Recording(source_g[:50], RATE_HZ))
        await radio.add(dev)
        async with BleakClient(dev.address, backend=radio.client_backend) as client:
            await client.write_gatt_char(mb.PERIOD_UUID, mb.period_command(50), response=True)
            assert mb.parse_period(bytes(await client.read_gatt_char(mb.PERIOD_UUID))) == 80
            await client.write_gatt_char(mb.PERIOD_UUID, mb.period_command(20), response=True)
            assert mb.parse_period(bytes(await client.read_gatt_char(mb.PERIOD_UUID))) == 20
    assert dev.period_writes == [50, 20]
