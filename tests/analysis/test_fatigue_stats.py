"""Statistical building blocks of OT-FI against hand-computed and closed-form answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import special, stats

from analysis.fatigue_baseline import cluster, silhouette
from analysis.fatigue_stats import (
    block_bootstrap_mean,
    cusum_upper,
    ewma,
    ledoit_wolf,
    pelt_mean,
    sample_entropy,
    theil_sen,
)


def test_cusum_by_hand() -> None:
    x = [0.0, 1.0, 2.0, -3.0, 1.5, 2.5, 1.0]
    s, alarm, onset = cusum_upper(x, k=0.5, h=4.0)
    # S: 0, 0.5, 2.0, 0 (max(0, 2 − 3.5)), 1.0, 3.0, 3.5 → no alarm with h = 4.
    np.testing.assert_allclose(s, [0, 0.5, 2.0, 0.0, 1.0, 3.0, 3.5])
    assert alarm is None
    s, alarm, onset = cusum_upper(x + [2.0], k=0.5, h=4.0)
    assert alarm == 7 and onset == 4 and s[7] == 5.0  # the excursion began after index 3


def test_cusum_detection_delay_matches_sizing_rule() -> None:
    # A sustained shift δ = 1 from t = 20 alarms after ≈ h/(δ − k) = 8 windows (§2.5 step 7).
    x = np.r_[np.zeros(20), np.ones(30)]
    _, alarm, onset = cusum_upper(x, k=0.5, h=4.0)
    assert alarm == 20 + 8 and onset == 20


def test_ewma_by_hand() -> None:
    np.testing.assert_allclose(ewma([1.0, 1.0, np.nan, 0.0], lam=0.5), [0.5, 0.75, 0.75, 0.375])
    with pytest.raises(ValueError, match="lam"):
        ewma([1.0], lam=0.0)


def _brute_force_segmentation(x: np.ndarray, penalty: float, min_size: int) -> list[int]:
    n = x.size
    best, best_cps = np.inf, []
    for k in range(n // min_size):
        for cps in itertools.combinations(range(min_size, n - min_size + 1), k):
            b = [0, *cps, n]
            if any(b[i + 1] - b[i] < min_size for i in range(len(b) - 1)):
                continue
            cost = (
                sum(
                    float(np.sum((x[b[i] : b[i + 1]] - x[b[i] : b[i + 1]].mean()) ** 2))
                    for i in range(len(b) - 1)
                )
                + penalty * k
            )
            if cost < best - 1e-12:
                best, best_cps = cost, list(cps)
    return best_cps


@pytest.mark.parametrize("seed", range(6))
def test_pelt_equals_exhaustive_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 14) + np.r_[np.zeros(6), 3 * np.ones(8)] * (seed % 2)
    pen = 2 * np.log(x.size)
    assert pelt_mean(x, penalty=pen, min_size=3) == _brute_force_segmentation(x, pen, 3)


def test_pelt_finds_a_clear_shift_and_respects_min_size() -> None:
    x = np.r_[np.zeros(30), 2 * np.ones(30)] + np.random.default_rng(0).normal(0, 0.3, 60)
    assert pelt_mean(x, penalty=2 * np.log(60), min_size=3) == [30]
    assert pelt_mean(np.r_[0.0, 9.0, 0.0, 0.0, 0.0, 0.0], penalty=0.1, min_size=3) == [3]
    with pytest.raises(ValueError, match="finite"):
        pelt_mean([0.0, np.nan, 1.0, 2.0, 3.0, 4.0], penalty=1.0)


def test_theil_sen_is_median_of_pairwise_slopes() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.0, 2.0, 1.0, 5.0, 40.0])  # one outlier
    slopes = [(y[j] - y[i]) / (t[j] - t[i]) for i in range(5) for j in range(i + 1, 5)]
    res = theil_sen(t, y)
    assert res["slope"] == pytest.approx(float(np.median(slopes)))
    assert res["p"] == pytest.approx(stats.kendalltau(t, y).pvalue)
    assert theil_sen([0, 1], [1, 2])["slope"] is None


def test_block_bootstrap_mean_by_hand_and_coverage() -> None:
    x = np.arange(10, dtype=float)
    reps = block_bootstrap_mean(x, n_boot=5, block=5, seed=3)
    starts = np.random.default_rng(3).integers(0, 6, size=(5, 2))
    expected = [np.concatenate([x[s : s + 5] for s in row]).mean() for row in starts]
    np.testing.assert_allclose(reps, expected)
    # AR(1) with φ = 0.5: the block bootstrap SE is close to the true SE of the mean.
    rng = np.random.default_rng(1)
    e = rng.normal(size=4000)
    ar = np.zeros(4000)
    for i in range(1, 4000):
        ar[i] = 0.5 * ar[i - 1] + e[i]
    se_true = np.sqrt(1 / (1 - 0.25) * (1 + 0.5) / (1 - 0.5) / 4000)
    se_boot = block_bootstrap_mean(ar, n_boot=1000, block=20, seed=0).std()
    assert 0.8 < se_boot / se_true < 1.2


def test_ledoit_wolf_closed_form() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 4)) @ np.diag([1.0, 2.0, 0.5, 1.0])
    cov, delta = ledoit_wolf(x)
    # Independent re-derivation (Ledoit & Wolf 2004, eqs. 14–15) with explicit loops.
    n, p = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    mu = np.trace(s) / p
    d2 = np.linalg.norm(s - mu * np.eye(p), "fro") ** 2 / p
    b2 = sum(np.linalg.norm(np.outer(r, r) - s, "fro") ** 2 for r in xc) / n**2 / p
    dl = min(b2, d2) / d2
    assert delta == pytest.approx(dl)
    np.testing.assert_allclose(cov, (1 - dl) * s + dl * mu * np.eye(p))
    assert 0 < delta < 1
    # Identity-like data is shrunk more than strongly correlated data.
    y = rng.normal(size=(200, 1)) @ np.ones((1, 4)) + 0.1 * rng.normal(size=(200, 4))
    assert ledoit_wolf(y)[1] < ledoit_wolf(rng.normal(size=(200, 4)))[1]


def test_sample_entropy_brute_force_and_white_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    r = 0.2 * x.std()
    a = b = 0
    for i in range(198):
        for j in range(i + 1, 198):
            if abs(x[i] - x[j]) <= r and abs(x[i + 1] - x[j + 1]) <= r:
                b += 1
                a += abs(x[i + 2] - x[j + 2]) <= r
    assert sample_entropy(x) == pytest.approx(-np.log(a / b))
    # iid Gaussian: A/B → P(|X − Y| ≤ r) = erf(r / 2) for X − Y ~ N(0, 2), r = 0.2.
    big = rng.normal(size=4000)
    assert sample_entropy(big) == pytest.approx(-np.log(special.erf(0.2 / 2)), abs=0.08)
    assert np.isnan(sample_entropy(np.ones(50)))
    assert sample_entropy(np.sin(np.arange(500) * 0.3)) < 0.3


def test_silhouette_and_cluster_choice() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[
        rng.normal(0, 0.1, (30, 2)), rng.normal(3, 0.1, (30, 2)), rng.normal([0, 3], 0.1, (30, 2))
    ]
    cent, lab, score = cluster(x, k_range=(2, 6), min_silhouette=0.5, seed=6)
    assert cent.shape == (3, 2) and score > 0.8
    assert len({tuple(np.bincount(lab))}) == 1 and sorted(np.bincount(lab)) == [30, 30, 30]
    # Hand-computed silhouette of 4 points on a line: clusters {0, 1} and {4, 5}.
    pts = np.array([[0.0], [1.0], [4.0], [5.0]])
    # point 0: a = 1, b = (4 + 5)/2; point 1: a = 1, b = (3 + 4)/2; 2 and 3 mirror them.
    s = [(4.5 - 1) / 4.5, (3.5 - 1) / 3.5, (3.5 - 1) / 3.5, (4.5 - 1) / 4.5]
    assert silhouette(pts, np.array([0, 0, 1, 1])) == pytest.approx(np.mean(s))
    # One Gaussian blob: no split is clear enough, one cluster.
    _, lab1, _ = cluster(rng.normal(size=(80, 2)), k_range=(2, 6), min_silhouette=0.5, seed=6)
    assert lab1.max() == 0
