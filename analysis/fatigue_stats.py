"""Statistical building blocks of the fatigue index OT-FI (methods.md §2.4–§2.5).

Pure NumPy/SciPy, deterministic (every random draw takes an explicit seed):

* `cusum_upper` — one-sided CUSUM (Page 1954, Biometrika 41:100) with onset estimate.
* `ewma` — exponentially weighted moving average (for display).
* `pelt_mean` — PELT change points for a Gaussian mean shift (Killick, Fearnhead & Eckley 2012,
  JASA 107:1590, doi:10.1080/01621459.2012.737745).
* `theil_sen` — Theil–Sen slope with Kendall's τ test (`scipy.stats.theilslopes`, `kendalltau`).
* `block_bootstrap_mean` — moving-block bootstrap of a mean (Künsch 1989, Ann Stat 17:1217).
* `ledoit_wolf` — Ledoit & Wolf (2004, J Multivar Anal 88:365) shrinkage covariance.
* `sample_entropy` — SampEn (Richman & Moorman 2000, Am J Physiol 278:H2039).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from scipy.spatial import cKDTree

__all__ = [
    "block_bootstrap_mean",
    "cusum_upper",
    "ewma",
    "ledoit_wolf",
    "pelt_mean",
    "sample_entropy",
    "theil_sen",
]

FloatArray = NDArray[np.float64]


def cusum_upper(x: Any, *, k: float = 0.5, h: float = 4.0) -> tuple[FloatArray, int | None, int]:
    """One-sided upper CUSUM ``S_t = max(0, S_{t-1} + x_t − k)``.

    Parameters
    ----------
    x : array_like of float, shape (n,)
        Series in z units (NaN entries are skipped: ``S`` carries over unchanged).
    k : float, default 0.5
        Reference value (allowance), z units (methods.md §2.4: k = 0.5σ).
    h : float, default 4
        Decision interval, z units (§2.5 step 7: h = 4, in-control ARL ≈ 168 for Gaussian data).

    Returns
    -------
    S : ndarray of float64, shape (n,)
        The CUSUM statistic.
    alarm : int or None
        First index with ``S > h``; None when never.
    onset : int
        Index of the first sample of the excursion that alarmed: one past the last index with
        ``S == 0`` before the alarm (0 when S was never zero). Meaningful only with an alarm.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    out = np.zeros(xs.size)
    s, alarm, last_zero = 0.0, None, -1
    for t, v in enumerate(xs):
        if np.isfinite(v):
            s = max(0.0, s + v - k)
        out[t] = s
        if s == 0.0:
            last_zero = t
        if alarm is None and s > h:
            alarm = t
            break
    if alarm is not None:
        # Continue the statistic after the alarm for display (no reset).
        for t in range(alarm + 1, xs.size):
            if np.isfinite(xs[t]):
                s = max(0.0, s + xs[t] - k)
            out[t] = s
    return out, alarm, last_zero + 1


def ewma(x: Any, *, lam: float = 0.2, start: float = 0.0) -> FloatArray:
    """EWMA ``z_t = λ x_t + (1 − λ) z_{t−1}``, ``z_{−1} = start``; NaN entries carry over.

    Parameters
    ----------
    x : array_like of float, shape (n,)
    lam : float, default 0.2
        Smoothing constant λ in (0, 1] (methods.md §2.4).
    start : float, default 0
        Starting value (the in-control mean of a z series).

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"lam must be in (0, 1], got {lam!r}")
    xs = np.asarray(x, dtype=np.float64).ravel()
    out = np.empty(xs.size)
    z = float(start)
    for t, v in enumerate(xs):
        if np.isfinite(v):
            z = lam * v + (1.0 - lam) * z
        out[t] = z
    return out


def pelt_mean(x: Any, *, penalty: float, min_size: int = 3) -> list[int]:
    """Change points for a change in mean, penalised (the optimum PELT finds).

    Exact minimiser of ``Σ_segments SSE + penalty·(number of change points)`` over segmentations
    whose segments all have at least `min_size` points. PELT (Killick et al. 2012) returns this
    same optimum faster by pruning; a session has at most a few hundred windows, so the optimal
    partitioning recursion (Jackson et al. 2005, IEEE SPL 12:105) is computed in full, vectorised
    over the candidate last change point, and is exact with the minimum-size constraint.

    Parameters
    ----------
    x : array_like of float, shape (n,)
        Finite series (z units).
    penalty : float
        β per change point, in the units of the cost (squared z); §2.5 uses 2σ²·ln n.
    min_size : int, default 3
        Minimum segment length, samples.

    Returns
    -------
    list of int
        Sorted change-point indices τ (a new segment starts at τ); empty when none.

    Raises
    ------
    ValueError
        If `x` has non-finite values, or `min_size` < 1, or `penalty` < 0.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(xs)):
        raise ValueError("x must be finite for pelt_mean")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size!r}")
    if penalty < 0:
        raise ValueError(f"penalty must be >= 0, got {penalty!r}")
    n = xs.size
    if n < 2 * min_size:
        return []
    c1 = np.concatenate([[0.0], np.cumsum(xs)])
    c2 = np.concatenate([[0.0], np.cumsum(xs * xs)])
    f = np.full(n + 1, np.inf)
    f[0] = -penalty
    last = np.zeros(n + 1, dtype=np.int64)
    for t in range(min_size, n + 1):
        s = np.arange(0, t - min_size + 1)
        m = t - s
        seg = c1[t] - c1[s]
        vals = f[s] + (c2[t] - c2[s]) - seg * seg / m + penalty
        j = int(np.argmin(vals))
        f[t] = vals[j]
        last[t] = s[j]
    cps: list[int] = []
    t = n
    while t > 0:
        s0 = int(last[t])
        if s0 > 0:
            cps.append(s0)
        t = s0
    return sorted(cps)


def theil_sen(t: Any, y: Any) -> dict[str, float | None]:
    """Theil–Sen slope of `y` on `t` with Kendall's τ and its two-sided p-value.

    Parameters
    ----------
    t, y : array_like of float, shape (n,)
        Abscissa (any unit) and ordinate; pairs with a non-finite value are dropped.

    Returns
    -------
    dict
        ``slope`` (y units per t unit), ``intercept``, ``slope_lo``/``slope_hi`` (95 % CI of the
        slope, `scipy.stats.theilslopes`), ``tau``, ``p`` (Kendall τ-b test), ``n``. With fewer
        than 3 points or a constant `t`, every value but ``n`` is None.
    """
    tt = np.asarray(t, dtype=np.float64).ravel()
    yy = np.asarray(y, dtype=np.float64).ravel()
    if tt.shape != yy.shape:
        raise ValueError(f"t and y must have the same shape, got {tt.shape} and {yy.shape}")
    ok = np.isfinite(tt) & np.isfinite(yy)
    tt, yy = tt[ok], yy[ok]
    out: dict[str, float | None] = {
        "slope": None,
        "intercept": None,
        "slope_lo": None,
        "slope_hi": None,
        "tau": None,
        "p": None,
        "n": float(tt.size),
    }
    if tt.size < 3 or np.ptp(tt) == 0:
        return out
    res = stats.theilslopes(yy, tt, alpha=0.95)
    out.update(
        slope=float(res[0]), intercept=float(res[1]), slope_lo=float(res[2]), slope_hi=float(res[3])
    )
    if np.ptp(yy) > 0:
        kt = stats.kendalltau(tt, yy)
        out.update(tau=float(kt.statistic), p=float(kt.pvalue))
    else:
        out.update(tau=0.0, p=1.0)
    return out


def block_bootstrap_mean(
    x: Any, *, n_boot: int = 1000, block: int = 5, seed: int = 0
) -> FloatArray:
    """Moving-block bootstrap replicates of the mean of a series.

    Each replicate concatenates ``ceil(n / block)`` blocks of `block` consecutive values with
    uniformly drawn starts in ``0 … n − block`` and truncates to n (Künsch 1989).

    Parameters
    ----------
    x : array_like of float, shape (n,)
        Finite series, n ≥ 1.
    n_boot : int, default 1000
        Number of replicates (methods.md §2.5 step 8).
    block : int, default 5
        Block length, samples (windows); shortened to n when n < block.
    seed : int, default 0
        Seed of `numpy.random.default_rng`.

    Returns
    -------
    ndarray of float64, shape (n_boot,)
        Replicate means.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    if xs.size == 0 or not np.all(np.isfinite(xs)):
        raise ValueError("x must be a non-empty finite series")
    if n_boot < 1 or block < 1:
        raise ValueError(f"n_boot and block must be >= 1, got {n_boot!r}, {block!r}")
    n = xs.size
    b = min(block, n)
    n_blocks = -(-n // b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - b + 1, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(n_boot, -1)[:, :n]
    return xs[idx].mean(axis=1)  # type: ignore[no-any-return]


def ledoit_wolf(x: Any) -> tuple[FloatArray, float]:
    """Ledoit–Wolf (2004) shrinkage covariance towards a scaled identity.

    ``Σ̂ = (1 − δ)·S + δ·μ·I`` with ``S`` the (1/n) sample covariance, ``μ = tr(S)/p`` and
    ``δ = min(1, b̄² / d²)``, ``d² = ‖S − μI‖²_F / p``,
    ``b̄² = (1/n²) Σ_i ‖x_i x_iᵀ − S‖²_F / p`` (Ledoit & Wolf 2004, Lemma 3.2–3.3; the same
    estimator as scikit-learn's ``ledoit_wolf`` with centring).

    Parameters
    ----------
    x : array_like of float, shape (n_samples, p)
        Finite observations, n ≥ 2.

    Returns
    -------
    cov : ndarray of float64, shape (p, p)
    shrinkage : float
        δ in [0, 1].
    """
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 2 or xs.shape[0] < 2 or not np.all(np.isfinite(xs)):
        raise ValueError(f"x must be a finite (n >= 2, p) array, got shape {xs.shape}")
    n, p = xs.shape
    xc = xs - xs.mean(axis=0)
    s = xc.T @ xc / n
    mu = float(np.trace(s)) / p
    d2 = float(np.sum((s - mu * np.eye(p)) ** 2)) / p
    x2 = xc * xc
    b2 = float(np.sum(x2.T @ x2) / n - np.sum(s * s)) / (n * p)
    b2 = min(b2, d2)
    delta = 0.0 if d2 == 0.0 else b2 / d2
    return (1.0 - delta) * s + delta * mu * np.eye(p), delta


def sample_entropy(x: Any, *, m: int = 2, r: float | None = None, r_sd: float = 0.2) -> float:
    """Sample entropy SampEn(m, r) = −ln(A / B) (Richman & Moorman 2000).

    B counts pairs of distinct templates of length m within Chebyshev distance ≤ r, A the same
    for length m + 1; both over the first N − m templates, self-matches excluded. Pairs are
    counted exactly with `scipy.spatial.cKDTree.count_neighbors` (p = ∞), as §2.3 item 7 suggests.

    Parameters
    ----------
    x : array_like of float, shape (n,)
        Finite series.
    m : int, default 2
        Template length (methods.md §2.3 F_sampen).
    r : float, optional
        Tolerance in the units of `x`; default ``r_sd · SD(x)``.
    r_sd : float, default 0.2
        Tolerance as a fraction of the SD (population SD, ddof = 0).

    Returns
    -------
    float
        SampEn, or NaN when A or B is zero or the series is shorter than m + 2 or constant.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    n = xs.size
    if n < m + 2 or not np.all(np.isfinite(xs)):
        return float("nan")
    tol = float(r) if r is not None else r_sd * float(np.std(xs))
    if tol <= 0.0:
        return float("nan")
    nt = n - m
    emb = np.stack([xs[j : j + nt] for j in range(m + 1)], axis=1)  # (nt, m+1)
    # count_neighbors counts ordered pairs at Chebyshev distance <= tol, self-pairs included.
    tree_m = cKDTree(emb[:, :m])
    tree_m1 = cKDTree(emb)
    b = (int(tree_m.count_neighbors(tree_m, tol, p=np.inf)) - nt) // 2
    a = (int(tree_m1.count_neighbors(tree_m1, tol, p=np.inf)) - nt) // 2
    if a == 0 or b == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(-np.log(a / b))
