"""collector.timing.SampleClock: 8 h of simulated drift, jitter, stalls, drops and duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector.assembly import BlockAssembler
from collector.timing import SampleClock

T0_NS = 1_700_000_000_000_000_000
FS_HZ = 50.0
CI_NS = 30e6  # BLE connection interval 30 ms (BlueZ's default 30-50 ms)
HOST_MEAN_NS = 10e6  # exponential host/scheduler delay, mean 10 ms
AIR_SPACING_NS = 0.7e6  # two notifications are >= 0.7 ms apart on air (1M PHY, PDU + ack)


@dataclass
class Simulation:
    """Arrivals of a simulated stream: which notifications arrive, when, and the truth."""

    period_ns: float  # true sample period
    n: int  # samples per notification
    index: NDArray[np.int64]  # notification numbers that arrive (in order)
    arrival_ns: NDArray[np.int64]  # host receive time of each arriving notification
    payload: list[bytes]
    dup: NDArray[np.bool_]  # deliver this one twice (bleak double callback)
    drops: list[tuple[int, int]]  # (first lost notification, count)


def simulate(
    *,
    hours: float,
    ppm: float,
    n: int,
    seed: int,
    long_drops: int = 16,
    short_drops: int = 0,
    stalls: int = 48,
    dup_fraction: float = 0.01,
    constant_payload: bool = False,
) -> Simulation:
    """Vectorised: device samples at (1 + ppm) x nominal period, BLE + host delays, losses."""
    rng = np.random.default_rng(seed)
    period = 1e9 / FS_HZ * (1 + ppm * 1e-6)
    count = int(hours * 3600 * FS_HZ) // n
    sent = (np.arange(count) * n + n - 1) * period  # the last sample of a notification is ready
    phase = rng.uniform(0, CI_NS)
    event = np.ceil((sent - phase) / CI_NS) * CI_NS + phase  # next connection event
    arrival = event + rng.exponential(HOST_MEAN_NS, count)
    for start in rng.uniform(0, sent[-1], stalls):  # host stalls of 0.1-0.4 s: late, not lost
        stop = start + rng.uniform(100e6, 400e6)
        arrival[(arrival >= start) & (arrival < stop)] = stop
    spacing = np.arange(count) * AIR_SPACING_NS
    arrival = np.maximum.accumulate(arrival - spacing) + spacing  # in order, >= 0.7 ms apart
    keep = np.ones(count, bool)
    drops: list[tuple[int, int]] = []
    notes_per_s = FS_HZ / n
    sizes = [(1.0, 20.0)] * long_drops + [(0.0, 0.0)] * short_drops
    starts = np.sort(rng.choice(np.arange(1000, count - 1000, 1000), len(sizes), replace=False))
    for first, (lo_s, hi_s) in zip(starts, rng.permutation(sizes), strict=True):
        length = (
            int(rng.integers(1, 3)) if hi_s == 0 else int(rng.uniform(lo_s, hi_s) * notes_per_s)
        )
        keep[first : first + length] = False
        drops.append((int(first), length))
    index = np.nonzero(keep)[0]
    raw = np.zeros(count, np.int64) if constant_payload else rng.integers(0, 2**62, count)
    return Simulation(
        period_ns=period,
        n=n,
        index=index,
        arrival_ns=(arrival[index] + T0_NS).astype(np.int64),
        payload=[int(v).to_bytes(8, "little") for v in raw[index]],
        dup=rng.random(len(index)) < dup_fraction,
        drops=drops,
    )


def run(sim: Simulation, clock: SampleClock) -> tuple[NDArray[np.float64], int]:
    """Push every arrival (and its duplicates); return per-notification t0 error (ns), dups."""
    errors = np.empty(len(sim.index))
    n_dup = 0
    arrivals = sim.arrival_ns.tolist()
    for j, (note, t_ns, payload) in enumerate(
        zip(sim.index.tolist(), arrivals, sim.payload, strict=True)
    ):
        timing = clock.push(sim.n, t_ns, payload)
        assert timing is not None, f"notification {note} dropped as a duplicate"
        errors[j] = (timing.t0_ns - T0_NS) - note * sim.n * sim.period_ns
        if sim.dup[j]:
            n_dup += clock.push(sim.n, t_ns + 50_000, payload) is None
    return errors, n_dup


@pytest.mark.parametrize(("ppm", "seed"), [(100.0, 1), (-100.0, 2)])
def test_eight_hours_drift_jitter_stalls_drops_duplicates(ppm: float, seed: int) -> None:
    """Sample times stay within 2 periods of the truth; every loss is one gap of the right size."""
    sim = simulate(hours=8.0, ppm=ppm, n=3, seed=seed)
    clock = SampleClock(FS_HZ)
    errors, n_dup = run(sim, clock)
    worst_periods = float(np.abs(errors).max() / sim.period_ns)
    # Measured: worst 0.94 periods (+100 ppm) / 1.50 (-100 ppm), in the first 5 minutes
    # (before the fit window fills); 0.40 / 0.44 periods after the first 10-minute window.
    assert worst_periods < 2.0
    settled = sim.arrival_ns - T0_NS > 600e9
    assert np.abs(errors[settled]).max() < 0.5 * sim.period_ns
    assert n_dup == int(sim.dup.sum()) == clock.n_duplicates > 0
    assert [g.n_samples for g in clock.gaps] == [length * sim.n for _, length in sim.drops]
    for gap, (first, _) in zip(clock.gaps, sim.drops, strict=True):
        true_start = T0_NS + first * sim.n * sim.period_ns
        assert abs(gap.start_ns - true_start) < 2 * sim.period_ns
        assert gap.detected == "arrival"
    assert clock.n_samples == len(sim.index) * sim.n
    assert abs(clock.fs_hz / (1e9 / sim.period_ns) - 1) < 30e-6  # measured 13 / 18 ppm


def test_three_hours_through_the_block_assembler_keep_every_sample() -> None:
    """Clock + BlockAssembler: every sample kept, and the only gaps are the real losses.

    The reported times follow a moved fit line by at most 1/4 period per notification, so
    the assembler never sees a step it would take for a gap or an overlap.
    """
    sim = simulate(hours=3.0, ppm=-100.0, n=3, seed=2, long_drops=6, stalls=18, dup_fraction=0.0)
    clock, assembler = SampleClock(FS_HZ), BlockAssembler()
    accel = np.zeros((sim.n, 3), np.float32)
    blocks: list[SampleBlock] = []
    for t_ns in sim.arrival_ns.tolist():
        timing = clock.push(sim.n, t_ns)
        assert timing is not None
        blocks += assembler.push(SampleBlock(timing.t0_ns, timing.fs_hz, accel))
    blocks += assembler.flush()
    assert sum(b.n_samples for b in blocks) == len(sim.index) * sim.n
    assert assembler.n_overlap_samples_dropped == 0
    assert len(assembler.gaps) == len(sim.drops)
    for gap, (first, length) in zip(assembler.gaps, sim.drops, strict=True):
        assert abs(gap.start_ns - (T0_NS + first * sim.n * sim.period_ns)) < 2 * sim.period_ns
        assert abs(gap.length_ns - length * sim.n * sim.period_ns) < 2 * sim.period_ns


def test_short_drops_are_found_within_confirm_window() -> None:
    """One or two lost notifications hide in the jitter; the floor check reports each later."""
    sim = simulate(hours=1.0, ppm=100.0, n=3, seed=3, long_drops=0, short_drops=20, stalls=6)
    clock = SampleClock(FS_HZ, confirm_s=1.0)
    errors, _ = run(sim, clock)
    assert [g.n_samples for g in clock.gaps] == [length * sim.n for _, length in sim.drops]
    assert {g.detected for g in clock.gaps} <= {"floor", "arrival"}
    # Samples arriving more than confirm_s + 0.5 s after a drop are back within 2 periods.
    rel_s = (sim.arrival_ns - T0_NS) / 1e9
    ok = np.ones(len(errors), bool)
    for first, length in sim.drops:
        end_s = (first + length) * sim.n * sim.period_ns / 1e9
        ok &= ~((rel_s >= end_s) & (rel_s < end_s + 1.5))
    assert np.abs(errors[ok]).max() < 2 * sim.period_ns
    # Inside the confirm window the error is the lost time (at most 2 notifications).
    assert np.abs(errors).max() < (2 * sim.n + 2) * sim.period_ns


def test_identical_payloads_of_a_still_device_are_not_duplicates() -> None:
    """A device lying still repeats its payload; only back-to-back re-deliveries are dropped."""
    sim = simulate(hours=0.5, ppm=-50.0, n=1, seed=4, long_drops=0, constant_payload=True)
    clock = SampleClock(FS_HZ)
    errors, n_dup = run(sim, clock)
    assert n_dup == int(sim.dup.sum()) == clock.n_duplicates
    assert clock.n_samples == len(sim.index)
    assert np.abs(errors).max() < 2 * sim.period_ns


def test_sequence_counter_gaps_and_duplicates() -> None:
    """With a device counter, a jump is a gap of exactly the missing notifications."""
    clock = SampleClock(100.0, seq_modulo=256)
    period = 10_000_000
    t = T0_NS
    seqs = [250, 251, 252, 253, 254, 255, 0, 1, 5, 5, 6]
    out = []
    for k, seq in enumerate(seqs):
        note = k + (3 if k >= 8 else 0) - (1 if k >= 9 else 0)
        out.append(clock.push(2, t + note * 2 * period + 1000 * k, seq=seq))
    assert out[9] is None  # seq 5 delivered twice
    assert clock.n_duplicates == 1
    assert [(g.n_samples, g.detected) for g in clock.gaps] == [(6, "sequence")]
    gap = out[8].gap if out[8] else None
    assert gap is not None and gap.start_ns == out[7].t0_ns + 2 * period if out[7] else False
    assert out[8] is not None and out[8].first_index == 16 + 6
    assert out[10] is not None and out[10].first_index == 24


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"nominal_fs_hz": 0.0}, "nominal_fs_hz"),
        ({"nominal_fs_hz": float("nan")}, "nominal_fs_hz"),
        ({"nominal_fs_hz": 50.0, "gap_tolerance_s": -1.0}, "gap_tolerance_s"),
        ({"nominal_fs_hz": 50.0, "window_s": 0.0}, "window_s"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict[str, float], name: str) -> None:
    """Invalid parameters raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        SampleClock(**kwargs)  # type: ignore[arg-type]


def test_push_rejects_empty_notification() -> None:
    """Zero samples is a caller bug, not a notification."""
    with pytest.raises(ValueError, match="n_samples"):
        SampleClock(50.0).push(0, T0_NS, b"")
