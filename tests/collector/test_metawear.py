"""MetaWear profile: command bytes, discovery, decoding, property tests (vectors: test_vectors.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.samples import SampleBlock
from collector.capture import read_capture
from collector.devices import metawear as mw
from collector.errors import DecodeError, ProtocolError
from collector.replay import replay_capture
from collector.session import decode_capture
from tests.collector.conftest import REPO

T_NS = 1_700_000_000_000_000_000


class FakeLink:
    """Records the profile's writes (the ControlLink side; the BLE path is in the emulator test)."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes]] = []

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append((char_uuid, data))

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        raise AssertionError("MetaWear start/stop wait for nothing")


def _adv(name: str | None = None, uuids: list[str] | None = None) -> AdvertisementData:
    return AdvertisementData(name, {}, {}, uuids or [], None, -60, ())


@pytest.mark.parametrize(
    ("chip", "rate", "range_g", "expected"),
    [
        ("BMI160", 100, 16, "0303280c"),
        ("BMI160", 200, 8, "03032908"),
        ("BMI160", 55, 2, "03032703"),  # the SDK rounds 55 Hz to 50 Hz (§2.6)
        ("BMI160", 6.25, 4, "03038405"),  # below 12.5 Hz: bwp 0, us 1
        ("BMI270", 200, 8, "0303a902"),
        ("BMI270", 100, 16, "0303a803"),
        ("BMI270", 100, 8, "0303a802"),  # SDK default A8 02
        ("BMI270", 3.125, 2, "03032300"),  # below 12.5 Hz: perf bit clear
        ("BMA255", 125, 8, "03030b08"),
        ("BMA255", 60, 4, "03030a05"),  # nearest: 62.5 Hz
    ],
)
def test_config_command_bytes(chip: str, rate: float, range_g: int, expected: str) -> None:
    """`03 03 conf range` per §2.3 for each chip, rate and range."""
    assert mw.config_command(chip, rate, range_g).hex() == expected


def test_command_builders_reject_bad_input() -> None:
    """Unknown chip or range and the undocumented MMA8452Q config raise ValueError."""
    with pytest.raises(ValueError, match="chip"):
        mw.config_command("LIS3DH", 100, 8)
    with pytest.raises(ValueError, match="range_g"):
        mw.config_command("BMI160", 100, 3)
    with pytest.raises(ValueError, match="MMA8452Q"):
        mw.config_command("MMA8452Q", 100, 2)


def test_start_and_stop_write_the_sdk_sequence() -> None:
    """Discovery, config, subscribe (packed above 100 Hz), enable, start; stop in reverse."""
    link = FakeLink()
    profile = mw.MetaWearProfile()
    got = asyncio.run(profile.start(link, {"chip": "BMI160", "sample_rate_hz": 200, "range_g": 8}))
    assert got == {
        "chip": "BMI160",
        "sample_rate_hz": 200.0,
        "range_g": 8,
        "packed": True,
        "lsb_per_g": 4096.0,
    }
    assert [(u, d.hex()) for u, d in link.writes] == [
        (mw.COMMAND_UUID, "0380"),
        (mw.COMMAND_UUID, "03032908"),
        (mw.COMMAND_UUID, "031c01"),
        (mw.COMMAND_UUID, "03020100"),
        (mw.COMMAND_UUID, "030101"),
    ]
    link.writes.clear()
    asyncio.run(profile.stop(link))
    assert [d.hex() for _, d in link.writes] == ["030100", "03020001", "030400", "031c00"]


def test_start_bmi270_low_rate_and_defaults() -> None:
    """BMI270 below 12.5 Hz starts with `03 01 02`; defaults are BMI270, 100 Hz, ±8 g, plain."""
    link = FakeLink()
    got = asyncio.run(mw.MetaWearProfile().start(link, {"sample_rate_hz": 6}))
    assert [d.hex() for _, d in link.writes] == ["0380", "03032402", "030401", "03020100", "030102"]
    assert got["sample_rate_hz"] == 6.25
    link.writes.clear()
    got = asyncio.run(mw.MetaWearProfile().start(link, {}))
    assert got["chip"] == "BMI270" and got["range_g"] == 8 and got["packed"] is False
    assert link.writes[1][1].hex() == "0303a802"


def test_start_refuses_what_it_cannot_configure() -> None:
    """MMA8452Q (undocumented config) and impossible ranges are ProtocolErrors, nothing written."""
    link = FakeLink()
    with pytest.raises(ProtocolError, match="MMA8452Q"):
        asyncio.run(mw.MetaWearProfile().start(link, {"chip": "MMA8452Q"}))
    with pytest.raises(ProtocolError, match="range_g"):
        asyncio.run(mw.MetaWearProfile().start(link, {"chip": "BMI160", "range_g": 6}))
    assert link.writes == []


def test_module_discovery() -> None:
    """`03 80 impl rev`: chip and packed support (§2.2 fixtures)."""
    info = mw.parse_module_info(bytes.fromhex("03800101"))
    assert (info.chip, info.revision, info.supports_packed) == ("BMI160", 1, True)
    assert mw.parse_module_info(bytes.fromhex("03800400")).chip == "BMI270"
    assert mw.parse_module_info(bytes.fromhex("03800400")).supports_packed
    assert not mw.parse_module_info(bytes.fromhex("03800100")).supports_packed
    with pytest.raises(ProtocolError, match="no accelerometer"):
        mw.parse_module_info(bytes.fromhex("0380"))
    with pytest.raises(ProtocolError, match="not an accelerometer"):
        mw.parse_module_info(bytes.fromhex("0304"))


def test_decoder_checks_the_discovery_reply() -> None:
    """A matching reply is consumed silently; a different chip refuses the stream."""
    dec = mw.MetaWearDecoder({"chip": "BMI160"})
    assert dec.decode(bytes.fromhex("03800101"), T_NS) == []
    assert dec.module_info == mw.ModuleInfo(1, 1)
    with pytest.raises(DecodeError, match="BMI270.*BMI160"):
        mw.MetaWearDecoder({"chip": "BMI160"}).decode(bytes.fromhex("03800400"), T_NS)


def test_decoder_scaling_by_range_and_timing() -> None:
    """Range-dependent LSB/g; plain and packed samples timed on one grid at the ODR."""
    dec = mw.MetaWearDecoder({"chip": "BMI270", "range_g": 4, "sample_rate_hz": 100})
    counts = np.array([[8192, -16384, 4096], [1, 2, 3], [-8192, 0, 32767]], np.int16)
    (b1,) = dec.decode(mw.encode_samples(0x05, counts), T_NS)
    np.testing.assert_array_equal(b1.accel_g, (counts / 8192.0).astype(np.float32))
    (b2,) = dec.decode(mw.encode_samples(0x04, counts[:1]), T_NS + 10_000_000)
    assert b1.fs_hz == 100.0 and b1.t0_ns == T_NS - 20_000_000  # last sample at arrival
    assert b2.t0_ns == T_NS + 10_000_000
    assert float(b2.accel_g[0, 0]) == 1.0
    mma = mw.MetaWearDecoder({"chip": "MMA8452Q"})
    (b3,) = mma.decode(bytes.fromhex("030456fa05f61803"), T_NS)
    assert b3.accel_g.tolist() == np.asarray([[-1.45, -2.555, 0.792]], np.float32).tolist()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("", "not an accelerometer"),
        ("0504010203040506", "not an accelerometer"),
        ("0304010203", "needs 8 bytes"),
        ("031c" + "00" * 17, "needs 20 bytes"),
        ("030501020304050607", "unexpected accelerometer register 0x05"),  # BMI160: no 0x05
    ],
)
def test_bad_notifications_are_decode_errors(payload: str, match: str) -> None:
    """Truncated, foreign or wrong-register notifications raise DecodeError."""
    with pytest.raises(DecodeError, match=match):
        mw.MetaWearDecoder({"chip": "BMI160"}).decode(bytes.fromhex(payload), T_NS)


def test_duplicate_delivery_is_dropped() -> None:
    """The same notification delivered twice back to back counts once."""
    dec = mw.MetaWearDecoder({"chip": "BMI160", "range_g": 8})
    frame = bytes.fromhex("031c62b7530de9fd16d04d0e57028affa1050a01")
    assert len(dec.decode(frame, T_NS)) == 1
    assert dec.decode(frame, T_NS + 1000) == []
    assert dec.clock.n_duplicates == 1


def test_matches() -> None:
    """By service UUID or MetaWear/MetaMotion name; not by unrelated names."""
    profile = mw.PROFILE
    assert profile.matches(_adv("MetaWear"))
    assert profile.matches(_adv(None, [mw.SERVICE_UUID]))
    assert profile.matches(_adv("MetaMotion S"))
    assert not profile.matches(_adv("Polar H10 1234"))
    assert not profile.matches(_adv(None, ["0000180d-0000-1000-8000-00805f9b34fb"]))


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=40),
    prefix=st.sampled_from([b"", b"\x03", b"\x03\x04", b"\x03\x1c", b"\x03\x05", b"\x03\x80"]),
    chip=st.sampled_from(["BMI160", "BMI270", "BMA255", "MMA8452Q"]),
)
def test_arbitrary_bytes_give_blocks_or_decode_error(data: bytes, prefix: bytes, chip: str) -> None:
    """Nothing but blocks or DecodeError comes out of the decoder."""
    dec = mw.MetaWearDecoder({"chip": chip, "range_g": 16})
    try:
        blocks = dec.decode(prefix + data, T_NS)
    except DecodeError:
        return
    for block in blocks:
        assert block.accel_g.shape[0] in (1, 3) and np.isfinite(block.accel_g).all()


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=1, max_size=3).filter(
        lambda c: len(c) in (1, 3)
    ),
    chip=st.sampled_from(["BMI160", "BMI270", "BMA255"]),
    range_g=st.sampled_from([2, 4, 8, 16]),
)
def test_encode_decode_round_trip(
    counts: list[tuple[int, int, int]], chip: str, range_g: int
) -> None:
    """g -> counts -> notification -> decoder gives back the counts exactly."""
    lsb = mw.bosch_lsb_per_g(range_g)
    arr = np.asarray(counts, np.int16)
    register = mw.data_register(chip, packed=len(counts) == 3)
    dec = mw.MetaWearDecoder({"chip": chip, "range_g": range_g})
    (block,) = dec.decode(mw.encode_samples(register, arr), T_NS)
    np.testing.assert_array_equal(mw.g_to_counts(block.accel_g, lsb), arr)


def test_g_to_counts_clips_to_full_scale() -> None:
    """Values beyond the range saturate like the chip does."""
    got = mw.g_to_counts(np.array([[20.0, -20.0, 0.5]]), 2048.0)
    assert got.tolist() == [[32767, -32768, 1024]]


FIXTURE = REPO / "fixtures" / "captures" / "metawear_wrist_15min.capture.jsonl.gz"


def test_fixture_decodes_every_sample_on_time() -> None:
    """The committed capture: 15 000 packed notifications -> 45 000 samples within 2 periods."""
    from fixtures import make_metawear_microbit_captures as gen

    capture = read_capture(FIXTURE)
    dec = mw.PROFILE.decoder(capture.settings)
    blocks = [
        b
        for e in capture.events
        if e.kind == "notify" and e.char == mw.NOTIFY_UUID
        for b in dec.decode(e.data, e.t_ns)
    ]
    assert dec.module_info == mw.ModuleInfo(4, 0)  # BMI270 answered the discovery
    times = np.concatenate([b.times_ns() for b in blocks])
    assert len(times) == 45_000 and dec.clock.gaps == [] and dec.clock.n_duplicates == 0
    truth = gen.device_times_ns(gen.first_sample_ns(gen.METAWEAR_OFFSET_S), 45_000, 42.0)
    err_ms = (times - truth) / 1e6
    assert np.abs(err_ms).max() < 2 * 20.0  # measured: 0.1 .. 4.6 ms
    if not gen.SOURCE.exists():
        pytest.skip(f"source recording {gen.SOURCE} not available")
    source = gen.segment_mg(np.load(gen.SOURCE)["xyz_mg"], gen.METAWEAR_OFFSET_S, 15 * 60)
    accel = np.concatenate([b.accel_g for b in blocks])
    np.testing.assert_array_equal(
        mw.g_to_counts(accel, 4096.0), mw.g_to_counts(source / 1000, 4096.0)
    )


def test_fixture_through_decode_capture() -> None:
    """decode_capture: every notification decoded, no decode errors (the discovery reply too)."""
    decoded = decode_capture(FIXTURE)
    assert decoded.n_notifications == 15_001 and decoded.n_decode_errors == 0
    assert decoded.header["profile"] == "metawear"


def test_fixture_decode_capture_keeps_every_sample() -> None:
    """decode_capture gives the 45 000 samples and no gap."""
    decoded = decode_capture(FIXTURE)
    assert decoded.n_samples == 45_000 and decoded.gaps == []


async def test_fixture_replay_through_bleak_equals_offline_decode() -> None:
    """Replaying the capture through the unmodified BleakClient gives the offline blocks."""
    blocks: list[SampleBlock] = []

    async def sink(block: SampleBlock) -> None:
        blocks.append(block)

    result = await replay_capture(FIXTURE, sink)
    offline = decode_capture(FIXTURE)
    assert result.backend_id == "ReplayClient"
    assert result.n_samples == offline.n_samples == 45_000 and result.gaps == []
    assert blocks == offline.blocks
