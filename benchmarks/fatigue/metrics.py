"""Validation statistics: AUC, cluster bootstrap, repeated-measures correlation, robust z."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(pos > neg) + ½·P(tie) (Mann–Whitney); NaN dropped (±inf kept); NaN if a side is empty."""
    p = np.asarray(pos, float)
    n = np.asarray(neg, float)
    p, n = p[~np.isnan(p)], n[~np.isnan(n)]
    if not len(p) or not len(n):
        return float("nan")
    ranks = stats.rankdata(np.concatenate([p, n]))
    u = ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2
    return float(u / (len(p) * len(n)))


def cluster_bootstrap(
    statistic: Callable[[np.ndarray], float], clusters: Sequence[object], *, n_boot: int = 1000,
    seed: int = 0, level: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI of ``statistic(idx)`` over resampled clusters.

    ``statistic`` receives the integer indices of the items (rows) in the resample; whole
    clusters (e.g. base recordings) are drawn with replacement.
    """
    labels = np.asarray([str(c) for c in clusters])
    uniq = np.unique(labels)
    members = [np.flatnonzero(labels == u) for u in uniq]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        v = statistic(np.concatenate([members[i] for i in pick]))
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return float("nan"), float("nan")
    lo, hi = np.percentile(vals, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def rmcorr(subject: Sequence[object], x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Repeated-measures correlation (Bakdash & Marusich 2017, Front Psychol 8:456).

    The common within-subject slope of an ANCOVA: x and y centred on each subject's means,
    r = Σxy / √(Σx²·Σy²), df = N − k − 1 (k subjects), two-sided t test.
    """
    s = np.asarray([str(v) for v in subject])
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    s, xa, ya = s[ok], xa[ok], ya[ok]
    xc, yc = xa.copy(), ya.copy()
    for u in np.unique(s):
        m = s == u
        xc[m] -= xa[m].mean()
        yc[m] -= ya[m].mean()
    den = np.sqrt((xc**2).sum() * (yc**2).sum())
    r = float((xc * yc).sum() / den) if den > 0 else float("nan")
    df = len(xa) - len(np.unique(s)) - 1
    if df < 1 or not np.isfinite(r) or abs(r) >= 1:
        return {"r": r, "df": float(df), "p": float("nan")}
    t = r * np.sqrt(df / (1 - r * r))
    return {"r": r, "df": float(df), "p": float(2 * stats.t.sf(abs(t), df))}


def robust_z(x: np.ndarray, ref: np.ndarray, *, floor: np.ndarray, sign: np.ndarray,
             clip: float = 4.0) -> np.ndarray:
    """Oriented robust z of methods.md §2.5 steps 4–5: sign·(x − median)/max(1.4826·MAD, floor).

    ``x`` (n, p) is scored against ``ref`` (m, p); clipped to ±``clip``.
    """
    med = np.nanmedian(ref, axis=0)
    mad = 1.4826 * np.nanmedian(np.abs(ref - med), axis=0)
    sd = np.maximum(mad, floor)
    return np.clip(sign * (x - med) / sd, -clip, clip)


def mahalanobis_d2(x: np.ndarray, ref: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """D² of each row of ``x`` from the mean of ``ref`` under ``cov`` (pseudo-inverse)."""
    diff = x - ref.mean(axis=0)
    return np.einsum("ij,jk,ik->i", diff, np.linalg.pinv(cov), diff)


def median_iqr(x: Sequence[float]) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile of the finite values (NaNs if none)."""
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    if not len(a):
        return (float("nan"),) * 3
    q = np.percentile(a, [50, 25, 75])
    return float(q[0]), float(q[1]), float(q[2])
