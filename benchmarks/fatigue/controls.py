"""Negative controls (methods.md §2.6 A): changes that are not fatigue and must not read as such.

* task switch: the session continues with a different task from ``t_s`` on;
* strap rotation: from ``t_s`` on, the sensor is rotated by 20–40° about a random axis;
* calibration drift: per-axis scale error ramping to ±1–2 % and offset ramping to ±10–20 mg
  over the session (a linear drift from a correct calibration at the start);
* resampling: the whole session resampled 32 → 25 Hz (`resample_poly` 25/32, a 25-Hz device)
  and analysed at 25 Hz — the substitute pre-specified in docs/fatigue-preregistration.md §5.1
  for methods.md's 100 → 30 Hz (HMP is recorded at 32 Hz). Tremor is undefined below 30 Hz.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from benchmarks.fatigue.hmp import make_rest
from benchmarks.fatigue.inject import Injected


def rotation_matrix(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues' rotation matrix about ``axis`` (normalised here)."""
    axis = np.asarray(axis, float)
    norm = np.linalg.norm(axis)
    if norm == 0:
        raise ValueError("axis must be non-zero")
    x, y, z = axis / norm
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def strap_rotation(accel_g, fs_hz, *, t_s, angle_deg, axis) -> Injected:
    """Rotate every sample from ``t_s`` on by ``angle_deg`` about ``axis`` (sensor frame)."""
    if not 0 <= angle_deg <= 180:
        raise ValueError(f"angle_deg must be in [0, 180], got {angle_deg}")
    i = round(t_s * fs_hz)
    r = rotation_matrix(axis, np.deg2rad(angle_deg))
    out = accel_g.copy()
    out[i:] = accel_g[i:] @ r.T
    n = len(accel_g)
    return Injected(out, np.arange(n) / fs_hz, fs_hz, None,
                    {"angle_deg": angle_deg, "t_s": t_s})


def calibration_drift(accel_g, fs_hz, *, scale, offset_g) -> Injected:
    """a′ = a·(1 + scale·r) + offset·r, with r ramping 0 → 1 over the session (per axis)."""
    scale = np.asarray(scale, float)
    offset_g = np.asarray(offset_g, float)
    if scale.shape != (3,) or offset_g.shape != (3,):
        raise ValueError("scale and offset_g must have 3 elements (one per axis)")
    n = len(accel_g)
    r = np.linspace(0.0, 1.0, n)[:, None]
    out = accel_g * (1 + scale[None, :] * r) + offset_g[None, :] * r
    return Injected(out, np.arange(n) / fs_hz, fs_hz, None,
                    {"scale": scale.tolist(), "offset_g": offset_g.tolist()})


def resample(accel_g, fs_hz, *, up=25, down=32) -> Injected:
    """Whole session resampled by up/down (default 32 → 25 Hz), per axis, polyphase FIR."""
    if up <= 0 or down <= 0:
        raise ValueError(f"up and down must be positive, got {up}/{down}")
    out = resample_poly(accel_g, up, down, axis=0)
    fs_out = fs_hz * up / down
    return Injected(out, np.arange(len(out)) / fs_out, fs_out, None, {"fs_hz": fs_out})


def task_switch(accel_g, other_g, fs_hz, *, t_s, rng) -> Injected:
    """Session up to ``t_s``, a rest of 10 s, then ``other_g`` (another task) to the same length."""
    i = round(t_s * fs_hz)
    n = len(accel_g)
    head = accel_g[:i]
    tail = other_g[: max(n - i, 0)]
    if len(tail) < n - i:
        raise ValueError("other_g is too short to fill the session after the switch")
    rest = make_rest(head[-8:].mean(0), tail[:8].mean(0), 10.0, rng, fs_hz)
    out = np.concatenate([head, rest, tail])
    src = np.concatenate([np.arange(i) / fs_hz, np.full(len(rest) + len(tail), np.nan)])
    return Injected(out, src, fs_hz, None, {"t_s": t_s})


def random_control(kind: str, accel_g, fs_hz, rng, *, other_g=None) -> Injected:
    """Draw the control's parameters from the ranges of methods.md §2.6 and apply it."""
    dur = len(accel_g) / fs_hz
    t_s = float(rng.uniform(0.3, 0.7) * dur)
    if kind == "clean":
        return Injected(accel_g.copy(), np.arange(len(accel_g)) / fs_hz, fs_hz, None, {})
    if kind == "task_switch":
        return task_switch(accel_g, other_g, fs_hz, t_s=t_s, rng=rng)
    if kind == "strap_rotation":
        return strap_rotation(accel_g, fs_hz, t_s=t_s, angle_deg=float(rng.uniform(20, 40)),
                              axis=rng.normal(size=3))
    if kind == "calibration_drift":
        sign = rng.choice([-1.0, 1.0], 3)
        return calibration_drift(accel_g, fs_hz, scale=sign * rng.uniform(0.01, 0.02, 3),
                                 offset_g=rng.choice([-1.0, 1.0], 3) * rng.uniform(0.01, 0.02, 3))
    if kind == "resample":
        return resample(accel_g, fs_hz)
    raise ValueError(f"unknown control kind {kind!r}")


CONTROL_KINDS = ("clean", "task_switch", "strap_rotation", "calibration_drift", "resample")
