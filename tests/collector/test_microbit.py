"""micro:bit profile: period, decoding, property tests (the derived vector: test_vectors.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.samples import SampleBlock
from collector.capture import CaptureEvent, CaptureWriter, read_capture
from collector.devices import microbit as mb
from collector.errors import DecodeError, ProtocolError
from collector.replay import replay_capture
from collector.session import decode_capture
from tests.collector.conftest import REPO

T_NS = 1_700_000_000_000_000_000


class FakeLink:
    """Records writes; optionally answers reads like the device (the BLE path: emulator test)."""

    def __init__(self, actual: bytes | None = None) -> None:
        self.writes: list[tuple[str, bytes]] = []
        self.actual = actual

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append((char_uuid, data))

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        raise AssertionError("micro:bit start waits for no notification")


class ReadingLink(FakeLink):
    async def read(self, char_uuid: str) -> bytes:
        assert char_uuid == mb.PERIOD_UUID
        return self.actual or self.writes[-1][1]


def test_nearest_period() -> None:
    """The device's rule: the nearest listed period (ties: the longer one)."""
    assert mb.nearest_period_ms(20) == 20
    assert mb.nearest_period_ms(25) == 20
    assert mb.nearest_period_ms(50) == 80  # 30 from 20, 30 from 80: the longer
    assert mb.nearest_period_ms(0.3) == 1
    assert mb.nearest_period_ms(1000) == 640


def test_start_writes_period_and_reads_it_back() -> None:
    """Period as uint16 LE ms; the read-back value wins."""
    link = ReadingLink(actual=(80).to_bytes(2, "little"))
    got = asyncio.run(mb.PROFILE.start(link, {"period_ms": 50}))
    assert link.writes == [(mb.PERIOD_UUID, bytes.fromhex("5000"))]
    assert got == {"period_ms": 80, "sample_rate_hz": 12.5}
    got = asyncio.run(mb.PROFILE.start(ReadingLink(), {"sample_rate_hz": 50}))
    assert got == {"period_ms": 20, "sample_rate_hz": 50.0}


def test_start_without_read_applies_the_device_rule() -> None:
    """A link without read() gets the nearest listed period."""
    link = FakeLink()
    got = asyncio.run(mb.PROFILE.start(link, {"period_ms": 15}))
    assert got["period_ms"] == 20 and link.writes[0][1] == bytes.fromhex("1400")
    assert asyncio.run(mb.PROFILE.start(FakeLink(), {}))["period_ms"] == mb.DEFAULT_PERIOD_MS


def test_bad_period_read_back_is_a_protocol_error() -> None:
    """A malformed or zero read-back is refused."""
    with pytest.raises(ProtocolError, match="period"):
        asyncio.run(mb.PROFILE.start(ReadingLink(actual=b"\x00\x00"), {}))
    with pytest.raises(ProtocolError, match="period"):
        mb.parse_period(b"\x14")


def test_decode_one_sample_signed_milli_g_and_timing() -> None:
    """int16 LE milli-g, signed (the source's uint16_t is wrong); timed at 1000 / period Hz."""
    dec = mb.MicrobitDecoder({"period_ms": 20})
    (b1,) = dec.decode(bytes.fromhex("f4ff300004fc"), T_NS)
    assert b1.accel_g.tolist() == np.asarray([[-0.012, 0.048, -1.020]], np.float32).tolist()
    assert (b1.t0_ns, b1.fs_hz) == (T_NS, 50.0)
    (b2,) = dec.decode(mb.encode_sample((1000, -32768, 32767)), T_NS + 20_000_000)
    assert b2.t0_ns == T_NS + 20_000_000
    assert b2.accel_g.tolist() == np.asarray([[1.0, -32.768, 32.767]], np.float32).tolist()


@pytest.mark.parametrize("payload", ["", "f4ff3000", "f4ff300004fc00", "f4ff300004fcf4ff300004fc"])
def test_wrong_length_is_a_decode_error(payload: str) -> None:
    """Anything but 6 bytes is refused."""
    with pytest.raises(DecodeError, match="6 bytes"):
        mb.MicrobitDecoder({}).decode(bytes.fromhex(payload), T_NS)


def test_matches() -> None:
    """By service UUID or the "BBC micro:bit" name."""
    assert mb.PROFILE.matches(AdvertisementData("BBC micro:bit [zatov]", {}, {}, [], None, -60, ()))
    assert mb.PROFILE.matches(AdvertisementData(None, {}, {}, [mb.SERVICE_UUID], None, -60, ()))
    assert not mb.PROFILE.matches(AdvertisementData("MetaWear", {}, {}, [], None, -60, ()))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=16), period=st.sampled_from(mb.VALID_PERIODS_MS))
def test_arbitrary_bytes_give_blocks_or_decode_error(data: bytes, period: int) -> None:
    """Nothing but blocks or DecodeError comes out of the decoder."""
    try:
        blocks = mb.MicrobitDecoder({"period_ms": period}).decode(data, T_NS)
    except DecodeError:
        assert len(data) != 6
        return
    assert len(blocks) == 1 and blocks[0].accel_g.shape == (1, 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=1, max_size=20))
def test_encode_decode_round_trip(samples: list[tuple[int, int, int]]) -> None:
    """milli-g -> notification -> decoder -> milli-g is exact; repeats 20 ms apart are samples."""
    dec = mb.MicrobitDecoder({"period_ms": 20})
    out = []
    for k, s in enumerate(samples):
        (block,) = dec.decode(mb.encode_sample(s), T_NS + k * 20_000_000)
        assert block.t0_ns == T_NS + k * 20_000_000
        out.append(tuple(int(v) for v in mb.g_to_mg(block.accel_g)[0]))
    assert out == samples


FIXTURE = REPO / "fixtures" / "captures" / "microbit_wrist_10min.capture.jsonl.gz"


def test_fixture_decodes_every_sample_on_time() -> None:
    """The committed capture: 30 000 notifications -> 30 000 samples within 2 periods."""
    from fixtures import make_metawear_microbit_captures as gen

    capture = read_capture(FIXTURE)
    assert capture.settings == {"period_ms": 20, "sample_rate_hz": 50.0}
    dec = mb.PROFILE.decoder(capture.settings)
    blocks = [
        b
        for e in capture.events
        if e.kind == "notify" and e.char == mb.DATA_UUID
        for b in dec.decode(e.data, e.t_ns)
    ]
    times = np.concatenate([b.times_ns() for b in blocks])
    assert len(times) == 30_000 and dec.clock.gaps == [] and dec.clock.n_duplicates == 0
    truth = gen.device_times_ns(gen.first_sample_ns(gen.MICROBIT_OFFSET_S), 30_000, -57.0)
    err_ms = (times - truth) / 1e6
    assert np.abs(err_ms).max() < 2 * 20.0  # measured: -6.2 .. 22.4 ms (first sample)
    if not gen.SOURCE.exists():
        pytest.skip(f"source recording {gen.SOURCE} not available")
    source = gen.segment_mg(np.load(gen.SOURCE)["xyz_mg"], gen.MICROBIT_OFFSET_S, 10 * 60)
    accel = np.concatenate([b.accel_g for b in blocks])
    np.testing.assert_array_equal(mb.g_to_mg(accel), mb.g_to_mg(source / 1000))


def test_fixture_through_decode_capture() -> None:
    """decode_capture: every notification decoded without error."""
    decoded = decode_capture(FIXTURE)
    assert decoded.n_notifications == 30_000 and decoded.n_decode_errors == 0
    assert decoded.header["profile"] == "microbit"


def test_fixture_decode_capture_keeps_every_sample() -> None:
    """decode_capture gives the 30 000 samples and no gap."""
    decoded = decode_capture(FIXTURE)
    assert decoded.n_samples == 30_000 and decoded.gaps == []


class _Collect:
    """Async sink keeping the blocks."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []

    async def __call__(self, block: SampleBlock) -> None:
        self.blocks.append(block)


def _write(path: Path, header: dict[str, Any], events: list[CaptureEvent]) -> Path:
    with CaptureWriter(path, header) as cap:
        for e in events:
            cap.write_event(e.t_ns, e.kind, e.char, e.data)
    return path


def _lossy_capture(tmp_path: Path) -> tuple[Path, int, list[int]]:
    """The first minute with 2 s of notifications lost and 2 % delivered twice, back to back."""
    capture = read_capture(FIXTURE)
    data = [i for i, e in enumerate(capture.events) if e.char == mb.DATA_UUID]
    events = capture.events[: data[2000]] + capture.events[data[2100] : data[3000]]
    events += capture.events[-1:]  # the disconnect
    doubled: list[CaptureEvent] = []
    for i, e in enumerate(events):
        doubled.append(e)
        if e.char == mb.DATA_UUID and i % 50 == 7:  # bleak's double callback: same bytes, +20 us
            doubled.append(dataclasses.replace(e, t_ns=e.t_ns + 20_000))
    path = _write(tmp_path / "lossy.capture.jsonl", capture.header, doubled)
    return path, len(doubled) - len(events), data


def _check_lossy(
    samples: int,
    notes: int,
    gaps: list[Any],
    blocks: list[SampleBlock],
    n_doubled: int,
    data: list[int],
) -> None:
    capture = read_capture(FIXTURE)
    assert n_doubled > 50
    assert notes == 2900 + n_doubled
    assert samples == 2900  # each repeat dropped once
    (gap,) = gaps
    period_ns = 20_000_000
    t_lost = capture.events[data[2000]].t_ns  # arrival of the first lost sample
    assert t_lost - 3 * period_ns < gap.start_ns < t_lost + period_ns
    assert abs(gap.length_ns - 100 * period_ns) < period_ns
    accel = np.concatenate([b.accel_g for b in blocks])
    kept = data[:2000] + data[2100:3000]
    want = [mb.MicrobitDecoder.parse(capture.events[i].data) for i in kept]
    np.testing.assert_array_equal(accel, np.concatenate(want))


def test_lost_and_repeated_notifications_offline(tmp_path: Path) -> None:
    """2 s of lost notifications are one gap of 100 samples at the right time; notifications
    delivered twice are dropped (decode_capture: the live path's decoder and assembler)."""
    path, n_doubled, data = _lossy_capture(tmp_path)
    d = decode_capture(path)
    _check_lossy(d.n_samples, d.n_notifications, d.gaps, d.blocks, n_doubled, data)


async def test_lost_and_repeated_notifications_through_bleak_replay(tmp_path: Path) -> None:
    """The same through the unmodified BleakClient with the replay backend."""
    path, n_doubled, data = _lossy_capture(tmp_path)
    sink = _Collect()
    r = await replay_capture(path, sink)
    assert r.backend_id == "ReplayClient"
    _check_lossy(r.n_samples, r.n_notifications, r.gaps, sink.blocks, n_doubled, data)
