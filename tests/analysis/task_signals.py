"""Synthetic arm-task recordings with known sessions, rests and gaps (for effort tests)."""

from __future__ import annotations

import numpy as np

from analysis.epochs import EpochTable, epoch_table
from analysis.samples import NS_PER_S, SampleBlock

FS_HZ = 50
ARM_HZ = 1.5  # arm movement frequency (a stirring / wiping rhythm)
# 2023-03-25 00:00:00 UTC, a multiple of 900 s (as tests/analysis/conftest.py).
T0_NS = 1_679_702_400 * NS_PER_S
#: Mean ENMO (mg) of gravity on z plus a·sin(2π·1.5 t) on x, averaged over the phase:
#: 1000·E[√(1 + a² sin² φ) − 1], computed by numerical integration.
ENMO_OF_AMPLITUDE_MG = {0.5: 59.839, 0.8: 144.633}


def task_signal(parts: list[tuple[str, float]], *, seed: int = 1) -> np.ndarray:
    """Concatenate ("move", s) / ("move08", s) / ("still", s) parts at 50 Hz, shape (n, 3) in g."""
    rng = np.random.default_rng(seed)
    out = []
    t_s = 0.0
    for kind, seconds in parts:
        n = round(seconds * FS_HZ)
        t = t_s + np.arange(n) / FS_HZ
        a = np.zeros((n, 3))
        a[:, 2] = 1.0
        if kind.startswith("move"):
            amp = 0.8 if kind == "move08" else 0.5
            a[:, 0] = amp * np.sin(2 * np.pi * ARM_HZ * t)
        else:
            a += rng.normal(0.0, 0.002, (n, 3))
        out.append(a)
        t_s += seconds
    return np.concatenate(out)


def blocks_of(accel: np.ndarray, *, drop: tuple[float, float] | None = None) -> list[SampleBlock]:
    """One block per 60 s; `drop` = (from_s, to_s) removes samples to make a gap."""
    n = accel.shape[0]
    keep = np.ones(n, bool)
    if drop is not None:
        keep[round(drop[0] * FS_HZ) : round(drop[1] * FS_HZ)] = False
    blocks = []
    i = 0
    while i < n:
        if not keep[i]:
            i += 1
            continue
        j = i
        while j < n and keep[j] and j - i < 60 * FS_HZ:
            j += 1
        blocks.append(SampleBlock(T0_NS + i * NS_PER_S // FS_HZ, float(FS_HZ), accel[i:j]))
        i = j
    return blocks


def tables(blocks: list[SampleBlock]) -> tuple[EpochTable, EpochTable]:
    """The 1-s and 5-s epoch tables of `blocks`."""
    return epoch_table(blocks, epoch_s=1), epoch_table(blocks, epoch_s=5)
