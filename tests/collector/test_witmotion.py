"""WitMotion BWT901BLECL 0x61 frames: vector, stream reassembly, commands, timing, fixture."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import numpy as np
import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import devices
from collector.capture import read_capture
from collector.devices import witmotion as wit
from collector.errors import DecodeError
from collector.replay import replay_capture
from collector.session import decode_capture

from .conftest import REPO, load_vectors

VECTORS = load_vectors("witmotion_")
RECEIVED_NS = 1_700_000_000_000_000_000
PERIOD_NS = 20_000_000  # 50 Hz
FIXTURE = REPO / "fixtures" / "captures" / "witmotion_wrist_10min.capture.jsonl.gz"


class RecordingLink:
    """A ControlLink that records writes with their monotonic time."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes, float]] = []

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append((char_uuid, data, time.monotonic()))

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        raise AssertionError("WitMotion commands get no response")


@functools.cache
def _fixture_stream(n_bytes: int) -> tuple[bytes, list[int]]:
    """The first data bytes of the fixture and the notification arrival times."""
    data, t_ns = b"", []
    for ev in read_capture(FIXTURE).events:
        if ev.kind == "notify":
            data += ev.data
            t_ns.append(ev.t_ns)
            if len(data) >= n_bytes:
                break
    return data[:n_bytes], t_ns


def test_registered() -> None:
    assert devices.get("witmotion") is wit.PROFILE
    assert isinstance(wit.PROFILE, devices.DeviceProfile)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["payload_hex"][:12])
def test_derived_vector_decodes_to_listed_values(v: dict[str, Any]) -> None:
    assert v["derived"] is True
    payload = bytes.fromhex(v["payload_hex"])
    blocks = wit.PROFILE.decoder(v["settings"]).decode(payload, RECEIVED_NS)
    assert len(blocks) == 1
    assert blocks[0].accel_g.dtype == np.float32
    assert blocks[0].accel_g.tolist() == v["expected"]
    frame = wit.WitFrame.from_bytes(payload)
    assert [g * 2000 / 32768 for g in frame.gyro] == v["expected_gyro_dps"]
    assert [a * 180 / 32768 for a in frame.angle] == v["expected_angle_deg"]


def test_full_scale_is_16_g() -> None:
    frame = wit.WitFrame(acc=(32767, -32768, 2048))
    [block] = wit.PROFILE.decoder({}).decode(bytes(frame), RECEIVED_NS)
    assert block.accel_g.tolist() == [[32767 / 2048, -16.0, 1.0]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=6))
def test_arbitrary_bytes_give_blocks_or_decode_error(payloads: list[bytes]) -> None:
    decoder = wit.PROFILE.decoder({})
    for k, payload in enumerate(payloads):
        try:
            blocks = decoder.decode(payload, RECEIVED_NS + k * PERIOD_NS)
        except DecodeError:
            continue
        for block in blocks:
            assert block.accel_g.shape[1] == 3 and block.accel_g.dtype == np.float32


int16 = st.integers(-32768, 32767)


@given(st.lists(st.tuples(int16, int16, int16), min_size=1, max_size=30))
def test_encode_decode_round_trip(samples: list[tuple[int, int, int]]) -> None:
    acc = np.asarray(samples, dtype=np.int16)
    stream = wit.encode_frames(acc)
    assert len(stream) == 20 * len(samples)
    frames = [wit.WitFrame.from_bytes(stream[k : k + 20]) for k in range(0, len(stream), 20)]
    assert [f.acc for f in frames] == samples
    assert all(bytes(f) == stream[20 * k : 20 * k + 20] for k, f in enumerate(frames))
    [block] = wit.PROFILE.decoder({}).decode(stream, RECEIVED_NS)
    assert np.array_equal(block.accel_g, (acc * (16 / 32768)).astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=400), st.integers(0, 2**32 - 1))
def test_chunk_invariance_on_recorded_stream(cut_sizes: list[int], seed: int) -> None:
    stream, _ = _fixture_stream(4000)  # 200 frames as recorded
    whole = wit.PROFILE.decoder({}).decode(stream, RECEIVED_NS)[0].accel_g
    decoder = wit.PROFILE.decoder({})
    parts: list[np.ndarray] = []
    pos, k = 0, 0
    while pos < len(stream):
        size = cut_sizes[k % len(cut_sizes)]
        chunk = stream[pos : pos + size]
        parts += [b.accel_g for b in decoder.decode(chunk, RECEIVED_NS + pos * 1_000_000)]
        pos, k = pos + size, k + 1
    assert decoder.reassembler.n_skipped_bytes == 0
    assert np.array_equal(np.concatenate(parts), whole)
    assert len(whole) == 200


def test_resynchronises_after_garbage_and_reports_the_lost_frames_as_a_gap() -> None:
    frames = [bytes(wit.WitFrame(acc=(k, 2 * k, 2048))) for k in range(6)]
    register_reply = bytes([0x55, 0x71, 0x3A, 0x00]) + bytes(16)
    decoder = wit.PROFILE.decoder({"sample_rate_hz": 50})
    out = decoder.decode(frames[0] + frames[1], RECEIVED_NS)
    assert out[0].n_samples == 2
    # A notification that starts with stray bytes (and a 0x55 that is no header).
    with pytest.raises(DecodeError, match="skipped 3 bytes"):
        decoder.decode(b"\x01\x55\x02" + frames[2], RECEIVED_NS + 2 * PERIOD_NS)
    out = decoder.decode(register_reply + frames[3] + frames[4][:7], RECEIVED_NS + 4 * PERIOD_NS)
    out += decoder.decode(frames[4][7:] + frames[5], RECEIVED_NS + 6 * PERIOD_NS)
    assert decoder.reassembler.n_register_frames == 1
    samples = np.concatenate([b.accel_g for b in out])
    assert samples[:, 0].tolist() == [3 / 2048, 4 / 2048, 5 / 2048]
    # Frame 2 was dropped but counted, so frame 3 sits at index 3 of the grid (the clock put
    # frame 1, the last of the first notification, at its arrival).
    assert out[0].t0_ns == RECEIVED_NS + 2 * PERIOD_NS
    with pytest.raises(DecodeError):
        wit.WitFrame.from_bytes(register_reply)
    with pytest.raises(DecodeError):
        wit.WitFrame.from_bytes(frames[0][:19])


def test_duplicate_notification_dropped_before_reassembly() -> None:
    stream, _ = _fixture_stream(200)
    decoder = wit.PROFILE.decoder({})
    n = 0
    for k in range(0, 200, 30):  # cuts not aligned to frames
        chunk = stream[k : k + 30]
        n += sum(b.n_samples for b in decoder.decode(chunk, RECEIVED_NS + k * 10**6))
        if k == 60:  # bleak's double callback: the same bytes again at once
            assert decoder.decode(chunk, RECEIVED_NS + k * 10**6 + 10_000) == []
    assert n == 10 and decoder.n_duplicates == 1
    assert decoder.reassembler.n_skipped_bytes == 0


def test_command_bytes() -> None:
    assert wit.UNLOCK == bytes.fromhex("ff aa 69 88 b5")
    assert wit.SAVE == bytes.fromhex("ff aa 00 00 00")
    assert wit.rate_command(10) == bytes.fromhex("ff aa 03 06 00")
    assert wit.rate_command(50) == bytes.fromhex("ff aa 03 08 00")
    assert wit.rate_command(200) == bytes.fromhex("ff aa 03 0b 00")
    with pytest.raises(ValueError, match="rate_hz"):
        wit.rate_command(20)  # no documented code
    assert wit.nearest_rate_hz(60) == 50 and wit.nearest_rate_hz(75) == 100
    assert wit.nearest_rate_hz(3) == 5  # tie 1/5: the higher


def test_start_unlocks_sets_rate_and_saves_100_ms_apart() -> None:
    link = RecordingLink()
    chosen = asyncio.run(wit.PROFILE.start(link, {"sample_rate_hz": 100, "unknown": "x"}))
    assert [(c, d) for c, d, _ in link.writes] == [
        (wit.WRITE_UUID, wit.UNLOCK),
        (wit.WRITE_UUID, bytes.fromhex("ffaa030900")),
        (wit.WRITE_UUID, wit.SAVE),
    ]
    gaps = np.diff([t for _, _, t in link.writes])
    assert np.all(gaps >= 0.095)
    assert chosen == {"sample_rate_hz": 100, "acc_full_scale_g": 16}
    asyncio.run(wit.PROFILE.stop(link))
    assert len(link.writes) == 3


def test_matches() -> None:
    def adv(name: str | None, uuids: tuple[str, ...] = ()) -> AdvertisementData:
        return AdvertisementData(name, {}, {}, list(uuids), None, -60, ())

    assert wit.PROFILE.matches(adv("WT901BLE68"))
    assert wit.PROFILE.matches(adv("BWT901CL"))
    assert wit.PROFILE.matches(adv("WTSDCL", (wit.SERVICE_UUID,)))
    assert not wit.PROFILE.matches(adv("LEDnet", (wit.SERVICE_UUID,)))  # same UART layout
    assert not wit.PROFILE.matches(adv("InfiniTime"))


@pytest.mark.parametrize("drift_ppm", [-100.0, 100.0])
def test_sample_times_track_drift_and_jitter(drift_ppm: float) -> None:
    rng = np.random.default_rng(5)
    n = 50 * 600  # 10 min
    acc = rng.integers(-4000, 4000, (n, 3)).astype(np.int16)
    stream = wit.encode_frames(acc)
    t_frame = RECEIVED_NS + np.rint(np.arange(n) * PERIOD_NS / (1 + drift_ppm * 1e-6))
    ci = 30_000_000
    event = RECEIVED_NS + -(-(t_frame.astype(np.int64) - RECEIVED_NS) // ci) * ci
    decoder = wit.PROFILE.decoder({"sample_rate_hz": 50})
    blocks = []
    events, first = np.unique(event, return_index=True)
    bounds = np.r_[first, n]
    for j, ev in enumerate(events):  # one notification per connection event
        chunk = stream[20 * bounds[j] : 20 * bounds[j + 1]]
        blocks += decoder.decode(chunk, int(ev) + int(rng.integers(300_000, 3_000_000)))
    times = np.concatenate([b.times_ns() for b in blocks])
    assert len(times) == n
    assert np.max(np.abs(times - t_frame)) < 2 * PERIOD_NS


def test_fixture_decodes_whole() -> None:
    capture = read_capture(FIXTURE)
    writes = [ev.data for ev in capture.events if ev.kind == "write"]
    assert writes == [wit.UNLOCK, wit.rate_command(50), wit.SAVE]
    decoder = wit.PROFILE.decoder(capture.settings)
    n = sum(
        b.n_samples
        for ev in capture.events
        if ev.kind == "notify"
        for b in decoder.decode(ev.data, ev.t_ns)
    )
    assert n == 30_000  # 10 min at 50 Hz: every frame, across split/joined notifications
    assert decoder.reassembler.n_skipped_bytes == 0
    decoded = decode_capture(FIXTURE)
    assert decoded.n_decode_errors == 0
    assert decoded.n_samples == 30_000 and decoded.gaps == []


async def test_fixture_replays_through_bleak() -> None:
    """The committed capture through the unmodified BleakClient with the replay backend."""
    blocks: list[Any] = []

    async def sink(block: Any) -> None:
        blocks.append(block)

    result = await replay_capture(FIXTURE, sink)
    assert result.n_samples >= 30_000 - 10
