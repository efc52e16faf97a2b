"""The deterministic recording the outbox tests store and upload (light: numpy only)."""

from __future__ import annotations

import hashlib

import numpy as np

from analysis.samples import SampleBlock

T0_NS = 1_709_287_200_000_000_000  # 2024-03-01 10:00:00 UTC
FS_HZ = 50.0


def source_block(i: int, n: int = 300) -> SampleBlock:
    """Block `i` of a deterministic 50 Hz recording (n samples each, back to back)."""
    rng = np.random.default_rng(i)
    accel = rng.normal(0, 0.5, size=(n, 3)).astype(np.float32)
    return SampleBlock(T0_NS + i * n * 20_000_000, FS_HZ, accel)


def checksum(arrays: list[np.ndarray]) -> str:
    """SHA-256 over the samples in order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype="<f4").tobytes())
    return h.hexdigest()
