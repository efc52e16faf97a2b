"""Synthetic arm-task signals with known fatigue manipulations (helpers for the fatigue tests)."""

from __future__ import annotations

import numpy as np

from analysis.samples import NS_PER_S

#: 2023-03-25 00:00:00 UTC, a multiple of 30 s, so window starts fall on samples.
T0_NS = 1_679_702_400 * NS_PER_S


def rotation(deg_x: float, deg_y: float, deg_z: float) -> np.ndarray:
    """A rotation matrix from three angles (degrees, applied x then y then z)."""
    ax, ay, az = np.radians([deg_x, deg_y, deg_z])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def arm(
    duration_s: float,
    *,
    fs_hz: float = 50.0,
    freq_hz: float = 1.5,
    amp_g: float = 0.5,
    amp_jitter: float = 0.0,
    phase_jitter: float = 0.0,
    noise_g: float = 0.01,
    decay: float = 0.0,
    pauses: tuple[float, float] | None = None,
    tremor_mg: float = 0.0,
    seed: int = 1,
) -> np.ndarray:
    """Reciprocating arm movement (gravity on z, movement mostly on x), shape (n, 3) in g.

    amp_jitter: SD of a log-normal amplitude factor drawn per cycle; phase_jitter: SD (rad) of
    a random walk added to the phase per sample (irregular rhythm); decay: the amplitude falls
    linearly by this fraction over the signal; pauses: (every_s, length_s) still stretches;
    tremor_mg: amplitude of a 10-Hz oscillation on y during the pauses.
    """
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    phase = 2 * np.pi * freq_hz * t
    if phase_jitter:
        phase = phase + np.cumsum(rng.normal(0.0, phase_jitter, n))
    cycle = np.floor(phase / (2 * np.pi)).astype(int)
    factor = np.exp(rng.normal(0.0, amp_jitter, cycle.max() + 1))[cycle - cycle.min()]
    amp = amp_g * factor * (1.0 - decay * t / duration_s)
    a = np.zeros((n, 3))
    a[:, 2] = 1.0
    a[:, 0] = amp * np.sin(phase)
    a[:, 1] = 0.2 * amp * np.sin(2 * phase)
    if pauses is not None:
        every, length = pauses
        still = (t % every) >= (every - length)
        a[still, 0] = 0.0
        a[still, 1] = tremor_mg / 1000.0 * np.sin(2 * np.pi * 10.0 * t[still])
    return a + rng.normal(0.0, noise_g, (n, 3))


def hold(
    duration_s: float, *, fs_hz: float = 50.0, tremor_mg: float = 0.0, seed: int = 1
) -> np.ndarray:
    """A quiet hold: 0.4-Hz sway of 10 mg along gravity plus 3-mg noise, optional 10-Hz tremor on x."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    t = np.arange(n) / fs_hz
    a = np.zeros((n, 3))
    a[:, 2] = 1.0 + 0.010 * np.sin(2 * np.pi * 0.4 * t)
    a[:, 0] = tremor_mg / 1000.0 * np.sin(2 * np.pi * 10.0 * t + 0.3)
    return a + rng.normal(0.0, 0.003, (n, 3))


def test_arm_signal_shape_and_gravity() -> None:
    a = arm(60.0)
    assert a.shape == (3000, 3)
    assert abs(float(np.mean(a[:, 2])) - 1.0) < 0.01
    assert abs(float(np.max(a[:, 0])) - 0.5) < 0.05
