"""Thingy:52 TMS: derived vector, properties, config bytes and validation, timing, fixture."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import devices
from collector.devices import thingy52 as thingy
from collector.errors import DecodeError
from collector.replay import replay_capture
from collector.session import decode_capture

from .conftest import REPO, load_vectors

VECTORS = load_vectors("thingy52_")
RECEIVED_NS = 1_700_000_000_000_000_000
FIXTURE = REPO / "fixtures" / "captures" / "thingy52_wrist_15min.capture.jsonl.gz"


class RecordingLink:
    """A ControlLink that records writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes]] = []

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append((char_uuid, data))

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        raise AssertionError("Thingy:52 start/stop must not wait for a response")


def _adv(name: str | None = None, uuids: tuple[str, ...] = ()) -> AdvertisementData:
    return AdvertisementData(name, {}, {}, list(uuids), None, -60, ())


def test_registered() -> None:
    assert devices.get("thingy52") is thingy.PROFILE
    assert isinstance(thingy.PROFILE, devices.DeviceProfile)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["payload_hex"][:12])
def test_derived_vector_decodes_to_listed_values(v: dict[str, Any]) -> None:
    assert v["derived"] is True
    blocks = thingy.PROFILE.decoder(v["settings"]).decode(
        bytes.fromhex(v["payload_hex"]), RECEIVED_NS
    )
    assert len(blocks) == 1
    assert blocks[0].accel_g.dtype == np.float32
    assert blocks[0].accel_g.tolist() == v["expected"]  # k/1024 is exact in float32
    assert blocks[0].t0_ns == RECEIVED_NS


def test_raw_fields_scale_per_firmware_documentation() -> None:
    raw = thingy.RawMotion.from_bytes(
        struct.pack("<9h", 1024, -512, 32767, 32, -64, 0, 16, 0, -160)
    )
    assert raw.accel_g == (1.0, -0.5, 32767 / 1024)
    assert raw.gyro == (32, -64, 0)  # 1 °/s, −2 °/s (÷32)
    assert raw.compass == (16, 0, -160)  # 1 µT, −10 µT (÷16)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_bytes_give_blocks_or_decode_error(payload: bytes) -> None:
    decoder = thingy.PROFILE.decoder({})
    try:
        blocks = decoder.decode(payload, RECEIVED_NS)
    except DecodeError:
        assert len(payload) != thingy.RAW_BYTES
        return
    assert len(payload) == thingy.RAW_BYTES
    assert [b.n_samples for b in blocks] == [1]


int16 = st.integers(-32768, 32767)
triples = st.tuples(int16, int16, int16)


@given(st.lists(st.tuples(triples, triples, triples), min_size=1, max_size=40))
def test_encode_decode_round_trip(samples: list[tuple[Any, Any, Any]]) -> None:
    accel = np.array([s[0] for s in samples], dtype=np.int16)
    gyro = np.array([s[1] for s in samples], dtype=np.int16)
    compass = np.array([s[2] for s in samples], dtype=np.int16)
    payloads = thingy.encode_raw(accel, gyro, compass)
    for payload, a, g, c in zip(payloads, accel, gyro, compass, strict=True):
        raw = thingy.RawMotion.from_bytes(payload)
        assert raw == thingy.RawMotion(tuple(a.tolist()), tuple(g.tolist()), tuple(c.tolist()))
        assert bytes(raw) == payload
    decoder = thingy.PROFILE.decoder({"sample_rate_hz": 30})
    got = []
    for k, payload in enumerate(payloads):
        got += decoder.decode(payload, RECEIVED_NS + k * 33_333_333)
    decoded = np.concatenate([b.accel_g for b in got])
    # A repeated payload arriving one period later is new data, not a duplicate.
    assert decoded.shape == (len(samples), 3)
    assert np.array_equal(decoded, (accel / 1024).astype(np.float32))


def test_config_bytes_and_start_sequence() -> None:
    import asyncio

    link = RecordingLink()
    chosen = asyncio.run(thingy.PROFILE.start(link, {"sample_rate_hz": 50, "unknown": 1}))
    # uint16 step 5000 ms, temp 5000 ms, mag 1000 ms, motion 50 Hz, uint8 wake-on-motion 1
    assert link.writes == [(thingy.CONFIG_UUID, bytes.fromhex("88138813e803320001"))]
    assert chosen["sample_rate_hz"] == 50
    cfg = thingy.MotionConfig.from_bytes(link.writes[0][1])
    assert cfg == thingy.MotionConfig(5000, 5000, 1000, 50, 1)
    asyncio.run(thingy.PROFILE.stop(link))
    assert len(link.writes) == 1  # TMS has no stop command


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sample_rate_hz", 4),
        ("sample_rate_hz", 201),
        ("sample_rate_hz", 30.5),
        ("step_interval_ms", 99),
        ("temp_comp_interval_ms", 5001),
        ("mag_comp_interval_ms", 1001),
        ("wake_on_motion", 2),
    ],
)
def test_out_of_range_config_is_refused_before_writing(key: str, value: Any) -> None:
    import asyncio

    link = RecordingLink()
    field = "motion_freq_hz" if key == "sample_rate_hz" else key
    with pytest.raises(ValueError, match=field):
        asyncio.run(thingy.PROFILE.start(link, {key: value}))
    assert link.writes == []


def test_config_from_bytes_rejects_bad_length() -> None:
    with pytest.raises(ValueError, match="9 bytes"):
        thingy.MotionConfig.from_bytes(b"\x00" * 8)


def test_matches() -> None:
    assert thingy.PROFILE.matches(_adv("Thingy"))
    assert thingy.PROFILE.matches(_adv(None, (thingy.CONFIG_SERVICE_UUID,)))
    assert not thingy.PROFILE.matches(_adv("Polar H10 1234"))
    assert not thingy.PROFILE.matches(_adv(None, ("0000180d-0000-1000-8000-00805f9a34fb",)))


def _stream(
    n: int, rate_hz: float, drift_ppm: float, seed: int
) -> tuple[list[tuple[bytes, int]], np.ndarray]:
    """n samples from a clock `drift_ppm` fast, delivered at 15 ms connection events + jitter."""
    rng = np.random.default_rng(seed)
    t0 = RECEIVED_NS
    times = t0 + np.rint(np.arange(n) * 1e9 / rate_hz / (1 + drift_ppm * 1e-6)).astype(np.int64)
    rx = t0 + -(-(times - t0) // 15_000_000) * 15_000_000 + rng.integers(300_000, 3_000_000, n)
    accel = rng.integers(-3000, 3000, (n, 3)).astype(np.int16)
    payloads = thingy.encode_raw(accel)
    return list(zip(payloads, np.maximum.accumulate(rx).tolist(), strict=True)), times


@pytest.mark.parametrize("drift_ppm", [-100.0, 100.0])
def test_sample_times_track_drift_and_jitter(drift_ppm: float) -> None:
    events, times = _stream(30 * 600, 30.0, drift_ppm, seed=7)  # 10 min at 30 Hz
    decoder = thingy.PROFILE.decoder({"sample_rate_hz": 30})
    blocks = [b for p, t in events for b in decoder.decode(p, t)]
    got = np.concatenate([b.times_ns() for b in blocks])
    assert len(got) == len(times)
    period_ns = 1e9 / 30
    assert np.max(np.abs(got - times)) < 2 * period_ns
    assert decoder.clock.fs_hz == pytest.approx(30 * (1 + drift_ppm * 1e-6), rel=20e-6)


def test_duplicate_delivery_dropped_and_counted() -> None:
    events, _ = _stream(60, 30.0, 0.0, seed=3)
    decoder = thingy.PROFILE.decoder({"sample_rate_hz": 30})
    n = 0
    for k, (payload, t) in enumerate(events):
        n += sum(b.n_samples for b in decoder.decode(payload, t))
        if k == 20:  # bleak's double callback: the same bytes again, microseconds later
            assert decoder.decode(payload, t + 20_000) == []
    assert n == 60
    assert decoder.clock.n_duplicates == 1


def test_fixture_decodes_whole() -> None:
    decoded = decode_capture(FIXTURE)
    assert decoded.header["profile"] == "thingy52"
    assert decoded.header["settings"]["sample_rate_hz"] == 30
    assert decoded.n_notifications == 27_000  # 15 min at 30 Hz, one sample each
    assert decoded.n_decode_errors == 0
    assert decoded.n_samples == 27_000 and decoded.gaps == []
    first, last = decoded.blocks[0], decoded.blocks[-1]
    span_s = (last.times_ns()[-1] - first.t0_ns) / 1e9
    # 26 999 periods of a device clock running 35 ppm slow (make_clockless_captures.py).
    assert span_s == pytest.approx(26_999 / 30 / (1 - 35e-6), abs=2 / 30)


async def test_fixture_replays_through_bleak() -> None:
    """The committed capture through the unmodified BleakClient with the replay backend."""
    blocks: list[Any] = []

    async def sink(block: Any) -> None:
        blocks.append(block)

    result = await replay_capture(FIXTURE, sink)
    assert result.n_samples >= 27_000 - 10
