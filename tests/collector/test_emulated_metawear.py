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

from collector.capture import read_capture
from collector.devices import metawear as mw
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.metawear import EmulatedMetaWear
from tests.collector.emulation.scenario import (
    assert_equal_except_gap,
    drop_and_reconnect,
    sent_around_drop,
    start_collection,
)
from tests.collector.emulation.wearable import Recording

RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ
LSB_PER_G = 4096.0  # ±8 g


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


@pytest.mark.parametrize("packed", [True, False])
async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    packed: bool, source_g: NDArray[np.float64]
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    requested = {"chip": "BMI270", "sample_rate_hz": 50, "range_g": 8, "packed": packed}
    async with EmulatedRadio() as radio:
        dev = EmulatedMetaWear(recording=Recording(source_g, RATE_HZ), packed=packed)
        await radio.add(dev)
        # a wide margin before the recording ends (slow CI)
        run = await drop_and_reconnect(radio, dev, mw.PROFILE, requested, drop_after=300)
    result = run.result

    # configured explicitly on each connection, the SDK's byte sequence
    assert dev.configured == [(50.0, 8), (50.0, 8)]
    data_reg = "05" if packed else "04"
    one_start = ["0380", "0303a702", f"03{data_reg}01", "03020100", "030101"]
    stop = ["030100", "03020001", "030400", "030500"]
    assert [d.hex() for _, d in dev.commands] == one_start + one_start + stop

    # samples: exactly the source (as the BMI270's counts), minus what fell into the drop
    kept = sent_around_drop(dev, len(source_g), 300)
    want = assert_equal_except_gap(
        run,
        dev,
        source_g,
        kept,
        PERIOD_NS,
        expected=lambda g: (mw.g_to_counts(g, LSB_PER_G) / LSB_PER_G).astype(np.float32),
    )
    # one discovery reply per connection plus the data notifications
    per_note = mw.PACKED_SAMPLES if packed else 1
    assert result.n_notifications == 2 + len(want) // per_note


async def test_wrong_chip_setting_refuses_the_stream(source_g: NDArray[np.float64]) -> None:
    """A BMI160 board configured as a BMI270: the discovery reply makes the decoder refuse."""
    async with EmulatedRadio() as radio:
        dev = EmulatedMetaWear(
            recording=Recording(source_g[:150], RATE_HZ), chip="BMI160", revision=1
        )
        await radio.add(dev)
        task, control, _sink, _link = await start_collection(
            radio, dev, mw.PROFILE, {"chip": "BMI270", "sample_rate_hz": 50}
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        await asyncio.sleep(0.05)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)
    # the BMI160 ignores BMI270 bytes it cannot parse the same way: nothing it sends is decoded
    assert result.n_decode_errors >= 1 and result.n_notifications >= 1
    assert dev.commands[0][1] == mw.DISCOVERY
