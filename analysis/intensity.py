"""Intensity cut-points, classification into classes, and effort relative to a personal peak.

Thresholds are as tabulated in methods.md §1.9 (from the GGIR vignette "Published
cut-points and how to use them in GGIR", cross-checked against skdh). Each set records
the metric it was defined on (``enmo``/``mad`` in mg of the epoch average, or ActiGraph
``counts_vm``/``counts_axis1`` per 60-s epoch), the wear location, the population and
its source, so a set can be chosen by location and population (`select_cutpoints`).
Classes: 0 sedentary, 1 light, 2 moderate, 3 vigorous.

Inclusivity: a value equal to a threshold belongs to the *higher* class
(sedentary < light ≤ light … < moderate ≤ moderate … < vigorous ≤ vigorous). This is
GGIR's convention (``identify_levels`` in GGIR ``R/identify_level.R``:
``ACC < TRLi`` inactive, ``ACC >= TRLi & ACC < TRMi`` light, ``ACC >= TRMi & ACC < TRVi``
moderate, ``ACC >= TRVi`` vigorous).

Missing boundaries: a set without a moderate→vigorous boundary (Migueles 2021, Sanders
2019, Montoye 2020) classes nothing vigorous, so its class 2 means "moderate or
vigorous"; a set without a sedentary→light boundary (Sasaki 2011, Santos-Lozano 2013,
Vähä-Ypyä 2015) cannot separate sedentary from light, so everything below moderate gets
class 1, named "sedentary_or_light" in `CutPoints.class_names`.
"""

from __future__ import annotations

import itertools
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
    "LOCATIONS",
    "METRICS",
    "MODERATE",
    "POPULATIONS",
    "SEDENTARY",
    "VIGOROUS",
    "CutPoints",
    "classify",
    "get_cutpoints",
    "percent_of_peak",
    "personal_peak_mg",
    "select_cutpoints",
]

SEDENTARY, LIGHT, MODERATE, VIGOROUS = 0, 1, 2, 3

#: Metrics a set can be defined on: epoch-mean ENMO or MAD in mg (methods.md §1.2,
#: §1.3), ActiGraph vector-magnitude or vertical-axis counts per 60 s (§1.5).
METRICS = ("enmo", "mad", "counts_vm", "counts_axis1")
#: Wear locations: non-dominant wrist, dominant wrist, hip/waist.
LOCATIONS = ("wrist_nd", "wrist_dominant", "hip")
#: Populations the sets were calibrated in (methods.md §1.9 tables).
POPULATIONS = ("adults", "older_adults")
_COUNT_EPOCH_S = 60.0  # count cut-points are per 60-s epoch (methods.md §1.1)
# ENMO/MAD cut-points are epoch averages; this project classifies them on 5-s epochs,
# GGIR's short epoch (methods.md §1.1, §1.11).
_AVERAGE_EPOCH_S = 5.0


def _check_option(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class CutPoints:
    """A published set of intensity thresholds.

    Attributes
    ----------
    name : str
        Registry key.
    light_mg : float or None
        Sedentary→light boundary (values ≥ it are at least light); None when the source
        gives none. Unit: see `unit` (mg for ENMO/MAD sets, counts per 60 s for counts).
    moderate_mg : float
        Light→moderate boundary, same unit.
    vigorous_mg : float or None
        Moderate→vigorous boundary, same unit; None when the source gives none (then no
        epoch is classed vigorous).
    source : str
        Citation (as in methods.md §1.9).
    metric : str
        One of `METRICS`; values passed to `classify` must be this metric.
    location : str
        One of `LOCATIONS`.
    population : str
        One of `POPULATIONS`.
    device : str
        Device the set was derived with (``"actigraph"``, ``"geneactiv"``, ``"hookie"``).
    epoch_s : float
        Epoch length in s the set is applied at: 60 for counts (defined per minute), 5
        for ENMO/MAD averages (methods.md §1.11).
    """

    name: str
    light_mg: float | None
    moderate_mg: float
    vigorous_mg: float | None
    source: str
    metric: str = "enmo"
    location: str = "wrist_nd"
    population: str = "adults"
    device: str = "actigraph"
    epoch_s: float = _AVERAGE_EPOCH_S

    def __post_init__(self) -> None:
        bounds = [b for b in (self.light_mg, self.moderate_mg, self.vigorous_mg) if b is not None]
        if not all(np.isfinite(b) for b in bounds) or any(
            a >= b for a, b in itertools.pairwise(bounds)
        ):
            raise ValueError(f"cut-points must be finite and increasing, got {bounds} for {self.name!r}")
        _check_option("metric", self.metric, METRICS)
        _check_option("location", self.location, LOCATIONS)
        _check_option("population", self.population, POPULATIONS)
        if not np.isfinite(self.epoch_s) or self.epoch_s <= 0:
            raise ValueError(f"epoch_s must be positive, got {self.epoch_s!r} for {self.name!r}")

    @property
    def thresholds_mg(self) -> tuple[float, ...]:
        """Increasing class boundaries as published (2 or 3 values, unit `unit`)."""
        return tuple(b for b in (self.light_mg, self.moderate_mg, self.vigorous_mg) if b is not None)

    @property
    def unit(self) -> str:
        """Unit of the thresholds: ``"mg"`` or ``"counts/60s"``."""
        return "counts/60s" if self.metric.startswith("counts") else "mg"

    @property
    def class_names(self) -> dict[int, str]:
        """Class code → name for the classes this set can produce (see module docstring)."""
        names = {SEDENTARY: "sedentary", LIGHT: "light", MODERATE: "moderate", VIGOROUS: "vigorous"}
        if self.light_mg is None:
            del names[SEDENTARY]
            names[LIGHT] = "sedentary_or_light"
        if self.vigorous_mg is None:
            del names[VIGOROUS]
            names[MODERATE] = "moderate_or_vigorous"
        return names

    def thresholds_at(self, epoch_s: float) -> tuple[float, ...]:
        """Boundaries for values aggregated over `epoch_s`-second epochs.

        Counts are sums, so count cut-points scale by ``epoch_s / 60`` (methods.md §1.1,
        GGIR CutPoints.md: 100 cpm → 100 × 5/60 per 5-s epoch); ENMO/MAD are averages
        and do not scale.
        """
        if not isinstance(epoch_s, int | float) or not np.isfinite(epoch_s) or epoch_s <= 0:
            raise ValueError(f"epoch_s must be a positive number of seconds, got {epoch_s!r}")
        scale = epoch_s / _COUNT_EPOCH_S if self.unit != "mg" else 1.0
        return tuple(b * scale for b in self.thresholds_mg)


_HILDEBRAND = "Hildebrand et al. 2014 MSSE 46(9):1816 + Hildebrand et al. 2017 SJMSS 27(12):1814"
_MIELKE = "Mielke et al. 2023 SJMSS doi:10.1111/sms.14416 (35 ± 11 y)"
_MIGUELES = "Migueles et al. 2021 Sensors 21(10):3326 (≥ 70 y)"
_SANDERS = "Sanders et al. 2019 J Sports Sci doi:10.1080/02640414.2018.1555904 (60–86 y)"
_SANTOS = "Santos-Lozano et al. 2013 Int J Sports Med"
_OLD, _HIP, _DOM, _GA = "older_adults", "hip", "wrist_dominant", "geneactiv"
_C = _COUNT_EPOCH_S

# Values: methods.md §1.9 tables "Adults: ENMO", "Older adults: ENMO", "MAD (hip)",
# "Counts (ActiGraph, 60-s epochs)". Children's sets are left out (not OT patients).
_ALL = (
    CutPoints("hildebrand2014_wrist_actigraph", 44.8, 100.6, 428.8, _HILDEBRAND + ", ActiGraph ND wrist"),
    CutPoints("hildebrand2014_wrist_geneactiv", 45.8, 93.2, 418.3, _HILDEBRAND + ", GENEActiv ND wrist", device=_GA),
    CutPoints("hildebrand2014_hip_actigraph", 47.4, 69.1, 258.7, _HILDEBRAND + ", ActiGraph hip", location=_HIP),
    CutPoints("hildebrand2014_hip_geneactiv", 46.9, 68.7, 266.8, _HILDEBRAND + ", GENEActiv hip", location=_HIP, device=_GA),
    CutPoints("mielke2023_wrist_actigraph", 25.0, 78.0, 249.0, _MIELKE + ", ActiGraph ND wrist"),
    CutPoints("mielke2023_wrist_geneactiv", 36.0, 92.0, 283.0, _MIELKE + ", GENEActiv ND wrist", device=_GA),
    CutPoints("mielke2023_dominant_wrist_geneactiv", 30.0, 85.0, 270.0, _MIELKE + ", GENEActiv dominant wrist", location=_DOM, device=_GA),
    CutPoints("mielke2023_hip_actigraph", 40.0, 65.0, 190.0, _MIELKE + ", ActiGraph dominant waist", location=_HIP),
    CutPoints("migueles2021_wrist_older", 18.0, 60.0, None, _MIGUELES + ", ActiGraph ND wrist", population=_OLD),
    CutPoints("migueles2021_dominant_wrist_older", 22.0, 64.0, None, _MIGUELES + ", ActiGraph dominant wrist", location=_DOM, population=_OLD),
    CutPoints("migueles2021_hip_older", 7.0, 14.0, None, _MIGUELES + ", ActiGraph hip", location=_HIP, population=_OLD),
    CutPoints("sanders2019_wrist_older_youden", 20.0, 32.0, None, _SANDERS + ", GENEActiv ND wrist, Youden", population=_OLD, device=_GA),
    CutPoints("sanders2019_wrist_older_weighted", 57.0, 104.0, None, _SANDERS + ", GENEActiv ND wrist, sens/spec-weighted", population=_OLD, device=_GA),
    CutPoints("sanders2019_hip_older_youden", 6.0, 19.0, None, _SANDERS + ", ActiGraph hip, Youden", location=_HIP, population=_OLD),
    CutPoints("sanders2019_hip_older_weighted", 15.0, 69.0, None, _SANDERS + ", ActiGraph hip, sens/spec-weighted", location=_HIP, population=_OLD),
    CutPoints("vahaypya2015_hip_mad", None, 91.0, 414.0, "Vähä-Ypyä et al. 2015 PLoS ONE e0134813, Hookie AM20 hip", metric="mad", location=_HIP, device="hookie"),
    CutPoints("montoye2020_wrist_counts_vm", 2860.0, 3941.0, None, "Montoye et al. 2020 J Sports Sci 38(22):2569, GT9X ND wrist", metric="counts_vm", epoch_s=_C),
    CutPoints("freedson1998_hip_counts_axis1", 100.0, 1952.0, 5725.0, "Freedson et al. 1998 MSSE 30(5):777 (sedentary < 100 cpm: Matthews 2008)", metric="counts_axis1", location=_HIP, epoch_s=_C),
    CutPoints("sasaki2011_hip_counts_vm", None, 2690.0, 6167.0, "Sasaki et al. 2011 J Sci Med Sport 14(5):411", metric="counts_vm", location=_HIP, epoch_s=_C),
    CutPoints("santoslozano2013_hip_counts_vm", None, 3208.0, 8565.0, _SANTOS + ", adults", metric="counts_vm", location=_HIP, epoch_s=_C),
    CutPoints("santoslozano2013_hip_counts_vm_older", None, 2751.0, 9359.0, _SANTOS + ", older adults", metric="counts_vm", location=_HIP, population=_OLD, epoch_s=_C),
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


def select_cutpoints(
    *,
    location: str | None = None,
    population: str | None = None,
    metric: str | None = None,
    device: str | None = None,
) -> tuple[CutPoints, ...]:
    """Registered sets matching every given criterion, in registry order.

    Parameters
    ----------
    location : str, optional
        One of `LOCATIONS`.
    population : str, optional
        One of `POPULATIONS`.
    metric : str, optional
        One of `METRICS`.
    device : str, optional
        ``"actigraph"``, ``"geneactiv"`` or ``"hookie"``.

    Raises
    ------
    ValueError
        If a criterion is not one of its allowed values.

    Examples
    --------
    >>> [c.name for c in select_cutpoints(location="wrist_nd", population="older_adults", device="actigraph")]
    ['migueles2021_wrist_older']
    """
    if location is not None:
        _check_option("location", location, LOCATIONS)
    if population is not None:
        _check_option("population", population, POPULATIONS)
    if metric is not None:
        _check_option("metric", metric, METRICS)
    if device is not None:
        _check_option("device", device, tuple(sorted({c.device for c in _ALL})))
    wanted = {"location": location, "population": population, "metric": metric, "device": device}
    return tuple(c for c in _ALL if all(v is None or getattr(c, k) == v for k, v in wanted.items()))


def classify(
    enmo_mg: NDArray[np.floating[Any]],
    cutpoints: str | CutPoints = DEFAULT_CUTPOINTS,
    *,
    metric: str = "enmo",
    epoch_s: float | None = None,
) -> NDArray[np.int8]:
    """Intensity class of each epoch.

    Parameters
    ----------
    enmo_mg : ndarray of float, shape (n_epochs,)
        Epoch values of `metric`: mean ENMO or MAD in mg, or counts per epoch.
    cutpoints : str or CutPoints, optional
        A `CUTPOINTS` name or a set. Default ``"hildebrand2014_wrist_actigraph"``.
    metric : str, optional
        The metric of `enmo_mg`; it must equal the set's metric. Default ``"enmo"``.
    epoch_s : float, optional
        Epoch length in s of count values (count thresholds are scaled by
        ``epoch_s / 60``); default the set's own ``epoch_s``. Ignored for mg metrics.

    Returns
    -------
    ndarray of int8, shape (n_epochs,)
        0 sedentary (value < light), 1 light (light ≤ value < moderate), 2 moderate
        (moderate ≤ value < vigorous), 3 vigorous (value ≥ vigorous). A threshold value
        belongs to the higher class (GGIR ``identify_levels`` convention). Sets without a
        light boundary give 1 below moderate (see `CutPoints.class_names`).

    Raises
    ------
    ValueError
        If `cutpoints` is unknown, `metric` differs from the set's metric, or
        `enmo_mg` contains NaN.

    Examples
    --------
    >>> classify(np.array([0.0, 44.8, 100.6, 428.8]))
    array([0, 1, 2, 3], dtype=int8)
    """
    cp = get_cutpoints(cutpoints)
    if metric != cp.metric:
        raise ValueError(
            f"cutpoints {cp.name!r} are defined on metric {cp.metric!r}, got values of metric {metric!r}"
        )
    values = np.asarray(enmo_mg, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("enmo_mg must not contain NaN")
    thresholds = np.asarray(cp.thresholds_at(cp.epoch_s if epoch_s is None else epoch_s), dtype=np.float64)
    offset = 1 if cp.light_mg is None else 0
    return (np.searchsorted(thresholds, values, side="right") + offset).astype(np.int8)


#: Percentile of 1-min ENMO that defines a personal peak (methods.md §1.9: "%P95").
PEAK_PERCENTILE = 95.0
#: A minute enters the peak distribution only if ≥ 30 s of it were recorded, so a
#: minute cut by a gap (a few samples) cannot dominate the percentile.
_MIN_MINUTE_COVERED_S = 30.0
_NS_PER_MIN = 60_000_000_000


def personal_peak_mg(
    start_ns: NDArray[np.int64],
    enmo_mg: NDArray[np.floating[Any]],
    n_samples: NDArray[np.integer[Any]],
    covered_s: NDArray[np.floating[Any]],
    *,
    wear: NDArray[np.bool_] | None = None,
    percentile: float = PEAK_PERCENTILE,
) -> float | None:
    """The patient's own peak: a percentile of 1-min ENMO over a baseline or recording.

    Parameters
    ----------
    start_ns : ndarray of int64, shape (n_epochs,)
        UTC ns of each epoch start; epochs must not straddle minutes (epoch length
        dividing 60 s, e.g. 1 or 5 s).
    enmo_mg : ndarray of float, shape (n_epochs,)
        Mean ENMO per epoch in mg.
    n_samples : ndarray of int, shape (n_epochs,)
        Samples per epoch (weights of the minute mean).
    covered_s : ndarray of float, shape (n_epochs,)
        Recorded seconds per epoch.
    wear : ndarray of bool, shape (n_epochs,), optional
        Epochs to use (e.g. not non-wear); default all.
    percentile : float, optional
        Percentile in % (default 95, methods.md §1.9).

    Returns
    -------
    float or None
        The percentile in mg of the sample-weighted mean ENMO of each UTC minute with
        ≥ 30 s recorded wear; None when no minute qualifies.

    Raises
    ------
    ValueError
        If the arrays differ in length or `percentile` is outside [0, 100].
    """
    start = np.asarray(start_ns, dtype=np.int64)
    enmo = np.asarray(enmo_mg, dtype=np.float64)
    n = np.asarray(n_samples, dtype=np.float64)
    cov = np.asarray(covered_s, dtype=np.float64)
    use = np.ones(start.shape, bool) if wear is None else np.asarray(wear, dtype=bool)
    if not (start.shape == enmo.shape == n.shape == cov.shape == use.shape) or start.ndim != 1:
        raise ValueError(
            "start_ns, enmo_mg, n_samples, covered_s and wear must be 1-D of equal length, got "
            f"{[a.shape for a in (start, enmo, n, cov, use)]}"
        )
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    if not use.any():
        return None
    minute = start[use] // _NS_PER_MIN
    _, idx = np.unique(minute, return_inverse=True)
    w = np.bincount(idx, weights=n[use])
    total = np.bincount(idx, weights=enmo[use] * n[use])
    covered = np.bincount(idx, weights=cov[use])
    ok = (covered >= _MIN_MINUTE_COVERED_S) & (w > 0)
    if not ok.any():
        return None
    return float(np.percentile(total[ok] / w[ok], percentile))


def percent_of_peak(enmo_mg: float | NDArray[np.floating[Any]], peak_mg: float) -> Any:
    """ENMO as a percentage of the personal peak (methods.md §1.9, §4.2 "Effort").

    Raises
    ------
    ValueError
        If `peak_mg` is not a positive finite number.

    Examples
    --------
    >>> percent_of_peak(62.0, 88.0)
    70.45454545454545
    """
    if not isinstance(peak_mg, int | float) or not np.isfinite(peak_mg) or peak_mg <= 0:
        raise ValueError(f"peak_mg must be a positive finite number of mg, got {peak_mg!r}")
    return np.asarray(enmo_mg, dtype=np.float64) * 100.0 / peak_mg if np.ndim(enmo_mg) else float(enmo_mg) * 100.0 / peak_mg
