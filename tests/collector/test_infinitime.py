"""PineTime / InfiniTime Motion Service: derived vector, properties, notify-on-change timing."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import devices
from collector.devices import infinitime as it
from collector.errors import DecodeError
from collector.replay import replay_capture
from collector.session import decode_capture

from .conftest import REPO, load_vectors

VECTORS = load_vectors("infinitime_")
RECEIVED_NS = 1_700_000_000_000_000_000
PERIOD_NS = 100_000_000
FIXTURE = REPO / "fixtures" / "captures" / "infinitime_wrist_20min.capture.jsonl.gz"


class RecordingLink:
    """A ControlLink that records writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes]] = []

    async def write(self, char_uuid: str, data: bytes) -> None:
        self.writes.append((char_uuid, data))

    async def receive(self, char_uuid: str, timeout_s: float) -> bytes:
        raise AssertionError("InfiniTime has no control characteristic")


def test_registered() -> None:
    assert devices.get("infinitime") is it.PROFILE
    assert isinstance(it.PROFILE, devices.DeviceProfile)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["payload_hex"])
def test_derived_vector_decodes_to_listed_values(v: dict[str, Any]) -> None:
    assert v["derived"] is True
    blocks = it.PROFILE.decoder(v["settings"]).decode(bytes.fromhex(v["payload_hex"]), RECEIVED_NS)
    assert len(blocks) == 1
    assert blocks[0].accel_g.dtype == np.float32
    assert blocks[0].accel_g.tolist() == v["expected"]
    assert blocks[0].t0_ns == RECEIVED_NS
    assert blocks[0].fs_hz == 10.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=10), min_size=1, max_size=8))
def test_arbitrary_bytes_give_blocks_or_decode_error(payloads: list[bytes]) -> None:
    decoder = it.PROFILE.decoder({})
    for k, payload in enumerate(payloads):
        try:
            blocks = decoder.decode(payload, RECEIVED_NS + k * PERIOD_NS)
        except DecodeError:
            assert len(payload) != it.MOTION_BYTES
            continue
        assert len(payload) == it.MOTION_BYTES
        for block in blocks:
            assert block.accel_g.shape[1] == 3 and block.accel_g.dtype == np.float32


counts = st.integers(-2048, 2047)


@given(st.lists(st.tuples(counts, counts, counts), min_size=1, max_size=50))
def test_encode_decode_round_trip(samples: list[tuple[int, int, int]]) -> None:
    decoder = it.PROFILE.decoder({})
    got: list[np.ndarray] = []
    for k, xyz in enumerate(samples):
        payload = it.encode_motion(xyz)
        assert it.parse_motion(payload) == xyz
        # One poll per sample, 10 ms after it.
        got += [b.accel_g for b in decoder.decode(payload, RECEIVED_NS + k * PERIOD_NS + 10**7)]
    decoded = np.concatenate(got)
    # The firmware never sends a value twice in a row, so a repeat is dropped as a duplicate;
    # the next change, a poll later, then restores it as a held value. Trailing repeats wait
    # for a change that never comes.
    repeats = [k for k in range(1, len(samples)) if samples[k] == samples[k - 1]]
    last_change = max(k for k in range(len(samples)) if k not in repeats)
    assert decoder.n_duplicates == len(repeats)
    expected = np.asarray(samples[: last_change + 1], dtype=np.float64) / 1024
    assert np.array_equal(decoded, expected.astype(np.float32))


def test_start_and_stop_write_nothing() -> None:
    link = RecordingLink()
    chosen = asyncio.run(it.PROFILE.start(link, {"sample_rate_hz": 50, "firmware": "1.14"}))
    asyncio.run(it.PROFILE.stop(link))
    assert link.writes == []  # subscribing is the whole start; there is no stop command
    assert chosen == {"firmware": "1.14", "sample_rate_hz": 10.0}


def test_matches() -> None:
    def adv(name: str | None, uuids: tuple[str, ...] = ()) -> AdvertisementData:
        return AdvertisementData(name, {}, {}, list(uuids), None, -60, ())

    assert it.PROFILE.matches(adv("InfiniTime"))
    assert it.PROFILE.matches(adv(None, (it.SERVICE_UUID,)))
    assert not it.PROFILE.matches(adv("Thingy"))
    # The pre-release 0002xxxx base (§4) is not what a released firmware exposes.
    assert not it.PROFILE.matches(adv(None, ("00020000-78fc-48fe-8e23-433b3a1942d0",)))


def _watch(
    n: int, drift_ppm: float, seed: int, stall_ns: int = 0, still_prob: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 10 Hz poll series with still stretches; returns (counts, poll times, arrivals).

    Arrivals: the next 30 ms connection event + 0.3–3 ms; with `stall_ns`, 0.2 % of the events
    are held up to `stall_ns` by the host and release everything queued at once.
    """
    rng = np.random.default_rng(seed)
    values = rng.integers(-2048, 2048, (n, 3))
    still = rng.random(n) < still_prob  # a poll that repeats the previous value...
    for k in np.flatnonzero(still)[:-1]:
        values[k + 1 : k + 1 + int(rng.integers(1, 40))] = values[k]  # ...for up to 4 s
    t_poll = RECEIVED_NS + np.rint(np.arange(n) * PERIOD_NS / (1 + drift_ppm * 1e-6))
    ci_ns = 30_000_000
    events = RECEIVED_NS + -(-(t_poll.astype(np.int64) - RECEIVED_NS) // ci_ns) * ci_ns
    rx = events + rng.integers(300_000, 3_000_000, n)
    if stall_ns:
        for k in np.flatnonzero(rng.random(n) < 0.002):
            end = events[k] + int(rng.integers(stall_ns // 4, stall_ns + 1))
            hit = (events >= events[k]) & (events < end)
            rx[hit] = np.maximum(rx[hit], end)
    return values, t_poll.astype(np.int64), np.maximum.accumulate(rx)


@pytest.mark.parametrize("drift_ppm", [-100.0, 100.0])
def test_silences_are_held_values_on_the_poll_grid(drift_ppm: float) -> None:
    values, t_poll, rx = _watch(6000, drift_ppm, seed=1)  # 10 min
    changed = np.ones(len(values), dtype=bool)
    changed[1:] = np.any(np.diff(values, axis=0) != 0, axis=1)
    assert changed.sum() < len(values) - 500  # many silent polls
    decoder = it.PROFILE.decoder({})
    blocks = [
        b
        for k in np.flatnonzero(changed)
        for b in decoder.decode(it.encode_motion(values[k]), int(rx[k]))
    ]
    got = np.concatenate([b.accel_g for b in blocks])
    times = np.concatenate([b.times_ns() for b in blocks])
    assert np.array_equal(got, (values / 1024).astype(np.float32))  # every poll, in place
    assert decoder.n_held_samples == len(values) - changed.sum()
    assert np.max(np.abs(times - t_poll)) < 0.5 * PERIOD_NS


@pytest.mark.parametrize("drift_ppm", [-100.0, 100.0])
def test_host_stalls_delay_samples_by_at_most_the_stall_and_never_the_clock(
    drift_ppm: float,
) -> None:
    stall_ns = 250_000_000  # 2.5 periods: bursts the grid cannot place exactly
    values, t_poll, rx = _watch(18_000, drift_ppm, seed=2, stall_ns=stall_ns, still_prob=0.01)
    changed = np.ones(len(values), dtype=bool)
    changed[1:] = np.any(np.diff(values, axis=0) != 0, axis=1)
    decoder = it.PROFILE.decoder({})
    err_ns = []
    for k in np.flatnonzero(changed):  # 30 min
        [block] = decoder.decode(it.encode_motion(values[k]), int(rx[k]))
        err_ns.append(int(block.times_ns()[-1]) - int(t_poll[k]))
    err = np.abs(np.asarray(err_ns))
    # A stall delays samples by at most its length (stalls close together can add up) until
    # an unchanged poll absorbs the shift; most samples stay exactly on their poll.
    assert err.max() <= 3 * PERIOD_NS
    assert np.mean(err < 0.1 * PERIOD_NS) > 0.6
    assert decoder.clock.fs_hz == pytest.approx(10 * (1 + drift_ppm * 1e-6), rel=30e-6)


def test_duplicate_delivery_dropped_and_counted() -> None:
    decoder = it.PROFILE.decoder({})
    a, b = it.encode_motion((1, 2, 3)), it.encode_motion((4, 5, 6))
    assert len(decoder.decode(a, RECEIVED_NS)) == 1
    assert decoder.decode(a, RECEIVED_NS + 5_000) == []  # bleak's double callback
    blocks = decoder.decode(b, RECEIVED_NS + PERIOD_NS)
    assert decoder.n_duplicates == 1
    assert [blk.n_samples for blk in blocks] == [1]
    assert blocks[0].t0_ns == RECEIVED_NS + PERIOD_NS


def test_fixture_decodes_every_poll() -> None:
    decoded = decode_capture(FIXTURE)
    assert decoded.header["profile"] == "infinitime"
    assert decoded.n_notifications == 11_947  # changed polls of 12 000 (20 min at 10 Hz)
    assert decoded.n_decode_errors == 0
    assert decoded.n_samples == 12_000  # every poll, the 53 unchanged ones held over
    assert decoded.gaps == []
    first, last = decoded.blocks[0], decoded.blocks[-1]
    span_s = (last.times_ns()[-1] - first.t0_ns) / 1e9
    assert span_s == pytest.approx(11_999 / 10 / (1 + 60e-6), abs=2 / 10)


async def test_fixture_replays_through_bleak() -> None:
    """The committed capture through the unmodified BleakClient with the replay backend."""
    blocks: list[Any] = []

    async def sink(block: Any) -> None:
        blocks.append(block)

    result = await replay_capture(FIXTURE, sink)
    assert result.n_samples >= 12_000 - 10
