"""Polar PMD end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → negotiate → stream → forced drop → reconnect → stream → stop, checked sample by
sample against the source recording (the committed H10 capture's real wrist samples).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient
from numpy.typing import NDArray

from collector.devices import polar_pmd as pmd
from collector.errors import ProtocolError
from collector.reconnect import Backoff, LinkState
from collector.session import decode_capture
from tests.collector.emulation.harness import ATT_DEFAULT_MTU, EmulatedRadio
from tests.collector.emulation.polar import DELTA_FACTOR, EmulatedPolar
from tests.collector.emulation.scenario import (
    assert_equal_except_gap,
    drop_and_reconnect,
    sent_around_drop,
    start_collection,
)
from tests.collector.emulation.wearable import Recording

RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """1500 real wrist samples (30 s at 50 Hz, mG resolution) from the committed H10 capture."""
    capture = (
        Path(request.config.rootpath) / "fixtures/captures/polar_h10_wrist_1h.capture.jsonl.gz"
    )
    blocks = decode_capture(capture).blocks
    mg = np.round(np.concatenate([b.accel_g for b in blocks[:1]])[:1500].astype(np.float64) * 1000)
    return mg / 1000


def expected_g(dev: EmulatedPolar, samples_g: NDArray[np.float64]) -> NDArray[np.float32]:
    """What the SDK scaling (§1.4) makes of the device's wire integers, in g (float32)."""
    counts = dev.counts(samples_g)
    if dev.frame_type == 0x80:
        mg = np.trunc(counts.astype(np.float32) * np.float32(dev.factor) * np.float32(1000))
    else:
        mg = counts
    return (mg.astype(np.float64) / 1000).astype(np.float32)


@pytest.mark.parametrize("frame_type", [0x01, 0x80, 0x81])
async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    frame_type: int, source_g: NDArray[np.float64], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.link")
    async with EmulatedRadio() as radio:
        dev = await radio.add(
            EmulatedPolar(recording=Recording(source_g, RATE_HZ), frame_type=frame_type)
        )

        def set_device_clock() -> None:
            # while away, an app sets the device clock (+1 h 7 s): only a fresh anchor per
            # connection keeps the UTC times after the reconnect right
            dev.device_clock_origin_ns += 3_607_000_000_000

        run = await drop_and_reconnect(
            radio,
            dev,
            pmd.PROFILE,
            {"sample_rate_hz": 48, "range_g": 8},
            drop_after=300,
            while_away=set_device_clock,
        )
    result = run.result

    # negotiation: 48 Hz is not offered, 50 Hz is the nearest; renegotiated on reconnect
    wanted = {"SAMPLE_RATE": 50, "RESOLUTION": 16, "RANGE": 8, "CHANNELS": 3}
    assert dev.started_with == [wanted, wanted]
    assert [s.settings["sample_rate_hz"] for s in result.sessions] == [50, 50]
    factor = DELTA_FACTOR if frame_type == 0x80 else 1.0
    assert result.sessions[0].settings["factor"] == pytest.approx(factor, rel=1e-7)
    assert [c[1][:1] for c in dev.commands] == [b"\x01", b"\x02", b"\x01", b"\x02", b"\x03"]

    # samples: exactly the source (as the SDK scales it), minus what fell into the drop; the
    # gap starts where the first missing sample was due and lasts the missing samples
    kept = sent_around_drop(dev, len(source_g), 300)
    assert_equal_except_gap(
        run, dev, source_g, kept, PERIOD_NS, expected=lambda g: expected_g(dev, g)
    )

    # each state change logged once, in order
    states = run.states
    assert states == [
        LinkState.CONNECTING,
        LinkState.CONNECTED,
        LinkState.STREAMING,
        LinkState.LINK_LOST,
        LinkState.RETRYING,
        LinkState.CONNECTING,
        LinkState.CONNECTED,
        LinkState.STREAMING,
        LinkState.STOPPED,
    ]
    messages = [r.getMessage() for r in caplog.records if r.name == "collector.link"]
    assert len(messages) == len(states)
    assert "retrying in 0.0 s" in messages[4] and "link lost" in messages[3]


@pytest.mark.parametrize("frame_type", [0x01, 0x81])
async def test_mtu_cut_frames_are_decode_errors_not_garbage(
    frame_type: int, source_g: NDArray[np.float64], caplog: pytest.LogCaptureFixture
) -> None:
    async with EmulatedRadio(mtu=ATT_DEFAULT_MTU) as radio:
        dev = await radio.add(
            EmulatedPolar(recording=Recording(source_g[:300], RATE_HZ), frame_type=frame_type)
        )
        task, control, sink, _ = await start_collection(
            radio, dev, pmd.PROFILE, {"sample_rate_hz": 50}
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        await asyncio.sleep(0.05)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)
    n_frames = 300 // dev.frame_samples
    assert dev.n_sent == 300
    assert result.n_notifications == result.n_decode_errors == n_frames
    assert result.n_samples == 0 and sink.blocks == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cut by an ATT MTU of 23" in warnings[0]


async def test_device_initiated_stop_ends_cleanly(source_g: NDArray[np.float64]) -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source_g, RATE_HZ)))
        task, _control, sink, link = await start_collection(
            radio, dev, pmd.PROFILE, {"sample_rate_hz": 50}
        )
        await dev.wait_sent(200)
        await dev.stop_from_device()
        result = await asyncio.wait_for(task, 10)
        assert dev.connection is None or not dev.streaming
    (sent,) = dev.sent
    assert result.stopped_by == "device" and len(result.sessions) == 1
    np.testing.assert_array_equal(sink.samples(), expected_g(dev, source_g[: sent.stop]))
    assert link.state is LinkState.STOPPED and result.link_gaps == []
    assert [c[1][:1] for c in dev.commands] == [b"\x01", b"\x02"]  # no stop after the device's


async def test_emulator_answers_cp_like_the_device(source_g: NDArray[np.float64]) -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source_g[:100], RATE_HZ)))
        got: list[bytes] = []
        async with BleakClient(dev.address, backend=radio.client_backend) as client:
            assert await client.read_gatt_char(pmd.CP_UUID) == bytes([0x0F, 0x05, 0x00])
            await client.start_notify(pmd.CP_UUID, lambda _c, d: got.append(bytes(d)))
            await client.start_notify(pmd.DATA_UUID, lambda _c, d: None)
            for command in (
                pmd.GET_ACC_SETTINGS,
                pmd.start_command(52, 16, 8, 3),  # 52 Hz: a Verity Sense rate, not an H10 one
                pmd.start_command(50, 16, 16, 3),
                bytes([0x01, 0x01]),  # PPG settings: the H10 has no PPG
                bytes([0x0A, 0x02]),
                pmd.STOP_ACC,
            ):
                await client.write_gatt_char(pmd.CP_UUID, command, response=True)
            await asyncio.sleep(0.05)
    params = pmd.parse_settings(pmd.parse_cp_response(got[0]).params)
    assert params == {
        "SAMPLE_RATE": [25, 50, 100, 200],
        "RESOLUTION": [16],
        "RANGE": [2, 4, 8],
        "CHANNELS": [3],
    }
    statuses = [pmd.parse_cp_response(p).status for p in got]
    assert statuses == [
        pmd.CpStatus.SUCCESS,
        pmd.CpStatus.INVALID_SAMPLE_RATE,
        pmd.CpStatus.INVALID_RANGE,
        pmd.CpStatus.NOT_SUPPORTED,
        pmd.CpStatus.INVALID_OP_CODE,
        pmd.CpStatus.ALREADY_IN_STATE,
    ]


async def test_refused_start_is_not_retried(source_g: NDArray[np.float64]) -> None:
    async with EmulatedRadio() as radio:
        # a device that lists 100 Hz but whose recording is at 50: it refuses a 100 Hz start
        dev = await radio.add(EmulatedPolar(recording=Recording(source_g[:100], RATE_HZ)))
        task, _c, _s, link = await start_collection(
            radio, dev, pmd.PROFILE, {"sample_rate_hz": 100}
        )
        with pytest.raises(ProtocolError, match="INVALID_SAMPLE_RATE"):
            await asyncio.wait_for(task, 10)
    assert link.state is LinkState.GAVE_UP and radio.n_connects == 1


async def test_gives_up_when_the_device_is_gone(source_g: NDArray[np.float64]) -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source_g, RATE_HZ)))
        task, _c, sink, link = await start_collection(
            radio,
            dev,
            pmd.PROFILE,
            {"sample_rate_hz": 50},
            backoff=Backoff(initial_s=0.02, max_s=0.1, jitter=0.0, max_attempts=1),
            connect_timeout_s=0.2,
        )
        await dev.wait_sent(100)
        assert dev.device is not None
        await dev.device.stop_advertising()  # out of range: no more advertisements
        await dev.force_disconnect()
        result = await asyncio.wait_for(task, 20)
    assert result.stopped_by == "gave up" and len(result.sessions) == 1
    states = [s for s, _ in link.history]
    assert states[-1] is LinkState.GAVE_UP and states.count(LinkState.RETRYING) == 1
    assert sink.samples().shape[0] == dev.sent[0].stop


class DropsOnFirstStart(EmulatedPolar):
    """Loses the link instead of answering the first START (e.g. walked out of range)."""

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        if data[:1] == bytes([pmd.OP_START]) and not self.started_with and self.n_connections == 1:
            await self.force_disconnect()
            return
        await super().on_command(char_uuid, data)


async def test_link_lost_during_negotiation_is_retried(source_g: NDArray[np.float64]) -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(DropsOnFirstStart(recording=Recording(source_g[:300], RATE_HZ)))
        task, control, sink, link = await start_collection(
            radio, dev, pmd.PROFILE, {"sample_rate_hz": 50}
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)
    assert radio.n_connects == 2 and len(result.sessions) == 1  # the first never streamed
    (sent,) = dev.sent
    np.testing.assert_array_equal(sink.samples(), expected_g(dev, source_g[sent.start : sent.stop]))
    states = [s for s, _ in link.history]
    assert states[:5] == [
        LinkState.CONNECTING,
        LinkState.CONNECTED,
        LinkState.LINK_LOST,
        LinkState.RETRYING,
        LinkState.CONNECTING,
    ]
    assert "disconnected while waiting" in link.history[2][1]
