"""Thingy:52 end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → write motion config → stream → forced drop → reconnect → stream → stop, checked
sample by sample against the source (real wrist samples of the committed capture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient
from bumble.att import ATT_Error
from numpy.typing import NDArray

from collector.capture import read_capture
from collector.devices import thingy52 as th
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.scenario import (
    assert_equal_except_gap,
    drop_and_reconnect,
    sent_around_drop,
)
from tests.collector.emulation.thingy52 import EmulatedThingy52
from tests.collector.emulation.wearable import Recording

RATE_HZ = 30
PERIOD_NS = 1e9 / RATE_HZ


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """1500 real wrist samples (50 s at 30 Hz, g) from the committed Thingy:52 capture."""
    path = Path(request.config.rootpath) / "fixtures/captures/thingy52_wrist_15min.capture.jsonl.gz"
    events = [e for e in read_capture(path).events if e.kind == "notify"][:1500]
    return np.array([th.RawMotion.from_bytes(e.data).accel_g for e in events])


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    async with EmulatedRadio() as radio:
        dev = EmulatedThingy52(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        run = await drop_and_reconnect(
            radio, dev, th.PROFILE, {"sample_rate_hz": RATE_HZ}, drop_after=200
        )  # a wide margin before the recording ends (slow CI)
    result = run.result

    config = th.config_from_settings({"sample_rate_hz": RATE_HZ})
    assert dev.config_writes == [bytes(config)] * 2  # configured again on the new connection
    assert dev.config == config and dev.n_rejected == 0

    kept = sent_around_drop(dev, len(source_g), 200)
    want = assert_equal_except_gap(run, dev, source_g, kept, PERIOD_NS)
    assert result.n_notifications == len(want)


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
