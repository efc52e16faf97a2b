"""Intensity cut-points for epoch-averaged ENMO and classification into classes.

All thresholds are in mg of epoch-averaged ENMO, as tabulated in methods.md §1.9 (from
the GGIR vignette "Published cut-points and how to use them in GGIR", cross-checked
against skdh). Classes: 0 sedentary, 1 light, 2 moderate, 3 vigorous.

Inclusivity: a value equal to a threshold belongs to the *higher* class
(sedentary < light ≤ light … < moderate ≤ moderate … < vigorous ≤ vigorous). This is
GGIR's convention (``identify_levels`` in GGIR ``R/identify_level.R``:
``ACC < TRLi`` inactive, ``ACC >= TRLi & ACC < TRMi`` light, ``ACC >= TRMi & ACC < TRVi``
moderate, ``ACC >= TRVi`` vigorous).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CUTPOINTS",
    "DEFAULT_CUTPOINTS",
    "LIGHT",
    "MODERATE",
    "SEDENTARY",
    "VIGOROUS",
    "CutPoints",
    "classify",
    "get_cutpoints",
]

SEDENTARY, LIGHT, MODERATE, VIGOROUS = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class CutPoints:
    """A published set of ENMO intensity thresholds.

    Attributes
    ----------
    name : str
        Registry key.
    light_mg : float
        Sedentary→light boundary in mg (values ≥ it are at least light).
    moderate_mg : float
        Light→moderate boundary in mg.
    vigorous_mg : float or None
        Moderate→vigorous boundary in mg; None when the source gives none (then no
        epoch is classed vigorous).
    source : str
        Citation (as in methods.md §1.9).
    """

    name: str
    light_mg: float
    moderate_mg: float
    vigorous_mg: float | None
    source: str

    def __post_init__(self) -> None:
        bounds = [self.light_mg, self.moderate_mg]
        if self.vigorous_mg is not None:
            bounds.append(self.vigorous_mg)
        if not all(np.isfinite(b) for b in bounds) or any(
            a >= b for a, b in zip(bounds, bounds[1:], strict=False)
        ):
            raise ValueError(f"cut-points must be finite and increasing, got {bounds} for {self.name!r}")

    @property
    def thresholds_mg(self) -> tuple[float, ...]:
        """Increasing class boundaries in mg (2 or 3 values)."""
        if self.vigorous_mg is None:
            return (self.light_mg, self.moderate_mg)
        return (self.light_mg, self.moderate_mg, self.vigorous_mg)


_HILDEBRAND = "Hildebrand et al. 2014 MSSE 46(9):1816 + Hildebrand et al. 2017 SJMSS 27(12):1814"
_MIGUELES = "Migueles et al. 2021 Sensors 21(10):3326 (≥ 70 y)"

# Values: methods.md §1.9, tables "Adults: ENMO" and "Older adults: ENMO".
_ALL = (
    CutPoints("hildebrand2014_wrist_actigraph", 44.8, 100.6, 428.8, _HILDEBRAND + ", ActiGraph ND wrist"),
    CutPoints("hildebrand2014_wrist_geneactiv", 45.8, 93.2, 418.3, _HILDEBRAND + ", GENEActiv ND wrist"),
    CutPoints("hildebrand2014_hip_actigraph", 47.4, 69.1, 258.7, _HILDEBRAND + ", ActiGraph hip"),
    CutPoints("hildebrand2014_hip_geneactiv", 46.9, 68.7, 266.8, _HILDEBRAND + ", GENEActiv hip"),
    CutPoints("migueles2021_wrist_older", 18.0, 60.0, None, _MIGUELES + ", ActiGraph ND wrist"),
    CutPoints("migueles2021_dominant_wrist_older", 22.0, 64.0, None, _MIGUELES + ", ActiGraph dominant wrist"),
)

#: Registry of cut-point sets by name (read-only).
CUTPOINTS: Mapping[str, CutPoints] = MappingProxyType({c.name: c for c in _ALL})
#: Default set: adult non-dominant wrist, ActiGraph (methods.md §1.9, §1.4).
DEFAULT_CUTPOINTS = "hildebrand2014_wrist_actigraph"


def get_cutpoints(cutpoints: str | CutPoints) -> CutPoints:
    """Resolve a registry name (or pass through a `CutPoints`).

    Raises
    ------
    ValueError
        If `cutpoints` is not a registered name.
    """
    if isinstance(cutpoints, CutPoints):
        return cutpoints
    try:
        return CUTPOINTS[cutpoints]
    except (KeyError, TypeError):
        raise ValueError(
            f"cutpoints must be one of {sorted(CUTPOINTS)}, got {cutpoints!r}"
        ) from None


def classify(enmo_mg: NDArray[np.floating[Any]], cutpoints: str | CutPoints = DEFAULT_CUTPOINTS) -> NDArray[np.int8]:
    """Intensity class of each epoch.

    Parameters
    ----------
    enmo_mg : ndarray of float, shape (n_epochs,)
        Epoch-averaged ENMO in mg.
    cutpoints : str or CutPoints, optional
        A `CUTPOINTS` name or a set. Default ``"hildebrand2014_wrist_actigraph"``.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        0 sedentary (value < light), 1 light (light ≤ value < moderate), 2 moderate
        (moderate ≤ value < vigorous), 3 vigorous (value ≥ vigorous). A threshold value
        belongs to the higher class (GGIR ``identify_levels`` convention).

    Raises
    ------
    ValueError
        If `cutpoints` is unknown or `enmo_mg` contains NaN.

    Examples
    --------
    >>> classify(np.array([0.0, 44.8, 100.6, 428.8]))
    array([0, 1, 2, 3], dtype=int8)
    """
    cp = get_cutpoints(cutpoints)
    values = np.asarray(enmo_mg, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("enmo_mg must not contain NaN")
    thresholds = np.asarray(cp.thresholds_mg, dtype=np.float64)
    return np.searchsorted(thresholds, values, side="right").astype(np.int8)
