"""Auto-calibration on the gravity sphere (van Hees et al. 2014), with QC figures.

Method (methods.md §1.7; re-implemented from the paper and the GGIR ``g.calibrate``
description, checked against GGIR's output on real data):

1. Cut the signal into 10-s windows (`WINDOW_S`); per window compute the mean and the
   SD (ddof = 1) of every axis.
2. Keep the *still* windows: SD < 13 mg on all axes (`SD_CRITERION_G`) and |mean| < 2 g on
   every axis (`MAX_ABS_MEAN_G`, excludes clipping). Their means should lie on the unit
   sphere, since at rest the only acceleration is gravity (1 g).
3. Require ≥ 10 such windows (`MIN_POINTS`) and points on both sides of the sphere on every
   axis: min(mean) < −0.3 g and max(mean) > +0.3 g (`SPHERE_CRITERION_G`). Otherwise the
   fit is not identifiable and no correction is returned.
4. Fit ``a_cal = (a + offset) · scale (+ (T − T̄) · temp_offset)`` by iterative
   closest-point least squares: project the corrected points onto the unit sphere,
   regress the projections on the corrected points per axis, update. Two stages:
   (a) unweighted iterations until the coefficients change by < 1e-10; (b) from there,
   the van Hees / GGIR weighted iterations, ``w = min(1 / distance, 100)``
   (`MAX_WEIGHT`), stopping when GGIR's residual ``3 · mean(w · resid² / Σw)`` changes
   by less than 1e-10 (`TOLERANCE`), at most 1000 iterations (`MAX_ITERATIONS`); the
   constants and the fit live in `analysis.sphere_fit`.
5. Accept only if the calibration error (mean | ‖mean vector‖ − 1 | over the still windows)
   decreases and ends below 10 mg (`ACCEPT_ERROR_G`). A rejected calibration carries the
   identity correction, so applying it never makes data worse.

Deviations from GGIR, on purpose:

* Stage (a). GGIR starts the weighted iterations at offset 0, scale 1, and its stopping
  rule is loose (its residual is also divided by the number of points), so it stops
  before convergence at a point that depends on the size of the device's error. On real
  still periods with known errors injected, that procedure misses the injected offsets by
  up to 21 mg; started from the converged unweighted fit (which does not depend on the
  starting point) the same weighted iterations recover them, and agree with GGIR's
  published result on the 20.7-h reference recording within 2.1 mg offset and 0.30 %
  scale (the GGIR-identical start: 1.0 mg / 0.11 %; iterating the weighted fit to full
  convergence: 4.4 mg / 0.54 %). See tests/analysis/test_calibration.py and docs/analysis.md.
* GGIR also requires a minimum recording length (``minloadcrit``, 72–168 h). We calibrate
  any recording that passes the point and sphere-coverage checks; `Calibration.hours_used`
  and ``n_points`` report how much evidence the fit had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.sphere_fit import fit_sphere

__all__ = [
    "ACCEPT_ERROR_G",
    "MAX_ABS_MEAN_G",
    "MIN_POINTS",
    "SD_CRITERION_G",
    "SPHERE_CRITERION_G",
    "WINDOW_S",
    "Calibration",
    "apply_calibration",
    "calibrate",
    "fit_sphere",
    "still_window_features",
]

#: Window length for features, GGIR ``calibEpochSize`` / ``ws4 = 10`` s (methods.md §1.7).
WINDOW_S = 10.0
#: Still-window SD criterion on every axis, GGIR ``sdcriter = 0.013`` g (methods.md §1.7).
SD_CRITERION_G = 0.013
#: |mean| bound on every axis that excludes clipped windows, 2 g (methods.md §1.7).
MAX_ABS_MEAN_G = 2.0
#: Fewer still windows than this: skip calibration, GGIR (methods.md §1.7 step 2).
MIN_POINTS = 10
#: Every axis needs still means below −0.3 g and above +0.3 g, GGIR ``spherecrit`` (§1.7).
SPHERE_CRITERION_G = 0.3
#: Accept only if the error after calibration is below 0.01 g (methods.md §1.7 step 5).
ACCEPT_ERROR_G = 0.01
_WINDOWS_PER_CHUNK = 4096  # bounds memory: 4096 windows × 10 s × 100 Hz × 3 × 8 B ≈ 100 MB


@dataclass(frozen=True, slots=True, eq=False)
class Calibration:
    """Result of `calibrate`: coefficients plus QC figures.

    Attributes
    ----------
    offset_g : ndarray of float64, shape (3,)
        Added to raw acceleration before scaling, in g (zeros when not ok).
    scale : ndarray of float64, shape (3,)
        Dimensionless gain per axis (ones when not ok).
    temp_offset_g_per_c : ndarray of float64, shape (3,)
        Temperature coefficient in g/°C applied to (T − `temp_mean_c`); zeros without
        temperature or when not ok.
    temp_mean_c : float
        Mean temperature of the still windows in °C (NaN without temperature).
    error_before_g : float
        Mean | ‖window mean‖ − 1 | over the still windows before calibration, in g
        (GGIR ``cal.error.start``; NaN if there were no still windows).
    error_after_g : float
        The same error after applying *the returned* coefficients, in g (GGIR
        ``cal.error.end``; equals `error_before_g` when the fit was rejected).
    n_points : int
        Number of still 10-s windows used (GGIR ``npoints``).
    hours_used : float
        Hours of data in the windows that were examined, in h.
    n_iterations : int
        Iterations of the fit (0 if none ran).
    ok : bool
        True if the calibration was accepted and should be applied.
    status : str
        ``"ok"``, ``"too_few_points"``, ``"poor_sphere_coverage"``, ``"fit_failed"``,
        ``"not_improved"`` or ``"error_too_large"``.
    message : str
        Human-readable QC message (why it was rejected, with the figures).
    """

    offset_g: NDArray[np.float64]
    scale: NDArray[np.float64]
    temp_offset_g_per_c: NDArray[np.float64]
    temp_mean_c: float
    error_before_g: float
    error_after_g: float
    n_points: int
    hours_used: float
    n_iterations: int
    ok: bool
    status: str
    message: str

    def __post_init__(self) -> None:
        for name in ("offset_g", "scale", "temp_offset_g_per_c"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if arr.shape != (3,):
                raise ValueError(f"{name} must have shape (3,), got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats; NaN becomes None)."""

        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "ok": self.ok,
            "status": self.status,
            "message": self.message,
            "offset_g": self.offset_g.tolist(),
            "scale": self.scale.tolist(),
            "temp_offset_g_per_c": self.temp_offset_g_per_c.tolist(),
            "temp_mean_c": num(self.temp_mean_c),
            "error_before_g": num(self.error_before_g),
            "error_after_g": num(self.error_after_g),
            "n_points": self.n_points,
            "hours_used": self.hours_used,
            "n_iterations": self.n_iterations,
        }


def _check_accel(accel_g: Any, name: str = "accel_g") -> NDArray[Any]:
    arr = np.asarray(accel_g)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n_samples, 3), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def still_window_features(
    accel_g: NDArray[Any],
    *,
    fs_hz: float,
    temperature_c: NDArray[Any] | None = None,
    window_s: float = WINDOW_S,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Means of the still windows (step 1–2 of the method).

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Uniformly sampled raw acceleration in g; NaN marks gaps (windows holding NaN
        are skipped).
    fs_hz : float
        Sampling rate in Hz.
    temperature_c : ndarray of float, shape (n_samples,), optional
        Sensor temperature in °C.
    window_s : float, optional
        Window length in s, default 10 (methods.md §1.7).

    Returns
    -------
    means_g : ndarray of float64, shape (k, 3)
        Per-axis mean of each still window, in g.
    temps_c : ndarray of float64, shape (k,)
        Mean temperature of each still window in °C (NaN without temperature).
    hours_used : float
        Hours covered by complete windows without NaN, in h.

    Raises
    ------
    ValueError
        If `accel_g`, `fs_hz`, `window_s` or `temperature_c` is malformed.
    """
    acc = _check_accel(accel_g)
    if not (isinstance(fs_hz, int | float) and np.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive finite number, got {fs_hz!r}")
    if not (isinstance(window_s, int | float) and np.isfinite(window_s) and window_s > 0):
        raise ValueError(f"window_s must be a positive finite number, got {window_s!r}")
    per = round(window_s * fs_hz)
    if per < 2:
        raise ValueError(
            f"window_s * fs_hz must give at least 2 samples, got {window_s!r} * {fs_hz!r}"
        )
    temp = None
    if temperature_c is not None:
        temp = np.asarray(temperature_c, dtype=np.float64)
        if temp.shape != (acc.shape[0],):
            raise ValueError(f"temperature_c must have shape ({acc.shape[0]},), got {temp.shape}")
    n_win = acc.shape[0] // per
    means, temps, n_complete = [], [], 0
    for w0 in range(0, n_win, _WINDOWS_PER_CHUNK):
        w1 = min(n_win, w0 + _WINDOWS_PER_CHUNK)
        block = acc[w0 * per : w1 * per].astype(np.float64).reshape(w1 - w0, per, 3)
        mean = block.mean(axis=1)
        sd = block.std(axis=1, ddof=1)
        complete = np.isfinite(mean).all(axis=1)
        n_complete += int(complete.sum())
        keep = (
            complete
            & (sd < SD_CRITERION_G).all(axis=1)
            & (np.abs(mean) < MAX_ABS_MEAN_G).all(axis=1)
        )
        # A window of exact zeros is a device that stopped sampling (e.g. ActiGraph idle
        # sleep written as zeros), not gravity; it has no direction on the sphere.
        keep &= np.any(mean != 0.0, axis=1)
        means.append(mean[keep])
        if temp is not None:
            temps.append(temp[w0 * per : w1 * per].reshape(w1 - w0, per).mean(axis=1)[keep])
        else:
            temps.append(np.full(int(keep.sum()), np.nan))
    hours = n_complete * per / fs_hz / 3600.0
    if not means:
        return np.empty((0, 3)), np.empty(0), hours
    return np.concatenate(means), np.concatenate(temps), hours


def _sphere_error_g(x: NDArray[np.float64]) -> float:
    return float(np.mean(np.abs(np.linalg.norm(x, axis=1) - 1.0)))


def calibrate(
    accel_g: NDArray[Any],
    *,
    fs_hz: float,
    temperature_c: NDArray[Any] | None = None,
) -> Calibration:
    """Estimate offset and scale per axis from the still periods of a recording.

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Uniformly sampled raw acceleration in g, ideally the whole recording (days);
        NaN marks gaps.
    fs_hz : float
        Sampling rate in Hz.
    temperature_c : ndarray of float, shape (n_samples,), optional
        Sensor temperature in °C; adds the temperature term of van Hees 2014.

    Returns
    -------
    Calibration
        Coefficients and QC figures. When ``ok`` is False the coefficients are the
        identity and ``message`` says why (too few still windows, poor sphere coverage,
        fit failed or not good enough).

    Raises
    ------
    ValueError
        If the inputs are malformed (shape, rate).

    References
    ----------
    van Hees VT et al. (2014) J Appl Physiol 117(7):738–744, doi:10.1152/japplphysiol.00421.2014
    (methods.md §1.7).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = rng.normal(size=(200, 3)); v /= np.linalg.norm(v, axis=1, keepdims=True)
    >>> raw = np.repeat(v / [1.02, 0.98, 1.0] - [0.03, -0.02, 0.01], 100, axis=0)
    >>> cal = calibrate(raw, fs_hz=10.0)
    >>> cal.ok, np.round(cal.offset_g, 3).tolist(), np.round(cal.scale, 3).tolist()
    (True, [0.03, -0.02, 0.01], [1.02, 0.98, 1.0])
    """
    means, temps, hours = still_window_features(accel_g, fs_hz=fs_hz, temperature_c=temperature_c)
    n = int(means.shape[0])
    before = _sphere_error_g(means) if n else float("nan")
    ident = (np.zeros(3), np.ones(3), np.zeros(3))
    temp_mean = (
        float(np.mean(temps))
        if n and np.isfinite(temps).all() and temperature_c is not None
        else float("nan")
    )

    def reject(status: str, message: str, iterations: int = 0) -> Calibration:
        return Calibration(
            *ident, temp_mean, before, before, n, hours, iterations, False, status, message
        )

    if n < MIN_POINTS:
        return reject(
            "too_few_points",
            f"only {n} still 10-s windows (need ≥ {MIN_POINTS}); calibration skipped, factory values kept",
        )
    lo, hi = means.min(axis=0), means.max(axis=0)
    bad = [
        f"{axis} [{lo[j]:+.3f}, {hi[j]:+.3f}] g"
        for j, axis in enumerate("xyz")
        if not (lo[j] < -SPHERE_CRITERION_G and hi[j] > SPHERE_CRITERION_G)
    ]
    if bad:
        return reject(
            "poor_sphere_coverage",
            "not enough points on all sides of the sphere (each axis needs still means beyond "
            f"±{SPHERE_CRITERION_G} g): " + ", ".join(bad) + "; factory values kept",
        )
    offset, scale, toff, temp_mean, iters = fit_sphere(
        means, temps if temperature_c is not None else None
    )
    if not (np.isfinite(offset).all() and np.isfinite(scale).all() and np.isfinite(toff).all()):
        return reject(
            "fit_failed", "sphere fit did not converge to finite values; factory values kept", iters
        )
    t = temps - temp_mean if np.isfinite(temp_mean) else np.zeros(n)
    after = _sphere_error_g((means + offset) * scale + t[:, None] * toff)
    if not after < before:
        return reject(
            "not_improved",
            f"calibration error would not decrease ({before * 1000:.2f} → {after * 1000:.2f} mg); factory values kept",
            iters,
        )
    if not after < ACCEPT_ERROR_G:
        return reject(
            "error_too_large",
            f"calibration error after fit {after * 1000:.2f} mg ≥ {ACCEPT_ERROR_G * 1000:.0f} mg; factory values kept",
            iters,
        )
    return Calibration(
        offset,
        scale,
        toff,
        temp_mean,
        before,
        after,
        n,
        hours,
        iters,
        True,
        "ok",
        f"calibrated on {n} still windows: error {before * 1000:.2f} → {after * 1000:.2f} mg",
    )


def apply_calibration(
    accel_g: NDArray[Any],
    calibration: Calibration,
    *,
    temperature_c: NDArray[Any] | None = None,
) -> NDArray[np.float64]:
    """Apply ``(a + offset) · scale (+ (T − T̄) · temp_offset)`` (methods.md §1.7 step 6).

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Raw acceleration in g.
    calibration : Calibration
        Result of `calibrate` (a rejected one is the identity).
    temperature_c : ndarray of float, shape (n_samples,), optional
        Temperature in °C; required if the calibration has a temperature term.

    Returns
    -------
    ndarray of float64, shape (n_samples, 3)
        Calibrated acceleration in g (a new array).

    Raises
    ------
    ValueError
        If `accel_g` is malformed, or the calibration has a temperature term and
        `temperature_c` is missing or of the wrong length.
    """
    acc = _check_accel(accel_g).astype(np.float64)
    out = (acc + calibration.offset_g) * calibration.scale
    if np.any(calibration.temp_offset_g_per_c != 0.0):
        if temperature_c is None:
            raise ValueError("temperature_c is required: the calibration has a temperature term")
        temp = np.asarray(temperature_c, dtype=np.float64)
        if temp.shape != (acc.shape[0],):
            raise ValueError(f"temperature_c must have shape ({acc.shape[0]},), got {temp.shape}")
        out += (temp - calibration.temp_mean_c)[:, None] * calibration.temp_offset_g_per_c
    return out
