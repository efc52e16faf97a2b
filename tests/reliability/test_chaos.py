"""Chaos: 2 h of 30 Hz wrist data streamed while the collector is SIGKILLed 20 times at random.

The wearable (the only fake: `collector.replay_live.LiveWearable` behind the unmodified bleak
API) streams a 2-hour Thingy:52 recording (real wrist samples, fixtures/make_long_capture.py)
120 times faster than real time, whether or not a collector listens; it goes out of range
twice and loses frames in the air three times. The collector is the `otmon collect` code
path in its own process, killed with SIGKILL at 20 random moments and restarted at once; a
fault proxy answers 10 % of its requests with 503 and cuts 5 % of its connections (half of
them after the service committed); the `otmon serve` process is itself killed for a stretch.

End state: the service holds exactly what the collector committed (count, checksum, every
(stream, seq) once, no overlap); every stored sample is the source sample at that time;
every missing stretch is covered by a reported gap; and the only samples lost are those the
wearable sent while no collector was connected, plus at most one unfinished block per kill.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from collector.assembly import DEFAULT_MAX_SAMPLES
from fixtures.make_long_capture import LongRecording, build
from tests.reliability.chaos import ChaosRun, deaf_spans, journal, run_chaos
from tests.reliability.service import Service, seeded_database, stored_blocks, stored_events

SPEED = 120.0
N_KILLS = 20
OUTAGE_S = (22.0, 8.0)  # the service is down 22-30 s after the anchor (44-60 min in)
NS = 1_000_000_000


@pytest.fixture(scope="module")
def recording() -> LongRecording:
    return build()


def _locate(rec: LongRecording, t0_ns: int, accel: np.ndarray) -> int:
    """Index of the source sample a stored block starts with: values equal, nearest in time."""
    src = rec.accel_g
    near = int(np.searchsorted(rec.truth_ns, t0_ns))
    n = len(accel)
    fits = [
        j for j in range(max(0, near - 3), min(len(src) - n, near + 3) + 1)
        if np.array_equal(src[j : j + n], accel) and rec.sent[j : j + n].all()
    ]  # fmt: skip
    assert fits, f"block at {t0_ns} matches no source samples near index {near}"
    return min(fits, key=lambda j: abs(int(rec.truth_ns[j]) - t0_ns))


def _covered(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    for s, e in sorted(spans):
        if s <= start < e:
            start = e
        if start >= end:
            return True
    return start >= end


def test_chaos_nothing_lost_unreported_nothing_doubled(
    recording: LongRecording, tmp_path: Path
) -> None:
    rec = recording
    with seeded_database("sqlite", tmp_path) as seeded:
        service = Service(seeded.url, tmp_path)
        service.start()
        try:
            run = run_chaos(
                rec, tmp_path, service, seeded.device_token,
                speed=SPEED, n_kills=N_KILLS, outage_s=OUTAGE_S, seed=2026,
            )  # fmt: skip
        finally:
            service.stop()
        stored = stored_blocks(seeded.url)
        events = stored_events(seeded.url)
    committed = journal(tmp_path / "outbox.sqlite3")
    fs = rec.fs_hz
    period_ns = NS / fs

    # (a) The service holds exactly what the collector committed, each block once.
    assert [(b.stream, b.seq) for b in stored] == [(c[0], c[1]) for c in committed]
    for b, c in zip(stored, committed, strict=True):
        assert (b.t0_ns, b.fs_hz, b.n_samples) == (c[2], c[3], c[4])
        assert b.sha256 == hashlib.sha256(c[5]).hexdigest()
    by_time = sorted(stored, key=lambda b: b.t0_ns)
    assert all(a.end_ns <= b.t0_ns for a, b in zip(by_time, by_time[1:]))  # no overlap
    n_stored = sum(b.n_samples for b in stored)

    # (b) Every stored sample is the source sample at that time (values exact, time within
    # a sample period); no source sample is stored twice.
    times = np.concatenate([b.t0_ns + np.arange(b.n_samples) * 1e9 / b.fs_hz for b in by_time])
    hits = np.zeros(len(rec.truth_ns), dtype=np.int64)
    worst_ns = 0.0
    for b in by_time:
        j = _locate(rec, b.t0_ns, b.accel_g)
        hits[j : j + b.n_samples] += 1
        t = b.t0_ns + np.arange(b.n_samples) * 1e9 / b.fs_hz
        worst_ns = max(worst_ns, float(np.abs(t - rec.truth_ns[j : j + b.n_samples]).max()))
    assert worst_ns < period_ns, worst_ns
    assert hits.max() == 1 and int(hits.sum()) == n_stored == len(times)

    # (d) Lost samples: frames lost in the air, samples sent while no collector listened, and
    # per kill at most one unfinished block (decoded, not yet committed).
    deaf = deaf_spans(run, rec)
    lost = np.flatnonzero((hits == 0) & rec.sent)
    rx = rec.rx_ns[lost]
    nobody = np.zeros(len(lost), dtype=bool)
    for s, e in deaf:
        nobody |= (rx >= s) & (rx < e)
    unfinished = lost[~nobody]
    kills_v = np.array([run.virtual(k) for k in run.kills_wall_ns], dtype=np.int64)
    owner = np.searchsorted(kills_v, rec.rx_ns[unfinished])  # the kill that followed
    assert (owner < len(kills_v)).all(), "samples lost while a collector listened, no kill after"
    per_kill = np.bincount(owner, minlength=len(kills_v))
    assert per_kill.max() <= DEFAULT_MAX_SAMPLES, per_kill
    # ... and they were received within one block's time before the kill (+5 s of queue).
    before_kill_ns = kills_v[owner] - rec.rx_ns[unfinished]
    assert (before_kill_ns <= DEFAULT_MAX_SAMPLES * period_ns + 5 * NS).all()
    in_air = int((~rec.sent).sum())

    # (c) Every stretch missing on the service inside the recording is a reported gap.
    gap_spans = [(int(e["start_ns"]), int(e["end_ns"])) for e in events if e["kind"] == "gap"]
    causes = sorted({str(e["cause"]) for e in events if e["kind"] == "gap"})
    holes = [
        (a.end_ns, b.t0_ns) for a, b in zip(by_time, by_time[1:])
        if b.t0_ns - a.end_ns > 1.5 * period_ns
    ]  # fmt: skip
    unreported = [(s, e) for s, e in holes if not _covered(gap_spans, s + int(period_ns), e - int(period_ns))]

    n_source = len(rec.truth_ns)
    print(
        f"\nchaos: {n_source} samples in 2 h at {fs:g} Hz, speed {SPEED:g}x, wall {run.wall_s:.1f} s"
        f"\n  kills {len(run.kills_wall_ns)} (exit codes {sorted(set(run.exit_codes))}), "
        f"collector starts {len(run.kills_wall_ns) + 1}, joins {len(run.joins_ns)}"
        f"\n  faults {run.faults}"
        f"\n  stored {n_stored} samples in {len(stored)} blocks = committed; duplicated 0"
        f"\n  lost {n_source - n_stored}: in the air {in_air}, sent while no collector listened "
        f"{int(nobody.sum())}, unfinished block at a kill {len(unfinished)} "
        f"(max {per_kill.max()} per kill)"
        f"\n  worst time error {worst_ns / 1e6:.1f} ms (period {period_ns / 1e6:.1f} ms)"
        f"\n  drain after the {OUTAGE_S[1]:g} s outage: {run.drain_s} s"
        f"\n  gap events {len(gap_spans)} ({', '.join(causes)}); holes {len(holes)}, "
        f"unreported {len(unreported)}"
    )
    assert run.drain_s is not None
    assert len(run.kills_wall_ns) >= 20 and set(run.exit_codes[:-1]) == {-9}
    assert run.faults["injected_503"] > 0 and run.faults["cut_after"] > 0
    assert not unreported, unreported[:5]
