"""Synthetic wrist recordings of a repetitive arm task, with or without fatigue (issue 6 tests)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FS_HZ = 25.0  # >= 20 Hz (analysis.fatigue_features.MIN_FS_HZ); small files


def arm_task(
    seconds: float,
    *,
    amp_g: float = 0.6,
    freq_hz: float = 1.5,
    fatigue_from_s: float | None = None,
    amp_end_g: float | None = None,
    freq_end_hz: float | None = None,
    pause_every_s: float = 120.0,
    pause_s: float = 8.0,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Acceleration (n, 3) in g of a stirring-like movement with short pauses.

    Gravity lies mostly on z with a slow wobble; the movement is a sinusoid on x (plus a
    smaller one on y) with 8 % amplitude and 3 % tempo jitter per cycle and 10 mg noise. From
    ``fatigue_from_s`` on, amplitude and tempo move linearly to ``amp_end_g``/``freq_end_hz``
    at the end (a late-session decline).
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * FS_HZ)
    t = np.arange(n) / FS_HZ
    ramp = (
        np.zeros(n)
        if fatigue_from_s is None
        else np.clip((t - fatigue_from_s) / (seconds - fatigue_from_s), 0, 1)
    )
    amp = amp_g + ((amp_end_g if amp_end_g is not None else amp_g) - amp_g) * ramp
    freq = freq_hz + ((freq_end_hz if freq_end_hz is not None else freq_hz) - freq_hz) * ramp
    # Per-cycle jitter, held over ~one cycle (0.7 s).
    hold = max(1, round(0.7 * FS_HZ))
    k = n // hold + 1
    amp_j = np.repeat(1 + 0.08 * rng.standard_normal(k), hold)[:n]
    freq_j = np.repeat(1 + 0.03 * rng.standard_normal(k), hold)[:n]
    phase = 2 * np.pi * np.cumsum(freq * freq_j) / FS_HZ
    move = np.ones(n)
    if pause_every_s > 0:
        move[(t % pause_every_s) >= pause_every_s - pause_s] = 0.0
    a = np.zeros((n, 3))
    wobble = 0.05 * np.sin(2 * np.pi * t / 40.0)
    a[:, 0] = move * amp * amp_j * np.sin(phase) + wobble
    a[:, 1] = move * 0.3 * amp * amp_j * np.sin(2 * phase + 0.4) + 0.1
    a[:, 2] = np.sqrt(np.maximum(1.0 - wobble**2 - 0.01, 0.0))
    return a + 0.01 * rng.standard_normal((n, 3))


def still(seconds: float, *, seed: int = 0) -> NDArray[np.float64]:
    """A worn, resting wrist: gravity on z with 3 mg noise (MAD above the non-wear floor)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * FS_HZ)
    a = np.zeros((n, 3))
    a[:, 2] = 1.0
    a[:, 0] = 0.1
    return a + 0.003 * rng.standard_normal((n, 3))
