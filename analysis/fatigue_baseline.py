"""Task matching and the between-session baseline of OT-FI (methods.md §2.5 steps 3, 4 and 6).

* `cluster` — k-means++ (`scipy.cluster.vq.kmeans2`, fixed seed) with k chosen by the mean
  silhouette (computed in NumPy), k = 1 when no split is clear enough.
* `build_baseline` — the patient's first sessions pooled into strata (task tags, else clusters of
  the task signature), each with a robust reference and a Ledoit–Wolf covariance for D².
* `MahalanobisRef` — D² of windows from a reference, with the χ²_p 0.99 "atypical" threshold.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.cluster.vq import kmeans2

from analysis.fatigue_params import (
    DEFAULT_PARAMS,
    FatigueParams,
    feature_matrix,
    robust_reference,
    trailing_sums,
)
from analysis.fatigue_stats import ledoit_wolf
from analysis.fatigue_windows import FatigueWindows

__all__ = [
    "Baseline",
    "MahalanobisRef",
    "Stratum",
    "build_baseline",
    "cluster",
    "posture",
    "silhouette",
]

FloatArray = NDArray[np.float64]


def silhouette(x: FloatArray, labels: NDArray[np.int64]) -> float:
    """Mean silhouette (Rousseeuw 1987) with Euclidean distances; 0 for fewer than 2 clusters.

    Parameters
    ----------
    x : ndarray of float, shape (n, p)
    labels : ndarray of int, shape (n,)
    """
    ks = np.unique(labels)
    if ks.size < 2:
        return 0.0
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2), 0.0))
    s = np.zeros(x.shape[0])
    mean_to = np.stack([d[:, labels == k].sum(axis=1) for k in ks], axis=1)
    size = np.array([np.sum(labels == k) for k in ks], dtype=np.float64)
    own = np.searchsorted(ks, labels)
    n_own = size[own]
    a = np.where(n_own > 1, mean_to[np.arange(x.shape[0]), own] / np.maximum(n_own - 1, 1), 0.0)
    other = mean_to / size[None, :]
    other[np.arange(x.shape[0]), own] = np.inf
    b = other.min(axis=1)
    den = np.maximum(a, b)
    s = np.where((n_own > 1) & (den > 0), (b - a) / np.where(den > 0, den, 1.0), 0.0)
    return float(s.mean())


def cluster(
    x: FloatArray,
    *,
    k_range: tuple[int, int],
    min_silhouette: float,
    seed: int,
    min_size: int = 1,
    min_separation: float = 0.0,
) -> tuple[FloatArray, NDArray[np.int64], float]:
    """k-means++ with k in `k_range` chosen by the largest mean silhouette.

    Parameters
    ----------
    x : ndarray of float, shape (n, p)
        Finite points (already standardised as wanted).
    k_range : (int, int)
        Smallest and largest k tried (inclusive).
    min_silhouette : float
        Below this best silhouette, or with a cluster smaller than `min_size`, or two centroids
        closer than `min_separation` (units of `x`), one cluster. The silhouette is scale-free,
        so without a separation floor tiny posture differences within one task would split.
    seed : int
        Seed of the k-means++ initialisation.

    Returns
    -------
    centroids : ndarray of float64, shape (k, p)
    labels : ndarray of int64, shape (n,)
    score : float
        Silhouette of the chosen split (0 for one cluster).
    """
    n = x.shape[0]
    best: tuple[FloatArray, NDArray[np.int64], float] = (
        x.mean(axis=0, keepdims=True),
        np.zeros(n, np.int64),
        0.0,
    )
    best_score = -np.inf
    for k in range(k_range[0], min(k_range[1], n - 1) + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kmeans2 warns about empty clusters
            cent, lab = kmeans2(x, k, minit="++", seed=np.random.default_rng(seed + k))
        used = np.unique(lab)
        if used.size < 2:
            continue
        lab = np.searchsorted(used, lab).astype(np.int64)
        cent = np.stack([x[lab == j].mean(axis=0) for j in range(used.size)])
        if np.bincount(lab).min() < min_size:
            continue
        gaps = np.sqrt(((cent[:, None, :] - cent[None]) ** 2).sum(axis=2))
        if gaps[np.triu_indices(used.size, 1)].min() < min_separation:
            continue
        score = silhouette(x, lab)
        if score > best_score:
            best_score = score
            if score >= min_silhouette:
                best = (cent, lab, score)
    return best


@dataclass(frozen=True, slots=True)
class MahalanobisRef:
    """Reference for D²: features `cols`, robust centre/scale, inverse Ledoit–Wolf covariance."""

    cols: NDArray[np.int64]
    med: FloatArray
    scale: FloatArray
    cov_inv: FloatArray
    crit: float

    @classmethod
    def fit(
        cls,
        x_ref: FloatArray,
        params: FatigueParams = DEFAULT_PARAMS,
        *,
        active_min: FloatArray | None = None,
    ) -> MahalanobisRef | None:
        """From reference windows (n_ref, 9); None with < 3 rows or no usable feature."""
        cover = np.mean(np.isfinite(x_ref), axis=0) if x_ref.shape[0] else np.zeros(x_ref.shape[1])
        cols = np.flatnonzero(cover >= params.feature_min_coverage)
        if x_ref.shape[0] < 3 or cols.size == 0:
            return None
        med, scale = robust_reference(x_ref, params, active_min=active_min)
        u = np.nan_to_num((x_ref[:, cols] - med[cols]) / scale[cols])  # NaN → the median
        cov, _ = ledoit_wolf(u)
        cov_inv = np.asarray(np.linalg.pinv(cov), dtype=np.float64)
        crit = float(stats.chi2.ppf(params.atypical_quantile, cols.size))
        return cls(cols, med[cols], scale[cols], cov_inv, crit)

    def d2(self, x: FloatArray) -> FloatArray:
        """D² per window, shape (n,); a missing feature is set to the reference median."""
        u = np.nan_to_num((x[:, self.cols] - self.med) / self.scale)
        return np.einsum("ij,jk,ik->i", u, self.cov_inv, u)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Stratum:
    """One task stratum of the baseline: label, signature centroid, novelty radius, references."""

    label: str
    centroid: FloatArray
    radius: float
    med: FloatArray
    scale: FloatArray
    maha: MahalanobisRef | None
    n_windows: int


@dataclass(frozen=True, slots=True)
class Baseline:
    """The patient's between-session reference R_between (§2.5 step 4).

    `tagged` strata are chosen by the session's task tag; otherwise windows are assigned to the
    nearest posture centroid (mean unit gravity vector, device axes) and are "novel task" beyond
    the stratum's radius (P99 of its baseline distances, at least `min_radius`).
    """

    strata: tuple[Stratum, ...]
    tagged: bool

    def assign(
        self, fw: FatigueWindows, task: str | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Stratum index per window (−1: no stratum) and the novel-task mask."""
        n = len(fw)
        if self.tagged:
            labels = [s.label for s in self.strata]
            j = labels.index(task) if task in labels else -1
            return np.full(n, j, np.int64), np.zeros(n, bool)
        u = posture(fw)
        cent = np.stack([s.centroid for s in self.strata])
        dist = np.sqrt(((u[:, None, :] - cent[None]) ** 2).sum(axis=2))
        lab = np.argmin(dist, axis=1).astype(np.int64)
        radius = np.array([s.radius for s in self.strata])
        novel = dist[np.arange(n), lab] > radius[lab]
        return lab, novel


def posture(fw: FatigueWindows) -> FloatArray:
    """Task-matching coordinates: the window's unit gravity vector (0 where unknown), (n, 3).

    Only posture is used, not the intensity and tempo of the signature: fatigue changes those,
    and matching on them would call fatigued windows a new task (docs/fatigue.md §3).
    """
    g = fw.signature[:, 3:6]
    return np.where(np.isfinite(g), g, 0.0)


def build_baseline(
    sessions: Sequence[FatigueWindows],
    *,
    tags: Sequence[str] | None = None,
    params: FatigueParams = DEFAULT_PARAMS,
) -> Baseline | None:
    """Pool the analysable windows of the patient's first sessions into a baseline.

    Parameters
    ----------
    sessions : sequence of FatigueWindows
        One table per baseline session (§2.5: the first 3 sessions or first 7 days).
    tags : sequence of str, optional
        The task tag of each session; when given, strata are the tags.
    params : FatigueParams

    Returns
    -------
    Baseline or None
        None when fewer than `baseline_min_windows` analysable windows exist in total (or, with
        tags, in every tag).

    Raises
    ------
    ValueError
        If `tags` is given with a length different from `sessions`.
    """
    if tags is not None and len(tags) != len(sessions):
        raise ValueError(f"tags must have one entry per session ({len(sessions)}), got {len(tags)}")
    xs, sigs, acts, tag_of = [], [], [], []
    for i, fw in enumerate(sessions):
        x = feature_matrix(fw, params)[fw.analysable]
        acts.append(trailing_sums(fw, params)[0][fw.analysable] / 60.0)
        xs.append(x)
        sigs.append(posture(fw)[fw.analysable])
        tag_of += [tags[i] if tags is not None else ""] * x.shape[0]
    if not xs:
        return None
    x_all, u, a_all = np.concatenate(xs), np.concatenate(sigs), np.concatenate(acts)
    if x_all.shape[0] < params.baseline_min_windows:
        return None
    if tags is not None:
        names = sorted(set(tag_of))
        lab = np.array([names.index(t) for t in tag_of], np.int64)
        keep = [j for j in range(len(names)) if np.sum(lab == j) >= params.baseline_min_windows]
        if not keep:
            return None
        groups = [(names[j], lab == j) for j in keep]
    else:
        _, lab, _ = cluster(
            u,
            k_range=params.k_range,
            min_silhouette=params.min_silhouette,
            seed=params.seed,
            min_separation=params.novel_min_radius,
        )
        lab = _pool_small(u, lab, params.baseline_min_windows)
        groups = [(f"cluster{j}", lab == j) for j in range(int(lab.max()) + 1)]
    strata = []
    for label, m in groups:
        c = u[m].mean(axis=0)
        dist = np.sqrt(((u[m] - c) ** 2).sum(axis=1))
        med, sc = robust_reference(x_all[m], params, active_min=a_all[m])
        radius = max(float(np.quantile(dist, params.novel_quantile)), params.novel_min_radius)
        strata.append(
            Stratum(
                label,
                c,
                radius,
                med,
                sc,
                MahalanobisRef.fit(x_all[m], params, active_min=a_all[m]),
                int(m.sum()),
            )
        )
    return Baseline(tuple(strata), tags is not None)


def _pool_small(u: FloatArray, lab: NDArray[np.int64], min_n: int) -> NDArray[np.int64]:
    """Merge clusters with < `min_n` members into the nearest other cluster, then relabel 0..k−1."""
    lab = lab.copy()
    while True:
        ks, counts = np.unique(lab, return_counts=True)
        if ks.size < 2 or counts.min() >= min_n:
            break
        small = ks[np.argmin(counts)]
        cents = {int(k): u[lab == k].mean(axis=0) for k in ks}
        others = [int(k) for k in ks if k != small]
        d = [float(np.sum((cents[int(small)] - cents[k]) ** 2)) for k in others]
        lab[lab == small] = others[int(np.argmin(d))]
    return np.searchsorted(np.unique(lab), lab).astype(np.int64)
