"""Gap events from a live collection, through the unmodified BleakClient and the bumble emulator.

The sink of `otmon collect` (OutboxSink over a real outbox file) gets the blocks and the
events: a forced drop is one `ble_disconnect` gap, frames the device's radio lost inside a
connection are one `device_drop` gap; each spans the samples really missing (within one
sample period) and the samples stored are exactly the source minus those.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from collector import ble
from collector.devices import polar_pmd as pmd
from collector.outbox import Outbox
from collector.outbox_sink import OutboxSink
from collector.reconnect import CollectionControl, CollectionResult, run_collection
from collector.session import decode_capture
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.scenario import FAST, utc_of
from tests.collector.emulation.wearable import Recording

RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ
REQUESTED = {"sample_rate_hz": 50, "range_g": 8}


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """1000 real wrist samples (20 s at 50 Hz, mG resolution) from the committed H10 capture."""
    capture = (
        Path(request.config.rootpath) / "fixtures/captures/polar_h10_wrist_1h.capture.jsonl.gz"
    )
    accel = decode_capture(capture).blocks[0].accel_g[:1000].astype(np.float64)
    return np.round(accel * 1000) / 1000


async def _collect(
    radio: EmulatedRadio, dev: EmulatedPolar, sink: OutboxSink
) -> tuple[asyncio.Task[CollectionResult], CollectionControl]:
    found = await ble.find_device(pmd.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend)
    control = CollectionControl()
    task = asyncio.get_running_loop().create_task(
        run_collection(
            found,
            pmd.PROFILE,
            REQUESTED,
            sink,
            backoff=FAST,
            control=control,
            clock=dev.host_clock,
            backend=radio.client_backend,
            events=sink,
        )
    )
    return task, control


def _stored(box: Outbox) -> NDArray[np.float32]:
    return np.concatenate([b.accel_g() for b in box.pending(10_000)])


async def test_drop_is_one_ble_disconnect_gap_of_the_missing_span(
    tmp_path: Path, source_g: NDArray[np.float64]
) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        sink = OutboxSink(box)
        async with EmulatedRadio() as radio:
            dev = await radio.add(EmulatedPolar(recording=Recording(source_g, RATE_HZ)))
            task, control = await _collect(radio, dev, sink)
            await dev.wait_sent(300)
            await dev.force_disconnect()
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            result = await asyncio.wait_for(task, 10)
        (first, second) = dev.sent
        (event,) = box.pending_events(10)
        samples = _stored(box)
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert event.kind == "gap" and event.fields["cause"] == "ble_disconnect"
    # the span of the samples the host never got: first.stop .. second.start
    assert abs(event.fields["start_ns"] - utc_of(dev, first.stop)) < PERIOD_NS
    assert abs(event.fields["end_ns"] - utc_of(dev, second.start)) < PERIOD_NS
    assert second.start - first.stop >= 5  # a real gap, not a rounding
    # it is the link gap run_collection reports
    (gap,) = result.link_gaps
    assert (event.fields["start_ns"], event.fields["end_ns"]) == (
        gap.start_ns,
        gap.start_ns + gap.length_ns,
    )
    want = np.concatenate([source_g[first.start : first.stop], source_g[second.start :]])
    np.testing.assert_allclose(samples, want, atol=1e-6)


async def test_frames_lost_inside_a_connection_are_one_device_drop_gap(
    tmp_path: Path, source_g: NDArray[np.float64]
) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        sink = OutboxSink(box)
        async with EmulatedRadio() as radio:
            dev = await radio.add(EmulatedPolar(recording=Recording(source_g, RATE_HZ)))
            dev.lose = (400, 530)  # 13 frames of 10 samples (2.6 s) never reach the host
            task, control = await _collect(radio, dev, sink)
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            result = await asyncio.wait_for(task, 10)
        (event,) = box.pending_events(10)
        samples = _stored(box)
        kept = [(r.start, r.stop) for r in dev.sent]
    assert [s.stopped_by for s in result.sessions] == ["request"] and result.link_gaps == []
    (before, after) = kept  # one connection, the lost frames between
    assert before[1] <= 400 and after[0] >= 530
    assert event.fields["cause"] == "device_drop" and event.fields["stream"] == "acc"
    assert abs(event.fields["start_ns"] - utc_of(dev, before[1])) < PERIOD_NS
    assert abs(event.fields["end_ns"] - utc_of(dev, after[0])) < PERIOD_NS
    want = np.concatenate([source_g[before[0] : before[1]], source_g[after[0] : after[1]]])
    np.testing.assert_allclose(samples, want, atol=1e-6)
