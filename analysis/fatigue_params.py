"""Pre-registered parameters of OT-FI and the scoring primitives shared by session and baseline.

Every default below is fixed in docs/fatigue-preregistration.md (methods.md §2.5 unless said);
change one only as a dated deviation there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.fatigue_windows import FEATURES, STEP_S, FatigueWindows

__all__ = [
    "DEFAULT_PARAMS",
    "FatigueParams",
    "composite",
    "feature_matrix",
    "oriented_z",
    "robust_reference",
    "trailing_sums",
]

FloatArray = NDArray[np.float64]
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FatigueParams:
    """Parameters of OT-FI (feature order as `analysis.fatigue_windows.FEATURES`)."""

    #: σ floors per feature (§2.5 step 4): ln-intensity, duty, Hz, regularity, CV, LDLJ, SampEn,
    #: tremor ratio, ASTP per min.
    floors: tuple[float, ...] = (0.05, 0.05, 0.05, 0.03, 0.02, 0.1, 0.05, 0.01, 0.05)
    #: Orientation (+1: higher = more fatigue-like, §2.5 step 5).
    signs: tuple[float, ...] = (-1.0, -1.0, -1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 1.0)
    #: Fixed a-priori weights (§2.5 step 6): output/pacing 1, tempo/regularity 0.75,
    #: variability/smoothness/complexity 0.5, tremor 0.5.
    weights: tuple[float, ...] = (1.0, 1.0, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 1.0)
    z_clip: float = 4.0
    #: Within-session reference: the first 5 active minutes of the stratum, ≥ 8 windows (§2.5.4).
    ref_active_s: float = 300.0
    ref_min_windows: int = 8
    #: Between-session baseline: ≥ 20 windows per stratum, else pooled with the nearest (§2.5.4).
    baseline_min_windows: int = 20
    #: Duty and ASTP over a trailing 5 min (§2.3 item 9; duty: docs/fatigue.md §3).
    astp_trailing_s: float = 300.0
    #: Floor the ASTP scale at its Poisson counting SD (pre-registration deviation 1).
    astp_poisson_floor: bool = True
    #: Floor the duty scale at its compound-Poisson SD (pre-registration deviation 3).
    duty_poisson_floor: bool = True
    #: Task clustering on posture (unit gravity vector): k in 2..6 by silhouette, k-means++ with
    #: a fixed seed (§2.5 step 3); a split is accepted only with mean silhouette ≥ 0.5, and
    #: novelty is P99 of baseline distances (deviations, docs/fatigue.md §3).
    k_range: tuple[int, int] = (2, 6)
    min_silhouette: float = 0.5
    #: Within a session without a baseline: split by forearm posture (gravity direction) only when
    #: the clusters are clearly separated (silhouette ≥ 0.6) and each has ≥ 8 analysable windows.
    within_split_silhouette: float = 0.6
    novel_quantile: float = 0.99
    #: Smallest novelty radius in posture space, and the smallest distance between two task
    #: centroids: 2·sin(15°/2), a 15° turn of the forearm.
    novel_min_radius: float = 0.2611
    seed: int = 6
    #: Mahalanobis D² "atypical" threshold: χ²_p quantile (§2.5 step 6); the session flag is set
    #: when more than this fraction of scored windows exceed it (10× the nominal 1 %).
    atypical_quantile: float = 0.99
    atypical_session_fraction: float = 0.10
    #: EWMA λ and one-sided CUSUM k, h on every second window (§2.5 step 7).
    ewma_lambda: float = 0.2
    cusum_k: float = 0.5
    cusum_h: float = 4.0
    #: PELT: β = 2σ²·ln n, minimum segment 3 windows; onset = first upward shift ≥ 0.5 (§2.5.7).
    pelt_min_size: int = 3
    pelt_onset_shift: float = 0.5
    #: Moving-block bootstrap of ΔFI: 1000 resamples, block 5 windows (§2.5 step 8).
    n_boot: int = 1000
    boot_block: int = 5
    #: Post-break recovery: scored windows within 2 min before and after a break (§2.5 step 8).
    recovery_window_s: float = 120.0
    #: Quality gates (§2.5 step 9).
    gate_min_active_s: float = 300.0
    gate_min_features: int = 4
    gate_min_wear_fraction: float = 0.9
    gate_max_novel_fraction: float = 0.3
    #: "Intensity dominates": ENMO-derived features (int, duty, astp) carry more than half of
    #: Σ|contribution| in the last third (applied only when calibration QC failed).
    gate_intensity_share: float = 0.5
    #: A feature counts as analysable when finite in ≥ half of the scored windows.
    feature_min_coverage: float = 0.5
    #: Alert (across sessions): index above this level (z units) in k of the last n sessions.
    alert_level: float = 0.5

    def __post_init__(self) -> None:
        for name in ("floors", "signs", "weights"):
            if len(getattr(self, name)) != len(FEATURES):
                raise ValueError(f"{name} must have {len(FEATURES)} entries")
        if min(self.floors) <= 0:
            raise ValueError(f"floors must be > 0, got {self.floors!r}")


DEFAULT_PARAMS = FatigueParams()


def feature_matrix(fw: FatigueWindows, params: FatigueParams = DEFAULT_PARAMS) -> FloatArray:
    """Features as scored: ln(1 + int mg); duty and ASTP over the trailing 5 min.

    ASTP of window w = Σ transitions / Σ active minutes, and duty = Σ active s / Σ worn s, over
    the windows with the same 30-s parity (non-overlapping, so nothing is counted twice) starting
    in (start_w − 5 min, start_w] (§2.3 item 9). Rest-dominated windows are never scored, but
    their seconds enter these sums: that is how they "count toward F_duty and F_astp" (§2.5
    step 1).

    Parameters
    ----------
    fw : FatigueWindows
        n windows, sorted by start.
    params : FatigueParams

    Returns
    -------
    ndarray of float64, shape (n, 9)
    """
    x = fw.features.copy()
    with np.errstate(invalid="ignore"):
        x[:, 0] = np.log1p(x[:, 0])
    act, worn, trans = trailing_sums(fw, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        x[:, FEATURES.index("astp")] = np.where(act > 0, trans / (act / 60.0), np.nan)
        x[:, FEATURES.index("duty")] = np.where(worn > 0, act / worn, np.nan)
    return x


def trailing_sums(
    fw: FatigueWindows, params: FatigueParams = DEFAULT_PARAMS
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Active s, worn s and transitions summed over each window's trailing 5 min.

    Over the windows of the same 30-s parity starting in (start_w − 5 min, start_w].

    Parameters
    ----------
    fw : FatigueWindows
        n windows.
    params : FatigueParams

    Returns
    -------
    active_s, worn_s, transitions : ndarray of float64, shape (n,)
    """
    k = round(params.astp_trailing_s / (2 * STEP_S))  # windows of one parity in 5 min
    slot = fw.start_ns // (STEP_S * _NS)
    pos = {int(s): i for i, s in enumerate(slot)}
    act, worn, trans = np.zeros(len(fw)), np.zeros(len(fw)), np.zeros(len(fw))
    for i, s in enumerate(slot):
        idx = [pos[int(s) - 2 * j] for j in range(k) if int(s) - 2 * j in pos]
        act[i] = float(np.sum(fw.active_s[idx]))
        worn[i] = float(np.sum(fw.worn_s[idx]))
        trans[i] = float(np.sum(fw.transitions[idx]))
    return act, worn, trans


def robust_reference(
    x_ref: FloatArray,
    params: FatigueParams = DEFAULT_PARAMS,
    *,
    active_min: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Median and floored robust scale per feature: μ = median, σ = max(1.4826·MAD, floor).

    ASTP and duty are sums over the trailing 5 min, whose counting noise the MAD of a 5-min
    reference cannot see (its trailing spans overlap almost entirely). With `active_min`, the
    ASTP scale is also floored at the Poisson SD of such a rate, √(λ / A) with λ = max(μ, 1/A)
    per min and A the reference's largest trailing active minutes (a full 5-min span;
    pre-registration deviation 1), and the duty scale at d(1 − d)·√(2/N), the SD of a duty
    cycle interrupted by N = max(μ_astp·A, 1) rest pauses of exponential length (deviation 3).

    Parameters
    ----------
    x_ref : ndarray of float, shape (n_ref, 9)
        Reference windows (NaN allowed).
    params : FatigueParams
    active_min : ndarray of float, shape (n_ref,), optional
        Trailing active minutes of the reference windows (`trailing_sums` / 60).

    Returns
    -------
    med, scale : ndarray of float64, shape (9,)
        NaN median where a feature has no finite reference value.
    """
    med = np.full(x_ref.shape[1], np.nan)
    scale = np.asarray(params.floors, dtype=np.float64).copy()
    for j in range(x_ref.shape[1]):
        col = x_ref[:, j][np.isfinite(x_ref[:, j])]
        if col.size:
            med[j] = float(np.median(col))
            scale[j] = max(1.4826 * float(np.median(np.abs(col - med[j]))), params.floors[j])
    j = FEATURES.index("astp")
    a = np.zeros(0) if active_min is None else active_min[np.isfinite(active_min) & (active_min > 0)]
    if params.astp_poisson_floor and a.size and np.isfinite(med[j]):
        a_min = float(np.max(a))
        scale[j] = max(scale[j], float(np.sqrt(max(med[j], 1.0 / a_min) / a_min)))
    jd = FEATURES.index("duty")
    if params.duty_poisson_floor and a.size and np.isfinite(med[j]) and np.isfinite(med[jd]):
        # Duty over 5 min is A / (A + R) with R the sum of N ≈ astp·A rest pauses; with Poisson
        # N and exponential pause lengths, SD(R)/R = √(2/N), so SD(duty) ≈ d(1 − d)√(2/N).
        n_rests = max(float(med[j]) * float(np.max(a)), 1.0)
        d = float(med[jd])
        scale[jd] = max(scale[jd], d * (1.0 - d) * float(np.sqrt(2.0 / n_rests)))
    return med, scale


def oriented_z(
    x: FloatArray, med: FloatArray, scale: FloatArray, params: FatigueParams = DEFAULT_PARAMS
) -> FloatArray:
    """z = s·(x − μ)/σ clipped to ±z_clip (§2.5 step 5); NaN where x or μ is NaN.

    Parameters
    ----------
    x : ndarray of float, shape (n, 9)
    med, scale : ndarray of float, shape (9,)

    Returns
    -------
    ndarray of float64, shape (n, 9)
    """
    with np.errstate(invalid="ignore"):
        z = np.asarray(params.signs) * (x - med) / scale
    return np.clip(z, -params.z_clip, params.z_clip)


def composite(
    z: FloatArray, params: FatigueParams = DEFAULT_PARAMS
) -> tuple[FloatArray, FloatArray]:
    """OT-FI = Σ w·z / Σ w over available features, and per-feature shares w·z / Σ w.

    Parameters
    ----------
    z : ndarray of float, shape (n, 9)

    Returns
    -------
    fi : ndarray of float64, shape (n,)
        NaN where no feature is available.
    contrib : ndarray of float64, shape (n, 9)
        w_k z_k / Σ_available w (0 for missing features); rows sum to `fi`.
    """
    w = np.where(np.isnan(z), 0.0, np.asarray(params.weights))
    wsum = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(np.isnan(z), 0.0, w * np.nan_to_num(z)) / wsum[:, None]
        fi = np.where(wsum > 0, contrib.sum(axis=1), np.nan)
    contrib[wsum == 0] = 0.0
    return fi, contrib
