"""Raw-acceleration metrics: vector magnitude, ENMO and MAD.

Definitions follow methods.md §1.1–§1.3:

* EN = √(x² + y² + z²) in g (§1.1).
* ENMO = max(EN − 1, 0) per sample, averaged per epoch (van Hees et al. 2013,
  doi:10.1371/journal.pone.0061691; GGIR ``g.applymetrics.R``; methods.md §1.2).
* MAD = (1/n) Σ |EN_i − mean(EN)| per epoch (Vähä-Ypyä et al. 2015,
  doi:10.1111/cpf.12127; methods.md §1.3).

Epoch helpers sum with `numpy.bincount`, which adds the values of each epoch one
after the other in input order. An epoch's result therefore depends only on that
epoch's samples and their order, never on how the surrounding array was cut
(pairwise summation in `numpy.sum`/`reduceat` groups by array position).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GRAVITY_G",
    "MG_PER_G",
    "enmo_g",
    "epoch_means",
    "enmo_mad_by_epoch_g",
    "enmo_per_epoch_g",
    "mad_per_epoch_g",
    "vector_magnitude_g",
]

#: The norm of acceleration at rest, 1 g, subtracted by ENMO (methods.md §1.2).
GRAVITY_G = 1.0
#: 1 g = 1000 mg (methods.md §1.1, appendix A ``enmo.unit``).
MG_PER_G = 1000.0


def _check_accel(accel_g: Any) -> NDArray[np.float64]:
    arr = np.asarray(accel_g)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"accel_g must have shape (n_samples, 3), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"accel_g must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def vector_magnitude_g(accel_g: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Euclidean norm of each sample.

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Acceleration in g.

    Returns
    -------
    ndarray of float64, shape (n_samples,)
        EN = √(x² + y² + z²) in g, computed element-wise as ``sqrt(x*x + y*y + z*z)``
        so that each value depends only on its own sample.

    Raises
    ------
    ValueError
        If `accel_g` does not have shape (n_samples, 3).

    Examples
    --------
    >>> vector_magnitude_g(np.array([[0.0, 0.6, 0.8]]))
    array([1.])
    """
    a = _check_accel(accel_g)
    x, y, z = a[:, 0], a[:, 1], a[:, 2]
    return np.sqrt(x * x + y * y + z * z)


def enmo_g(accel_g: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Euclidean norm minus one, truncated at zero, per sample.

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Calibrated acceleration in g (norm 1 g at rest).

    Returns
    -------
    ndarray of float64, shape (n_samples,)
        max(EN − 1, 0) in g.

    References
    ----------
    van Hees VT et al. (2013) PLoS ONE 8(4):e61691, doi:10.1371/journal.pone.0061691
    (methods.md §1.2).

    Examples
    --------
    >>> enmo_g(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5], [0.0, 0.0, 0.5]]))
    array([0. , 0.5, 0. ])
    """
    return np.maximum(vector_magnitude_g(accel_g) - GRAVITY_G, 0.0)


def epoch_means(
    values: NDArray[np.floating[Any]], epoch_index: NDArray[np.integer[Any]], n_epochs: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Mean of `values` per epoch, summing each epoch sequentially in input order.

    Parameters
    ----------
    values : ndarray of float, shape (n_samples,)
        Per-sample values (any unit; the mean has the same unit).
    epoch_index : ndarray of int, shape (n_samples,)
        Epoch number 0 … n_epochs − 1 of every sample.
    n_epochs : int
        Number of epochs.

    Returns
    -------
    means : ndarray of float64, shape (n_epochs,)
        Mean per epoch; NaN for an epoch without samples.
    counts : ndarray of int64, shape (n_epochs,)
        Number of samples per epoch.
    """
    idx = np.asarray(epoch_index)
    vals = np.asarray(values, dtype=np.float64)
    if idx.shape != vals.shape or vals.ndim != 1:
        raise ValueError(
            f"values and epoch_index must be 1-D of equal length, got {vals.shape} and {idx.shape}"
        )
    counts = np.bincount(idx, minlength=n_epochs).astype(np.int64)
    sums = np.bincount(idx, weights=vals, minlength=n_epochs)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means, counts


def enmo_mad_by_epoch_g(
    en_g: NDArray[np.floating[Any]], epoch_index: NDArray[np.integer[Any]], n_epochs: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ENMO and MAD per epoch from the per-sample vector magnitude.

    Parameters
    ----------
    en_g : ndarray of float, shape (n_samples,)
        Vector magnitude EN in g, in time order within each epoch.
    epoch_index : ndarray of int, shape (n_samples,)
        Epoch number 0 … n_epochs − 1 of every sample.
    n_epochs : int
        Number of epochs.

    Returns
    -------
    enmo_g : ndarray of float64, shape (n_epochs,)
        Mean of max(EN − 1, 0) per epoch, in g.
    mad_g : ndarray of float64, shape (n_epochs,)
        Mean |EN − mean EN| per epoch, in g (Vähä-Ypyä et al. 2015, methods.md §1.3).
    """
    en = np.asarray(en_g, dtype=np.float64)
    enmo, _ = epoch_means(np.maximum(en - GRAVITY_G, 0.0), epoch_index, n_epochs)
    mean_en, _ = epoch_means(en, epoch_index, n_epochs)
    mad, _ = epoch_means(np.abs(en - mean_en[epoch_index]), epoch_index, n_epochs)
    return enmo, mad


def _uniform_epoch_index(n_samples: int, fs_hz: float, epoch_s: float) -> tuple[NDArray[Any], int]:
    if not (np.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive finite number, got {fs_hz!r}")
    if not (np.isfinite(epoch_s) and epoch_s > 0):
        raise ValueError(f"epoch_s must be a positive finite number, got {epoch_s!r}")
    per_epoch = round(epoch_s * fs_hz)
    if per_epoch < 1 or abs(per_epoch - epoch_s * fs_hz) > 1e-6 * per_epoch:
        raise ValueError(
            f"epoch_s * fs_hz must be a whole number of samples, got {epoch_s!r} * {fs_hz!r}"
        )
    n_epochs = n_samples // per_epoch
    idx = np.arange(n_epochs * per_epoch) // per_epoch
    return idx, n_epochs


def enmo_per_epoch_g(
    accel_g: NDArray[np.floating[Any]], *, fs_hz: float, epoch_s: float = 5.0
) -> NDArray[np.float64]:
    """Mean ENMO per non-overlapping epoch of a uniformly sampled signal.

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Calibrated acceleration in g, without gaps.
    fs_hz : float
        Sampling rate in Hz.
    epoch_s : float, optional
        Epoch length in s; ``epoch_s * fs_hz`` must be a whole number. A trailing
        partial epoch is dropped. Default 5.0 (GGIR short epoch, methods.md §1.1).

    Returns
    -------
    ndarray of float64, shape (n_samples // (epoch_s * fs_hz),)
        ENMO in g per epoch.
    """
    en = vector_magnitude_g(accel_g)
    idx, n_epochs = _uniform_epoch_index(en.size, fs_hz, epoch_s)
    return enmo_mad_by_epoch_g(en[: idx.size], idx, n_epochs)[0]


def mad_per_epoch_g(
    accel_g: NDArray[np.floating[Any]], *, fs_hz: float, epoch_s: float = 5.0
) -> NDArray[np.float64]:
    """Mean amplitude deviation per non-overlapping epoch of a uniformly sampled signal.

    Parameters
    ----------
    accel_g : ndarray of float, shape (n_samples, 3)
        Acceleration in g, without gaps.
    fs_hz : float
        Sampling rate in Hz.
    epoch_s : float, optional
        Epoch length in s; ``epoch_s * fs_hz`` must be a whole number. A trailing
        partial epoch is dropped. Default 5.0 (methods.md §1.3: GGIR uses its short epoch).

    Returns
    -------
    ndarray of float64, shape (n_samples // (epoch_s * fs_hz),)
        MAD = mean |EN − mean EN| in g per epoch.

    References
    ----------
    Vähä-Ypyä H et al. (2015) Clin Physiol Funct Imaging 35(1):64–70, doi:10.1111/cpf.12127.
    """
    en = vector_magnitude_g(accel_g)
    idx, n_epochs = _uniform_epoch_index(en.size, fs_hz, epoch_s)
    return enmo_mad_by_epoch_g(en[: idx.size], idx, n_epochs)[1]

