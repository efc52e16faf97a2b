"""Polar PMD: vendor vectors, derived regressions, properties, CP commands."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import devices
from collector.devices import polar_pmd as pmd
from collector.errors import DecodeError, ProtocolError

from .conftest import load_vectors

VECTORS = load_vectors()
RECEIVED_NS = 1_700_000_000_000_000_000
FRAME_KINDS = ("polar_acc_raw", "polar_acc_delta")


def _ids(v: dict[str, Any]) -> str:
    return f"{v['kind']}-{v['settings'].get('frame_type_byte', '')}-{v['payload_hex'][:12]}"


VENDOR_FRAMES = [v for v in VECTORS if v["kind"] in FRAME_KINDS and not v.get("derived")]
DERIVED_FRAMES = [v for v in VECTORS if v["kind"] in FRAME_KINDS and v.get("derived")]


def _decode(v: dict[str, Any]) -> tuple[Any, Any]:
    decoder = devices.get("polar_pmd").decoder(v["settings"])
    blocks = decoder.decode(bytes.fromhex(v["payload_hex"]), RECEIVED_NS)
    assert len(blocks) == 1
    return decoder, blocks[0]


def _mg(block: Any) -> list[list[int]]:
    assert block.accel_g.dtype == np.float32
    return np.rint(block.accel_g.astype(np.float64) * 1000).astype(int).tolist()


def _expected_mg(v: dict[str, Any]) -> list[list[int]]:
    # Vectors of the compressed type 0 list raw counts; the scaled mG are given alongside.
    return v.get("expected_scaled_mG") or v.get("expected_scaled_mG_derived") or v["expected"]


@pytest.mark.parametrize("v", VENDOR_FRAMES, ids=_ids)
def test_decode_vendor_vector_exact(v: dict[str, Any]) -> None:
    decoder, block = _decode(v)
    mg = _mg(block)
    expected = _expected_mg(v)
    assert block.n_samples == v["expected_sample_count"]
    if v.get("expected_is_prefix"):
        assert mg[: len(expected)] == expected
    else:
        assert mg == expected
    times = decoder.last_sample_times_ns  # device ns since 2000, per the SDK rule
    frame_ts = int.from_bytes(bytes.fromhex(v["payload_hex"])[1:9], "little")
    if "expected_frame_timestamp_ns" in v:
        assert frame_ts == v["expected_frame_timestamp_ns"]
    if "expected_last_sample_timestamp_ns" in v:
        assert times[-1] == v["expected_last_sample_timestamp_ns"]
    if "expected_first_sample_timestamp_ns" in v:
        assert times[0] == v["expected_first_sample_timestamp_ns"]
    if "expected_sample_timestamps_ns" in v:
        assert times == v["expected_sample_timestamps_ns"]
    # The block's UTC times are the device times shifted by the anchor (±1 ns: the block
    # is uniform, the SDK rounds each sample separately).
    utc_rel = block.times_ns() - decoder.clock_offset_ns - pmd.EPOCH_2000_UNIX_NS
    assert utc_rel[0] == times[0]
    assert np.max(np.abs(utc_rel - np.asarray(times))) <= 1
    # Anchor: the first frame's last sample lands on the host receive time.
    assert decoder.clock_offset_ns + pmd.EPOCH_2000_UNIX_NS + times[-1] == RECEIVED_NS


@pytest.mark.parametrize("v", DERIVED_FRAMES, ids=_ids)
def test_decode_derived_vector_regression(v: dict[str, Any]) -> None:
    decoder, block = _decode(v)
    assert _mg(block) == _expected_mg(v)
    if "expected_sample_timestamps_ns" in v:
        assert decoder.last_sample_times_ns == v["expected_sample_timestamps_ns"]


@pytest.mark.parametrize("v", [v for v in VECTORS if v["kind"] == "polar_delta_content"], ids=_ids)
def test_delta_content_vectors(v: dict[str, Any]) -> None:
    s = v["settings"]
    counts = pmd.parse_delta_content(
        bytes.fromhex(v["payload_hex"]), s["resolution_bits"], s["channels"]
    ).tolist()
    if v.get("expected_is_prefix"):
        assert counts[: len(v["expected"])] == v["expected"]
        assert len(counts) == v["expected_sample_count"]
    else:
        assert counts == v["expected"]


def test_delta_0x80_raw_counts_match_vendor_constants() -> None:
    v = next(v for v in VENDOR_FRAMES if v["settings"].get("frame_type_byte") == "0x80")
    counts = pmd.parse_delta_content(bytes.fromhex(v["payload_hex"])[10:], 16, 3)
    assert counts[:2].tolist() == v["expected"]


def test_settings_vector_parsing() -> None:
    v = next(v for v in VECTORS if v["kind"] == "polar_pmd_settings")
    assert pmd.parse_settings(bytes.fromhex(v["payload_hex"])) == v["expected"]


@pytest.mark.parametrize("v", [v for v in VECTORS if v["kind"] == "polar_cp_command"], ids=_ids)
def test_cp_command_vectors(v: dict[str, Any]) -> None:
    commands = {pmd.GET_ACC_SETTINGS, pmd.STOP_ACC, pmd.start_command(52, 16, 8, 3)}
    assert bytes.fromhex(v["payload_hex"]) in commands


def test_start_command_bytes() -> None:
    expected = bytes.fromhex("02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")
    assert pmd.start_command(52, 16, 8, 3) == expected
    assert pmd.GET_ACC_SETTINGS == bytes.fromhex("0102")
    assert pmd.STOP_ACC == bytes.fromhex("0302")


def test_cp_response_parsing() -> None:
    resp = pmd.parse_cp_response(bytes.fromhex("f00202000005010000803f"))
    assert (resp.opcode, resp.measurement_type, resp.status, resp.more) == (2, 2, 0, False)
    assert pmd.parse_settings(resp.params) == {"FACTOR": [1.0]}
    err = pmd.parse_cp_response(bytes.fromhex("f002020800"))
    assert err.status is pmd.CpStatus.INVALID_SAMPLE_RATE
    assert pmd.is_measurement_stopped(bytes.fromhex("0102"))
    assert not pmd.is_measurement_stopped(bytes.fromhex("f0030200"))
    with pytest.raises(ProtocolError):
        pmd.parse_cp_response(bytes.fromhex("0102"))


def test_choose_nearest() -> None:
    assert pmd.choose_nearest([25, 50, 100, 200], 50) == 50
    assert pmd.choose_nearest([25, 50, 100, 200], 52) == 50
    assert pmd.choose_nearest([26, 52, 104], 50) == 52
    assert pmd.choose_nearest([2, 4, 8], 16) == 8
    assert pmd.choose_nearest(None, 8) == 8


class _ScriptedLink:
    """ControlLink that answers CP writes from a table (no bleak)."""

    def __init__(self, answers: dict[bytes, list[bytes]]) -> None:
        self.answers = answers
        self.writes: list[bytes] = []
        self.queue: list[bytes] = []

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append(data)
        self.queue += self.answers.get(data[:2], [])

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        if not self.queue:
            raise ProtocolError("no response")
        return self.queue.pop(0)


async def test_profile_start_negotiates_joins_more_and_reads_factor() -> None:
    settings_resp = bytes.fromhex("f0010200010004190032006400c800") + bytes.fromhex("")
    continuation = bytes.fromhex("f001020000010110000203020004000800040103")
    link = _ScriptedLink(
        {
            b"\x01\x02": [
                bytes.fromhex("0103"),
                settings_resp,
                continuation,
            ],  # 0103: device-initiated
            b"\x02\x02": [bytes.fromhex("f00202000005010000003f")],  # factor 0.5
        }
    )
    got = await pmd.PROFILE.start(link, {"sample_rate_hz": 52, "range_g": 16})
    assert got == {
        "measurement_type": 2,
        "sample_rate_hz": 50,
        "resolution_bits": 16,
        "range_g": 8,
        "channels": 3,
        "factor": 0.5,
    }
    assert link.writes == [pmd.GET_ACC_SETTINGS, pmd.start_command(50, 16, 8, 3)]


async def test_profile_start_error_status_raises_protocol_error() -> None:
    link = _ScriptedLink(
        {
            b"\x01\x02": [bytes.fromhex("f0010200000001320001011000")],
            b"\x02\x02": [bytes.fromhex("f002020d00")],
        }
    )
    with pytest.raises(ProtocolError, match="DEVICE_IN_CHARGER"):
        await pmd.PROFILE.start(link, {"sample_rate_hz": 50})


RAW_SETTINGS = {"sample_rate_hz": 50, "factor": 1.0}


def test_raw_frame_errors_are_decode_errors() -> None:
    frame = pmd.encode_raw_frame(10**12, np.zeros((4, 3), dtype=np.int16))
    dec = pmd.PolarAccDecoder(RAW_SETTINGS)
    with pytest.raises(DecodeError, match="MTU"):
        dec.decode(frame[:20], 0)
    with pytest.raises(DecodeError, match="multiple of 6"):
        dec.decode(frame[:-1], 0)
    with pytest.raises(DecodeError, match="measurement type"):
        dec.decode(b"\x01" + frame[1:], 0)
    with pytest.raises(DecodeError, match="shorter than its header"):
        dec.decode(frame[:9], 0)
    with pytest.raises(DecodeError, match="factor"):
        pmd.PolarAccDecoder({"sample_rate_hz": 50, "factor": 0.5}).decode(frame, 0)
    with pytest.raises(DecodeError, match="not supported"):
        dec.decode(frame[:9] + b"\x02" + frame[10:], 0)


def test_decoder_timestamp_rules_across_frames() -> None:
    dec = pmd.PolarAccDecoder(RAW_SETTINGS)
    period = 20_000_000
    t_last = 10**15
    first = dec.decode(pmd.encode_raw_frame(t_last, np.ones((36, 3))), RECEIVED_NS)[0]
    second = dec.decode(
        pmd.encode_raw_frame(t_last + 36 * period, np.ones((36, 3))), RECEIVED_NS + 10**9
    )[0]
    assert first.fs_hz == second.fs_hz == 50.0
    assert second.t0_ns == first.end_ns  # contiguous; offset fixed by the first frame
    with pytest.raises(DecodeError, match="not after"):
        dec.decode(pmd.encode_raw_frame(t_last, np.ones((36, 3))), RECEIVED_NS)
    # A lost frame leaves a gap instead of stretching the rate.
    third = dec.decode(
        pmd.encode_raw_frame(t_last + 3 * 36 * period, np.ones((36, 3))), RECEIVED_NS
    )[0]
    assert third.fs_hz == 50.0 and third.t0_ns == second.end_ns + 36 * period
    assert dec.n_timestamp_resets == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([0.0, 25.0, 52.0]), st.sampled_from([0, 100]))
def test_arbitrary_bytes_give_blocks_or_decode_error(data: bytes, rate: float, prev: int) -> None:
    dec = pmd.PolarAccDecoder({"sample_rate_hz": rate, "previous_frame_timestamp_ns": prev})
    try:
        blocks = dec.decode(data, RECEIVED_NS)
    except DecodeError:
        return
    for b in blocks:
        assert b.accel_g.dtype == np.float32 and b.n_samples > 0


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=0, max_size=200),
    st.sampled_from([0x01, 0x80, 0x81]),
    st.integers(0, 2**64 - 1),
)
def test_arbitrary_frame_content_gives_blocks_or_decode_error(
    content: bytes, frame_type: int, ts: int
) -> None:
    payload = b"\x02" + ts.to_bytes(8, "little") + bytes([frame_type]) + content
    dec = pmd.PolarAccDecoder({"sample_rate_hz": 52, "factor": 1.0})
    try:
        dec.decode(payload, RECEIVED_NS)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=1, max_size=80),
    st.integers(1, 2**62),
)
def test_raw_frame_round_trip(samples: list[tuple[int, int, int]], ts: int) -> None:
    frame = pmd.encode_raw_frame(ts, np.asarray(samples))
    parsed = pmd.parse_frame(frame)
    assert parsed.timestamp_ns == ts and parsed.frame_type == 0x01
    assert parsed.samples_mg.tolist() == [list(s) for s in samples]
    block = pmd.PolarAccDecoder({"sample_rate_hz": 50}).decode(frame, RECEIVED_NS)[0]
    assert (np.rint(block.accel_g.astype(np.float64) * 1000) == np.asarray(samples)).all()


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 16), st.integers(1, 3), st.integers(1, 60))
def test_delta_round_trip(data: st.DataObject, width: int, channels: int, n: int) -> None:
    lo, hi = -(2 ** (width - 1)), 2 ** (width - 1) - 1
    ref = data.draw(st.lists(st.integers(-1000, 1000), min_size=channels, max_size=channels))
    deltas = data.draw(
        st.lists(
            st.lists(st.integers(lo, hi), min_size=channels, max_size=channels),
            min_size=n - 1,
            max_size=n - 1,
        )
    )
    counts = np.cumsum(np.asarray([ref, *deltas], dtype=np.int64).reshape(n, channels), axis=0)
    content = pmd.encode_delta_content(counts, 16)
    assert pmd.parse_delta_content(content, 16, channels).tolist() == counts.tolist()


def test_registry_unknown_name_lists_known() -> None:
    with pytest.raises(KeyError, match="polar_pmd"):
        devices.get("nope")
    assert devices.get("polar_pmd") is devices.PROFILES["polar_pmd"]
    assert isinstance(devices.PROFILES["polar_pmd"], devices.DeviceProfile)


def test_factor_float32_parsing() -> None:
    params = b"\x05\x01" + struct.pack("<f", 2.44e-4)
    assert pmd.parse_settings(params)["FACTOR"][0] == pytest.approx(2.44e-4, rel=1e-6)
