"""Validation statistics against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from benchmarks.fatigue import metrics


def test_auc_equals_mann_whitney_u_with_ties():
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(1, 1, 40), 1)
    neg = np.round(rng.normal(0, 1, 55), 1)
    u = stats.mannwhitneyu(pos, neg).statistic
    assert metrics.auc(pos, neg) == pytest.approx(u / (40 * 55))
    assert metrics.auc([1, 2], [3, 4]) == 0.0 and metrics.auc([3], [3]) == 0.5
    assert np.isnan(metrics.auc([], [1.0]))


def test_rmcorr_equals_the_ancova_common_slope_correlation():
    rng = np.random.default_rng(1)
    subj = np.repeat(np.arange(6), 8)
    x = rng.normal(size=48) + subj * 2.0
    y = -0.5 * x + rng.normal(size=48) + subj * -3.0  # between-subject trend opposite
    res = metrics.rmcorr(subj, x, y)
    dummies = (subj[:, None] == np.arange(6)[None, :]).astype(float)
    full = np.column_stack([dummies, x])
    rss_full = np.linalg.lstsq(full, y, rcond=None)[1][0]
    rss_red = np.linalg.lstsq(dummies, y, rcond=None)[1][0]
    slope = np.linalg.lstsq(full, y, rcond=None)[0][-1]
    r_ref = np.sign(slope) * np.sqrt((rss_red - rss_full) / rss_red)
    assert res["r"] == pytest.approx(r_ref) and res["df"] == 48 - 6 - 1
    f = (rss_red - rss_full) / (rss_full / 41)
    assert res["p"] == pytest.approx(stats.f.sf(f, 1, 41))


def test_cluster_bootstrap_resamples_whole_clusters():
    clusters = ["a"] * 5 + ["b"] * 5
    vals = np.array([1.0] * 5 + [3.0] * 5)
    lo, hi = metrics.cluster_bootstrap(lambda idx: vals[idx].mean(), clusters, n_boot=400)
    assert lo == 1.0 and hi == 3.0  # only aa, ab, bb: means 1, 2, 3


def test_robust_z_floors_orients_and_clips():
    ref = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 12.0]])
    z = metrics.robust_z(np.array([[1.5, 10.0], [9.0, 10.0]]), ref,
                         floor=np.array([0.1, 0.1]), sign=np.array([-1.0, 1.0]))
    np.testing.assert_allclose(z, [[-4.0, 0.0], [-4.0, 0.0]])
    z = metrics.robust_z(np.array([[1.05, 11.0]]), ref, floor=np.array([0.1, 0.1]),
                         sign=np.array([-1.0, 1.0]))
    np.testing.assert_allclose(z, [[-0.5, 4.0]])  # MAD 0 → floor 0.1: z = 10, clipped


def test_mahalanobis_d2_identity_covariance_is_squared_distance():
    ref = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    d2 = metrics.mahalanobis_d2(np.array([[4.0, 1.0]]), ref, np.eye(2))
    assert d2[0] == pytest.approx(9.0)
