"""Pure wiring of fatigue windows (api.services.fatigue_windows): regions, stored form, wear, baselines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.fatigue import build_baseline, session_fatigue
from analysis.samples import NS_PER_S, SampleBlock
from analysis.seconds import SecondGrid
from analysis.sessions import SessionSpan
from api.services import fatigue_windows as fw
from tests.fatigue_signals import FS_HZ, arm_task, still

T0_NS = 1_709_542_800 * NS_PER_S  # 2024-03-04 09:00:00 UTC


def _jittered_blocks(
    accel: np.ndarray, fs_hz: float, t0_ns: int, seed: int = 0
) -> list[SampleBlock]:
    """20-s blocks whose starts wander by up to ±3 ms, as a device clock anchored per block does."""
    rng = np.random.default_rng(seed)
    n = round(20 * fs_hz)
    return [
        SampleBlock(
            t0_ns + round(i * NS_PER_S / fs_hz) + int(rng.integers(-3_000_000, 3_000_000)),
            fs_hz,
            accel[i : i + n],
        )
        for i in range(0, accel.shape[0], n)
    ]


@given(t0_ns=st.integers(0, 10**13), length_ns=st.integers(1, 10**12))
@settings(max_examples=200, deadline=None)
def test_touched_starts_are_exactly_the_windows_whose_padded_span_meets_the_samples(
    t0_ns: int, length_ns: int
) -> None:
    end_ns = t0_ns + length_ns
    first, last = fw.touched_starts(t0_ns, end_ns)
    assert first % fw.STEP_NS == 0 and last % fw.STEP_NS == 0 and first <= last

    def meets(s: int) -> bool:
        return s - fw.PAD_BEFORE_NS < end_ns and s + fw.PAD_AFTER_NS > t0_ns

    assert meets(first) and meets(last)
    assert not meets(first - fw.STEP_NS) and not meets(last + fw.STEP_NS)


@pytest.mark.parametrize("fs_hz", [25.0, 52.0])
def test_any_region_gives_the_rows_of_one_pass(
    fs_hz: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regions of 1-3 windows from a subset of blocks, and 2-window chunks, equal one pass."""
    accel = arm_task(900, seed=5)
    if fs_hz != FS_HZ:  # the same movement at another rate (52 Hz: a non-integer ns period)
        t = np.arange(round(900 * fs_hz)) / fs_hz
        accel = np.stack(
            [np.interp(t, np.arange(accel.shape[0]) / FS_HZ, accel[:, j]) for j in range(3)], axis=1
        )
    blocks = _jittered_blocks(accel, fs_hz, T0_NS + 7_000_000)
    first, last = fw.touched_starts(blocks[0].t0_ns, blocks[-1].end_ns)
    whole = fw.windows_for_starts(blocks, first_start_ns=first, last_start_ns=last)
    rows = dict(zip(whole.windows.start_ns.tolist(), fw.encode(whole.windows), strict=True))
    assert len(rows) >= 29 and int(whole.n_samples.max()) == round(60 * fs_hz)
    rng = np.random.default_rng(1)
    for _ in range(8):
        a = int(rng.integers(0, len(rows) - 3))
        s0 = int(whole.windows.start_ns[a])
        s1 = s0 + int(rng.integers(0, 3)) * fw.STEP_NS
        lo, hi = fw.region(s0, s1)
        near = [b for b in blocks if b.t0_ns < hi and b.end_ns > lo]
        part = fw.windows_for_starts(near, first_start_ns=s0, last_start_ns=s1)
        assert fw.encode(part.windows) == [rows[s] for s in part.windows.start_ns.tolist()]
        assert part.windows.start_ns.tolist() == [s for s in rows if s0 <= s <= s1]
    monkeypatch.setattr(fw, "MAX_REGION_SAMPLES", round(60 * fs_hz))  # 2 windows per region
    chunked = fw.windows_for_starts(blocks, first_start_ns=first, last_start_ns=last)
    assert fw.encode(chunked.windows) == list(rows.values())
    assert np.array_equal(chunked.n_samples, whole.n_samples)


def test_stored_form_round_trips() -> None:
    blocks = [
        SampleBlock(T0_NS, FS_HZ, np.concatenate([arm_task(180, seed=2), still(120, seed=2)]))
    ]
    w = fw.windows_for_starts(
        blocks, first_start_ns=T0_NS, last_start_ns=T0_NS + 240 * NS_PER_S
    ).windows
    assert np.isnan(w.features).any() and w.analysable.any() and not w.analysable.all()
    back = fw.decode(w.start_ns.tolist(), fw.encode(w))
    for name in (
        "start_ns",
        "worn_s",
        "active_s",
        "analysable",
        "features",
        "signature",
        "transitions",
        "rest_break",
        "trem46",
    ):
        a, b = getattr(w, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert len(fw.encode(w)[0]) == 8 * fw.ROW_VALUES
    assert len(fw.decode([], [])) == 0


def test_grid_non_wear_is_removed_from_the_windows() -> None:
    blocks = [SampleBlock(T0_NS, FS_HZ, arm_task(600, pause_every_s=0, seed=4))]
    w = fw.windows_for_starts(
        blocks, first_start_ns=T0_NS, last_start_ns=T0_NS + 540 * NS_PER_S
    ).windows
    n = 600
    worn = np.ones(n, bool)
    worn[300:330] = False  # 30 s judged non-wear by the 1-s grid
    grid = SecondGrid(
        T0_NS,
        np.zeros(n),
        np.full(n, 25, np.int64),
        np.ones(n),
        worn,
        np.zeros(n, np.int8),
        np.ones(n, bool),
        44.8,
        None,
    )  # type: ignore[arg-type]
    out = fw.with_grid_wear(w, grid)
    hit = (w.start_ns < T0_NS + 330 * NS_PER_S) & (
        w.start_ns + 60 * NS_PER_S > T0_NS + 300 * NS_PER_S
    )
    assert hit.sum() == 2 and w.analysable[hit].all()
    assert np.array_equal(out.worn_s[hit], w.worn_s[hit] - 30.0)  # both windows hold those 30 s
    assert not out.analysable[hit].any()  # 30 worn s < 54
    duty = out.features[:, 1]
    assert np.allclose(duty[hit], w.active_s[hit] / (w.worn_s[hit] - 30.0))
    assert fw.encode(out.take(~hit)) == fw.encode(w.take(~hit))  # other windows unchanged
    assert fw.with_grid_wear(w, None) is w


def test_each_activity_is_scored_against_its_own_first_three_sessions() -> None:
    acts = ["a", "b", "a", "a", "b", "a"]
    spans, blocks = [], []
    for i, act in enumerate(acts):
        t0 = T0_NS + i * 3600 * NS_PER_S
        amp = 0.8 if act == "a" else 0.6
        blocks.append(
            SampleBlock(
                t0, FS_HZ, arm_task(480, amp_g=amp, freq_hz=1.5 if act == "a" else 1.2, seed=i)
            )
        )
        spans.append(SessionSpan(t0, blocks[-1].end_ns, act))
    windows = type(
        fw.windows_for_starts(blocks[:1], first_start_ns=T0_NS, last_start_ns=T0_NS).windows
    ).concat(
        [
            fw.windows_for_starts(blocks, first_start_ns=a, last_start_ns=b).windows
            for a, b in fw.session_start_ranges(spans)
        ]
    )
    got = fw.sessions_fatigue(windows, spans, grid=None)
    per = [windows.select(s.start_ns, s.end_ns) for s in spans]
    base_a = build_baseline([per[0], per[2], per[3]], tags=["a"] * 3)
    base_b = build_baseline([per[1], per[4]], tags=["b"] * 2)
    assert base_a is not None and base_b is not None
    for i, act in enumerate(acts):
        ref = session_fatigue(per[i], baseline=base_a if act == "a" else base_b, task=act)
        assert got[i] == ref
    assert all(g["quality"] == "ok" and g["index_between"] is not None for g in got)


def test_mixed_rates_in_one_region() -> None:
    """Re-estimated rates share a grid; a truly different rate competes per window (no crash)."""
    a = arm_task(240, seed=6)
    n = a.shape[0] // 2
    drifting = [
        SampleBlock(T0_NS, 25.003, a[:n]),
        SampleBlock(T0_NS + round(n * NS_PER_S / 25.003), 24.998, a[n:]),
    ]
    one = fw.windows_for_starts(
        [SampleBlock(T0_NS, FS_HZ, a)], first_start_ns=T0_NS, last_start_ns=T0_NS + 180 * NS_PER_S
    )
    two = fw.windows_for_starts(
        drifting, first_start_ns=T0_NS, last_start_ns=T0_NS + 180 * NS_PER_S
    )
    assert len(two.windows) == len(one.windows) == 7
    assert np.abs(two.n_samples - one.n_samples).max() <= 1  # one shared 25 Hz grid
    assert np.allclose(two.windows.active_s, one.windows.active_s)
    # A 50 Hz block overlapping the second half: each window from the rate with more samples.
    fast = SampleBlock(
        T0_NS + 150 * NS_PER_S, 50.0, np.repeat(a[n + 25 * 30 :], 2, axis=0)[: 90 * 50]
    )
    mixed = fw.windows_for_starts(
        [*drifting, fast], first_start_ns=T0_NS, last_start_ns=T0_NS + 180 * NS_PER_S
    )
    assert mixed.windows.start_ns.tolist() == one.windows.start_ns.tolist()
    assert (
        mixed.n_samples.tolist()[-2:] == [3000, 3000]
        and mixed.n_samples.tolist()[0] == one.n_samples.tolist()[0]
    )
