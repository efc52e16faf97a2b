"""Shared generators for analysis tests (seeded, so failures reproduce)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.samples import NS_PER_S, SampleBlock

# 2023-03-25 00:00:00 UTC, a multiple of 900 s.
T0_NS = 1_679_702_400 * NS_PER_S


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20230326)


def still(n: int, rng: np.random.Generator, *, noise_g: float = 0.002) -> np.ndarray:
    """Device lying still (gravity on a tilted axis) plus white noise of `noise_g` SD."""
    base = np.array([0.1, -0.2, np.sqrt(1 - 0.05)])
    return (base + rng.normal(0.0, noise_g, (n, 3))).astype(np.float32)


def moving(n: int, rng: np.random.Generator, *, sd_g: float = 0.3) -> np.ndarray:
    """Vigorous random movement around gravity."""
    return (np.array([0.0, 0.0, 1.0]) + rng.normal(0.0, sd_g, (n, 3))).astype(np.float32)


def split_blocks(
    t0_ns: int, fs_hz: float, accel: np.ndarray, rng: np.random.Generator, *, max_len: int = 4000
) -> list[SampleBlock]:
    """Cut a gap-free signal into blocks of random length (as an uploader would)."""
    period_ns = NS_PER_S / fs_hz
    blocks, i = [], 0
    while i < len(accel):
        n = int(rng.integers(1, max_len))
        blocks.append(SampleBlock(t0_ns + round(i * period_ns), fs_hz, accel[i : i + n]))
        i += n
    return blocks
