"""HMP decoding (MANUAL.txt §4.2) and pseudo-session assembly."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.fatigue import hmp

HMP_DIR = hmp.default_data_dir() / "hmp-adl"


def test_decode_follows_the_manual():
    np.testing.assert_allclose(hmp.decode(np.array([0, 21, 42, 63])), [-1.5, -0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match="0..63"):
        hmp.decode(np.array([64]))


def test_quantise_round_trips_coded_values():
    g = hmp.decode(np.arange(64))
    np.testing.assert_allclose(hmp.quantise(g + 0.01), g)
    assert hmp.quantise(np.array([2.0]))[0] == pytest.approx(1.5)


def test_load_trial_names_file_and_line_on_bad_input(tmp_path):
    p = tmp_path / "Accelerometer-2011-03-24-10-24-39-climb_stairs-f1.txt"
    p.write_text("31 40 50\n31 40\n")
    with pytest.raises(ValueError, match=r"climb_stairs-f1.txt:2: expected three"):
        hmp.load_trial(p)
    p.write_text("31 40 50\n0 63 21\n")
    t = hmp.load_trial(p)
    assert (t.activity, t.volunteer, t.start) == ("climb_stairs", "f1", "2011-03-24-10-24-39")
    np.testing.assert_allclose(t.accel_g[1], [-1.5, 1.5, -0.5])
    bad = tmp_path / "notes.txt"
    bad.write_text("1 2 3\n")
    with pytest.raises(ValueError, match="not an HMP file name"):
        hmp.load_trial(bad)


def synthetic_trial(rng, n, vol="f1", act="walk"):
    t = np.arange(n) / hmp.FS_HZ
    a = np.array([0.0, 0.0, 1.0]) + 0.3 * np.sin(2 * np.pi * 1.5 * t)[:, None] * [1, 0, 0]
    return hmp.Trial(act, vol, "2011-01-01-00-00-00", a + rng.normal(0, 0.01, (n, 3)))


def test_assemble_alternates_pools_and_inserts_still_rests():
    rng = np.random.default_rng(0)
    up = [synthetic_trial(rng, 320, act="standup_chair") for _ in range(3)]
    down = [synthetic_trial(rng, 160, act="sitdown_chair") for _ in range(3)]
    s = hmp.assemble([up, down], 600.0, rng, task="sit_stand", seed=1)
    assert s.duration_s >= 600 and s.duration_s < 600 + 10 + hmp.REST_CLIP_S[1]
    assert len(s.rest) == len(s.accel_g)
    edges = np.flatnonzero(np.diff(s.rest.astype(int)) == 1) + 1
    assert len(edges) == s.n_trials - 1
    # Trials alternate 320/160 samples; rests are still apart from the 1-s blend.
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], s.rest, [1]]).astype(int))))
    trial_lengths = runs[::2]
    assert set(trial_lengths[::2]) == {320} and set(trial_lengths[1::2]) == {160}
    rest = s.accel_g[s.rest]
    assert np.std(np.linalg.norm(rest, axis=1)) < 0.02
    with pytest.raises(ValueError, match="duration_s"):
        hmp.assemble([up], 0.0, rng, task="x", seed=0)


@pytest.mark.skipif(not HMP_DIR.is_dir(), reason="HMP data (no redistribution) not in ../shared/data")
def test_real_hmp_sessions_are_20_to_40_min_and_split_by_volunteer():
    trials = hmp.load_hmp()
    assert len(trials) == 839
    test = hmp.build_sessions(trials, pool="test")
    tune = hmp.build_sessions(trials, pool="tune")
    assert all(1200 <= s.duration_s <= 2400 + 80 for s in test + tune)
    assert not {v for s in test for v in s.volunteers} & hmp.TUNE_VOLUNTEERS
    assert {v for s in tune for v in s.volunteers} <= hmp.TUNE_VOLUNTEERS
    assert len(test) == 34 and len(tune) == 32
