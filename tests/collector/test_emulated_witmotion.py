"""WitMotion end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → unlock/rate/save → stream (frames split and joined across notifications) →
forced drop → reconnect → stream → stop, checked sample by sample against the source (real
wrist samples of the committed capture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from collector.capture import read_capture
from collector.devices import witmotion as wm
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.scenario import (
    assert_equal_except_gap,
    drop_and_reconnect,
    sent_around_drop,
)
from tests.collector.emulation.wearable import Recording
from tests.collector.emulation.witmotion import EmulatedWitMotion

RATE_HZ = 50
PERIOD_NS = 1e9 / RATE_HZ


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """2500 real wrist samples (50 s at 50 Hz, g) from the committed WitMotion capture."""
    path = (
        Path(request.config.rootpath) / "fixtures/captures/witmotion_wrist_10min.capture.jsonl.gz"
    )
    stream = b"".join(e.data for e in read_capture(path).events if e.kind == "notify")
    frames = [wm.WitFrame.from_bytes(stream[k : k + 20]) for k in range(0, 2500 * 20, 20)]
    return np.array([f.acc for f in frames], dtype=np.float64) * wm.FULL_SCALE_G / 32768


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every sent sample arrives once, on time; the drop is one gap of the missing samples."""
    async with EmulatedRadio() as radio:
        dev = EmulatedWitMotion(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        run = await drop_and_reconnect(
            radio,
            dev,
            wm.PROFILE,
            {"sample_rate_hz": RATE_HZ},
            drop_after=400,  # a wide margin before the recording ends (slow CI)
            exhausted_timeout_s=15,
        )
    result = run.result

    start = [wm.UNLOCK, wm.rate_command(RATE_HZ), wm.SAVE]
    assert [data for _, data in dev.commands] == start * 2  # configured on each connection
    assert dev.saved_rate_code == wm.RATE_CODES[RATE_HZ] and dev.n_saves == 2

    kept = sent_around_drop(dev, len(source_g), 400)
    want = assert_equal_except_gap(run, dev, source_g, kept, PERIOD_NS)
    # Two notifications per tick of three frames, cut inside frames: all reassembled.
    assert result.n_notifications == dev.n_data_notifications >= 2 * (len(want) // 3)
