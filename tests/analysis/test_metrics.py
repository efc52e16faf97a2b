"""ENMO, vector magnitude and MAD on analytic signals (methods.md §1.2, §1.3)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import (
    enmo_g,
    enmo_mad_by_epoch_g,
    enmo_per_epoch_g,
    mad_per_epoch_g,
    vector_magnitude_g,
)


def test_enmo_of_gravity_only_is_zero(rng: np.random.Generator) -> None:
    axis_aligned = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0], [0, 0, -1]], dtype=np.float64)
    assert np.array_equal(enmo_g(axis_aligned), np.zeros(4))
    # Random orientations of a 1 g vector: zero up to rounding.
    v = rng.normal(size=(1000, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert np.all(enmo_g(v) < 1e-12)
    assert enmo_per_epoch_g(v, fs_hz=100.0, epoch_s=5.0).max() < 1e-12


def test_enmo_truncates_below_one_g() -> None:
    a = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.25], [0.0, 0.3, 0.4]])
    assert np.allclose(enmo_g(a), [0.0, 0.25, 0.0])
    assert np.allclose(vector_magnitude_g(a), [0.5, 1.25, 0.5])


def test_sine_gives_analytic_enmo_and_mad() -> None:
    # EN = 1 + A sin(2π f t): ENMO = mean(max(A sin, 0)) = A/π, MAD = mean|A sin| = 2A/π
    # over whole periods (1 Hz at 100 Hz, 5-s epochs = 5 periods each).
    fs_hz, amp_g = 100.0, 0.5
    t = np.arange(int(60 * fs_hz)) / fs_hz
    accel = np.zeros((t.size, 3))
    accel[:, 2] = 1.0 + amp_g * np.sin(2 * np.pi * 1.0 * t)
    enmo = enmo_per_epoch_g(accel, fs_hz=fs_hz, epoch_s=5.0)
    mad = mad_per_epoch_g(accel, fs_hz=fs_hz, epoch_s=5.0)
    assert enmo.shape == mad.shape == (12,)
    # The discrete mean of |sin| over 100 points/period differs from 2/π by ~1e-4 relative.
    assert np.allclose(enmo, amp_g / np.pi, rtol=1e-3)
    assert np.allclose(mad, 2 * amp_g / np.pi, rtol=1e-3)


def test_mad_ignores_constant_offset(rng: np.random.Generator) -> None:
    en = 1.0 + rng.normal(0, 0.1, 500)
    idx = np.repeat(np.arange(2), 250)
    _, mad = enmo_mad_by_epoch_g(en, idx, 2)
    _, mad_shifted = enmo_mad_by_epoch_g(en + 0.5, idx, 2)
    assert np.allclose(mad, mad_shifted, atol=1e-12)
    expected = [np.mean(np.abs(en[:250] - en[:250].mean())), np.mean(np.abs(en[250:] - en[250:].mean()))]
    assert np.allclose(mad, expected, rtol=1e-12)


def test_trailing_partial_epoch_is_dropped() -> None:
    accel = np.tile([0.0, 0.0, 1.1], (1249, 1))
    assert enmo_per_epoch_g(accel, fs_hz=50.0, epoch_s=5.0).shape == (4,)


@pytest.mark.parametrize("shape", [(10,), (10, 2), (10, 3, 1)])
def test_bad_shape_is_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"accel_g must have shape \(n_samples, 3\)"):
        enmo_g(np.zeros(shape))


@pytest.mark.parametrize(("kwargs", "name"), [({"fs_hz": 0.0}, "fs_hz"), ({"fs_hz": 50.0, "epoch_s": 0.01001}, "epoch_s")])
def test_bad_rate_or_epoch_is_named(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        enmo_per_epoch_g(np.zeros((10, 3)), **kwargs)


def test_empty_input() -> None:
    assert enmo_g(np.zeros((0, 3))).shape == (0,)
    assert mad_per_epoch_g(np.zeros((0, 3)), fs_hz=50.0).shape == (0,)
