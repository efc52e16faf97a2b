"""Closest-point least-squares fit of offset, scale (and temperature) onto the unit sphere.

The numerical core of `analysis.calibration` (van Hees et al. 2014; methods.md §1.7 step 4;
see that module's docstring for the two stages and why).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_ITERATIONS", "MAX_WEIGHT", "TOLERANCE", "fit_sphere"]

#: Iteration cap, GGIR ``maxiter = 1000`` (methods.md §1.7 step 4).
MAX_ITERATIONS = 1000
#: Stop when the weighted residual changes by less than this, GGIR ``tol = 1e-10`` (§1.7).
TOLERANCE = 1e-10
#: Weight cap 1/0.01 = 100, GGIR (methods.md §1.7 step 4.5).
MAX_WEIGHT = 100.0
#: Stage-1 convergence: coefficient changes below 1e-10 g (offset) and 1e-10 (scale);
#: ours, far below the 5-mg / 0.5 % accuracy that matters (`analysis.calibration` docstring).
_STAGE1_TOLERANCE = 1e-10


def _wls(
    design: NDArray[np.float64], target: NDArray[np.float64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)
    return np.asarray(coef, dtype=np.float64)


_Params = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def _icp_step(
    x: NDArray[np.float64],
    t: NDArray[np.float64],
    use_temp: bool,
    params: _Params,
    weights: NDArray[np.float64],
) -> tuple[_Params, NDArray[np.float64], float]:
    """One closest-point weighted least-squares update (van Hees 2014; methods.md §1.7 step 4)."""
    offset, scale, toff = params
    k = x.shape[0]
    curr = (x + offset) * scale + t[:, None] * toff
    closest = curr / np.linalg.norm(curr, axis=1, keepdims=True)
    d_off, d_scale, d_temp = np.zeros(3), np.ones(3), np.zeros(3)
    for j in range(3):
        cols = [np.ones(k), curr[:, j]] + ([t] if use_temp else [])
        design = np.stack(cols, axis=1)
        coef = _wls(design, closest[:, j], weights)
        d_off[j], d_scale[j] = coef[0], coef[1]
        if use_temp:
            d_temp[j] = coef[2]
        curr[:, j] = design @ coef
    new = (offset + d_off / (scale * d_scale), scale * d_scale, toff * d_scale + d_temp)
    resid = curr - closest
    res = 3.0 * float(np.mean(weights[:, None] * resid**2 / weights.sum()))
    return new, resid, res


def fit_sphere(
    means_g: NDArray[Any], temps_c: NDArray[Any] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, int]:
    """Iterative closest-point least-squares fit onto the unit sphere (step 4).

    Unweighted iterations to convergence, then the van Hees weighted iterations with
    GGIR's stopping rule (module docstring: why two stages).

    Parameters
    ----------
    means_g : ndarray of float, shape (k, 3)
        Still-window means in g.
    temps_c : ndarray of float, shape (k,), optional
        Window temperatures in °C; all-NaN or None fits without a temperature term.

    Returns
    -------
    offset_g : ndarray of float64, shape (3,)
        Offset in g.
    scale : ndarray of float64, shape (3,)
        Gain per axis.
    temp_offset_g_per_c : ndarray of float64, shape (3,)
        Temperature coefficient in g/°C (zeros without temperature).
    temp_mean_c : float
        Mean of `temps_c` in °C (NaN without temperature).
    n_iterations : int
        Iterations run.

    References
    ----------
    van Hees VT et al. (2014) J Appl Physiol 117(7):738–744, doi:10.1152/japplphysiol.00421.2014.
    """
    x = np.asarray(means_g, dtype=np.float64)
    k = x.shape[0]
    temps = np.full(k, np.nan) if temps_c is None else np.asarray(temps_c, dtype=np.float64)
    use_temp = bool(np.isfinite(temps).all())
    temp_mean = float(np.mean(temps)) if use_temp else float("nan")
    t = temps - temp_mean if use_temp else np.zeros(k)
    params = (np.zeros(3), np.ones(3), np.zeros(3))
    # Stage 1: unweighted iterations to convergence of the coefficients. Their fixed point
    # does not depend on where the iteration starts, so the result is equivariant: data
    # with a known error injected calibrate to the same corrected values.
    n1 = 0
    for n1 in range(1, MAX_ITERATIONS + 1):
        new, _, _ = _icp_step(x, t, use_temp, params, np.ones(k))
        change = max(
            np.abs(new[0] - params[0]).max(),
            np.abs(new[1] / params[1] - 1.0).max(),
            np.abs(new[2] - params[2]).max() * 10.0,  # g/°C over a ±5 °C spread
        )
        params = new
        if change < _STAGE1_TOLERANCE:
            break
    # Stage 2: the van Hees 2014 / GGIR iterations with weights min(1/distance, 100) and
    # GGIR's stopping rule on res = 3 · mean(w · resid² / Σw) (methods.md §1.7 step 4).
    weights = np.ones(k)
    res_prev = np.inf
    n2 = 0
    for n2 in range(1, MAX_ITERATIONS + 1):
        params, resid, res = _icp_step(x, t, use_temp, params, weights)
        with np.errstate(divide="ignore"):
            weights = np.minimum(1.0 / np.linalg.norm(resid, axis=1), MAX_WEIGHT)
        if abs(res - res_prev) < TOLERANCE:
            break
        res_prev = res
    offset, scale, toff = params
    it = n1 + n2
    return offset, scale, toff, temp_mean, it
