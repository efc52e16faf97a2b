"""OT-FI, the unsupervised fatigue index per session and across sessions (methods.md §2.5).

`session_fatigue` scores one session's windows (from `analysis.fatigue_features`) against the
start of the session (R_within) and, when given, the patient's baseline (R_between); `trend` and
`alert` work across sessions. Every output key is documented in docs/fatigue.md; every parameter
is fixed in docs/fatigue-preregistration.md (contract: architecture.md, issue 6).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.fatigue_baseline import Baseline, build_baseline, cluster, posture
from analysis.fatigue_features import MIN_FS_HZ
from analysis.fatigue_params import (
    DEFAULT_PARAMS,
    FatigueParams,
    composite,
    feature_matrix,
    oriented_z,
    robust_reference,
    trailing_sums,
)
from analysis.fatigue_stats import block_bootstrap_mean, cusum_upper, ewma, pelt_mean, theil_sen
from analysis.fatigue_trend import alert, trend
from analysis.fatigue_windows import FEATURES, STEP_S, WINDOW_S, FatigueWindows

__all__ = [
    "DEFAULT_PARAMS",
    "Baseline",
    "FatigueParams",
    "active_time_s",
    "alert",
    "build_baseline",
    "session_fatigue",
    "trend",
]

FloatArray = NDArray[np.float64]
_NS = 1_000_000_000
#: ENMO-derived features, affected by a calibration error (§2.5 step 9).
_INTENSITY = (FEATURES.index("int"), FEATURES.index("duty"), FEATURES.index("astp"))
#: Keys that are numbers only when quality is "ok".
_NUMERIC_KEYS = (
    "index",
    "index_between",
    "delta",
    "ci95",
    "onset_s",
    "pelt_onset_s",
    "intensity_decline_pct_per_10min",
    "intensity_decline_p",
    "recovery_mean",
    "atypical_fraction",
)


def _blank(fw: FatigueWindows) -> dict[str, Any]:
    n = len(fw)
    return {
        "index": None,
        "index_between": None,
        "delta": None,
        "ci95": None,
        "onset_s": None,
        "alarm": False,
        "contributions": {},
        "quality": "ok",
        "quality_failed": [],
        "pelt_onset_s": None,
        "change_points_s": [],
        "intensity_decline_pct_per_10min": None,
        "intensity_decline_p": None,
        "recovery": [],
        "recovery_mean": None,
        "atypical": False,
        "atypical_fraction": None,
        "n_windows": n,
        "n_scored": 0,
        "active_s": float(np.sum(fw.active_s) / 2.0),
        "wear_fraction": float(np.sum(fw.worn_s) / (WINDOW_S * n)) if n else 0.0,
        "novel_fraction": 0.0,
        "features_used": [],
        "strata": 0,
        "series": {"start_ns": [], "fi_within": [], "fi_between": [], "ewma": [], "d2": []},
    }


def _fail(out: dict[str, Any], gates: list[str]) -> dict[str, Any]:
    for k in _NUMERIC_KEYS:
        out[k] = None
    out.update(
        alarm=False,
        contributions={},
        quality=gates[0],
        quality_failed=gates,
        change_points_s=[],
        recovery=[],
        atypical=False,
        series={k: [] for k in out["series"]},
    )
    return out


def session_fatigue(
    windows: FatigueWindows,
    *,
    baseline: Baseline | None = None,
    calibration_ok: bool = True,
    params: FatigueParams = DEFAULT_PARAMS,
    task: str | None = None,
    fs_hz: float | None = None,
) -> dict[str, Any]:
    """OT-FI of one session (methods.md §2.5 steps 3–9).

    Parameters
    ----------
    windows : FatigueWindows
        The session's windows (`FatigueWindows.select(start_ns, end_ns)`), any order.
    baseline : Baseline, optional
        The patient's between-session baseline (`build_baseline`); enables `index_between`,
        D² against R_between and novel-task detection.
    calibration_ok : bool, default True
        False when the recording's calibration QC failed (gate "calibration_intensity").
    params : FatigueParams
    task : str, optional
        The session's task tag (selects the stratum of a tagged baseline).
    fs_hz : float, optional
        The session's sampling rate, Hz; below `analysis.fatigue_features.MIN_FS_HZ` (20 Hz)
        the session fails the first gate, "rate_lt_20hz" (such data yields no windows, and
        "wear_lt_90pct" would mislead). None: unknown, the gate is not checked.

    Returns
    -------
    dict
        JSON-ready; keys in docs/fatigue.md. Times (``onset_s`` …) are active seconds from the
        session's first window. When ``quality != "ok"`` every number is None, ``alarm`` False
        and ``contributions`` {}.

    Raises
    ------
    ValueError
        ``fs_hz`` given but not a positive finite number.
    """
    if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive number of Hz or None, got {fs_hz!r}")
    fw = windows.take(np.argsort(windows.start_ns, kind="stable"))
    out = _blank(fw)
    n = len(fw)
    gates: list[str] = []
    if fs_hz is not None and fs_hz < MIN_FS_HZ:
        gates.append("rate_lt_20hz")  # checked first: the movement band needs >= 20 Hz
    if n == 0 or out["wear_fraction"] < params.gate_min_wear_fraction:
        gates.append("wear_lt_90pct")
    if out["active_s"] < params.gate_min_active_s:
        gates.append("active_lt_5min")
    if gates:
        return _fail(out, gates)
    x = feature_matrix(fw, params)
    act_tr_min = trailing_sums(fw, params)[0] / 60.0
    strata, novel, b_idx = _strata(fw, baseline, task, params)
    ana = fw.analysable
    novel_frac = float(np.mean(novel[ana])) if ana.any() else 0.0
    out["novel_fraction"] = novel_frac
    out["strata"] = int(strata.max()) + 1
    if novel_frac > params.gate_max_novel_fraction:
        return _fail(out, ["novel_task_gt_30pct"])
    cand = ana & ~novel
    fi_w = np.full(n, np.nan)
    contrib = np.zeros((n, len(FEATURES)))
    z_all = np.full((n, len(FEATURES)), np.nan)
    for c in np.unique(strata[cand]):
        idx = np.flatnonzero(cand & (strata == c))
        ref = idx[: _n_ref(fw.active_s[idx], params)]
        if ref.size < params.ref_min_windows:
            continue
        med, scale = robust_reference(x[ref], params, active_min=act_tr_min[ref])
        z = oriented_z(x[idx], med, scale, params)
        fi_w[idx], contrib[idx] = composite(z, params)
        z_all[idx] = z
    scored = np.isfinite(fi_w)
    if scored.sum() < 3:
        return _fail(out, ["reference_lt_8_windows"])
    cover = np.mean(np.isfinite(z_all[scored]), axis=0)
    used = [FEATURES[j] for j in range(len(FEATURES)) if cover[j] >= params.feature_min_coverage]
    out["features_used"] = used
    if len(used) < params.gate_min_features:
        return _fail(out, ["features_lt_4"])
    # Between-session scores and D², only against R_between (§2.5 step 6): the within-session
    # reference (8–10 windows) is too small for a 9×9 covariance.
    fi_b = np.full(n, np.nan)
    d2 = np.full(n, np.nan)
    crit = np.full(n, np.nan)
    if baseline is not None:
        for j, st in enumerate(baseline.strata):
            m = scored & (b_idx == j)
            if m.any():
                fi_b[m] = composite(oriented_z(x[m], st.med, st.scale, params), params)[0]
                if st.maha is not None:
                    d2[m], crit[m] = st.maha.d2(x[m]), st.maha.crit
    sidx = np.flatnonzero(scored)
    series = fi_w[sidx]
    third = max(1, sidx.size // 3)
    first, last = series[:third], series[-third:]
    out["index"] = float(np.mean(last))
    out["delta"] = float(np.mean(last) - np.mean(first))
    bl = block_bootstrap_mean(last, n_boot=params.n_boot, block=params.boot_block, seed=params.seed)
    bf = block_bootstrap_mean(
        first, n_boot=params.n_boot, block=params.boot_block, seed=params.seed + 1
    )
    lo, hi = np.percentile(bl - bf, [2.5, 97.5])
    out["ci95"] = [float(lo), float(hi)]
    c_last = contrib[sidx[-third:]].mean(axis=0)
    ranked = sorted(
        ((FEATURES[j], float(c_last[j])) for j in range(len(FEATURES)) if FEATURES[j] in used),
        key=lambda kv: -kv[1],
    )
    out["contributions"] = dict(ranked)
    if not calibration_ok:
        tot = float(np.sum(np.abs(c_last)))
        share = float(np.sum(np.abs(c_last[list(_INTENSITY)]))) / tot if tot > 0 else 0.0
        if share > params.gate_intensity_share:
            return _fail(out, ["calibration_intensity"])
    fib = fi_b[sidx][np.isfinite(fi_b[sidx])]
    out["index_between"] = float(np.median(fib)) if fib.size else None
    ok_d2 = np.isfinite(d2[sidx])
    if ok_d2.any():
        out["atypical_fraction"] = float(np.mean(d2[sidx][ok_d2] > crit[sidx][ok_d2]))
        out["atypical"] = out["atypical_fraction"] > params.atypical_session_fraction
    out["n_scored"] = int(sidx.size)
    act_t = active_time_s(fw)
    _onsets(out, fw, fi_w, scored, act_t, params)
    _intensity_decline(out, fw, x, scored)
    _recovery(out, fw, fi_w, scored, params)
    ew = np.full(n, np.nan)
    ew[sidx] = ewma(series, lam=params.ewma_lambda)
    out["series"] = {
        "start_ns": [int(s) for s in fw.start_ns],
        "fi_within": _lst(fi_w),
        "fi_between": _lst(fi_b),
        "ewma": _lst(ew),
        "d2": _lst(d2),
    }
    return out


def _lst(a: FloatArray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in a]


def _n_ref(active_s: FloatArray, params: FatigueParams) -> int:
    """Windows covering the first `ref_active_s` active seconds (half-sum: windows overlap)."""
    cum = np.cumsum(active_s) / 2.0
    return int(np.searchsorted(cum, params.ref_active_s, "left")) + 1


def _strata(
    fw: FatigueWindows, baseline: Baseline | None, task: str | None, params: FatigueParams
) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.int64]]:
    """Within-session stratum per window, novel-task mask and baseline stratum (−1 if none)."""
    n = len(fw)
    if baseline is not None:
        b_idx, novel = baseline.assign(fw, task)
        if not baseline.tagged:
            return b_idx, novel, b_idx
        return np.zeros(n, np.int64), novel, b_idx
    strata = np.zeros(n, np.int64)
    ana = fw.analysable & np.all(np.isfinite(fw.signature[:, 3:]), axis=1)
    if task is None and ana.sum() >= 2 * params.ref_min_windows:
        g = posture(fw)[ana]
        _, lab, _ = cluster(
            g,
            k_range=params.k_range,
            min_silhouette=params.within_split_silhouette,
            seed=params.seed,
            min_size=params.ref_min_windows,
            min_separation=params.novel_min_radius,
        )
        strata[ana] = lab  # other windows are never scored
    return strata, np.zeros(n, bool), np.full(n, -1, np.int64)


def active_time_s(fw: FatigueWindows) -> FloatArray:
    """Active seconds from the session's first window to each window's start.

    The time axis of ``onset_s``, ``pelt_onset_s`` and ``change_points_s``: half the sum of
    `active_s` of the earlier windows (windows overlap by half), so it is exact to within 30 s.

    Parameters
    ----------
    fw : FatigueWindows
        The session's windows, sorted by start.

    Returns
    -------
    ndarray of float64, shape (n,)
        Active seconds, s.
    """
    if len(fw) == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(fw.active_s)[:-1] / 2.0])


def _onsets(
    out: dict[str, Any],
    fw: FatigueWindows,
    fi: FloatArray,
    scored: NDArray[np.bool_],
    act_t: FloatArray,
    params: FatigueParams,
) -> None:
    """CUSUM alarm and onset, PELT change points, on the chain of non-overlapping windows."""
    first = int(np.flatnonzero(scored)[0])
    parity = (fw.start_ns // (STEP_S * _NS)) % 2 == (fw.start_ns[first] // (STEP_S * _NS)) % 2
    chain = np.flatnonzero(scored & parity)
    _, alarm, onset = cusum_upper(fi[chain], k=params.cusum_k, h=params.cusum_h)
    if alarm is not None:
        out["alarm"] = True
        out["onset_s"] = float(act_t[chain[min(onset, alarm)]])
    y = fi[chain]
    if y.size >= 2 * params.pelt_min_size:
        d = np.diff(y)
        sigma = max(1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2), 0.1)
        cps = pelt_mean(y, penalty=2 * sigma**2 * math.log(y.size), min_size=params.pelt_min_size)
        out["change_points_s"] = [float(act_t[chain[c]]) for c in cps]
        bounds = [0, *cps, y.size]
        for i, c in enumerate(cps):
            if np.mean(y[c : bounds[i + 2]]) - np.mean(y[bounds[i] : c]) >= params.pelt_onset_shift:
                out["pelt_onset_s"] = float(act_t[chain[c]])
                break


def _intensity_decline(
    out: dict[str, Any], fw: FatigueWindows, x: FloatArray, scored: NDArray[np.bool_]
) -> None:
    """Theil–Sen slope of ln-intensity on elapsed minutes, as % per 10 min, with Kendall p."""
    t_min = (fw.start_ns[scored] - fw.start_ns[0]) / (60 * _NS)
    res = theil_sen(t_min, x[scored, FEATURES.index("int")])
    if res["slope"] is not None:
        out["intensity_decline_pct_per_10min"] = float((math.exp(10 * res["slope"]) - 1) * 100)
        out["intensity_decline_p"] = res["p"]


def _recovery(
    out: dict[str, Any],
    fw: FatigueWindows,
    fi: FloatArray,
    scored: NDArray[np.bool_],
    params: FatigueParams,
) -> None:
    """Mean OT-FI in the 2 min after minus before each rest break (< 0: the break helped)."""
    t_s = (fw.start_ns - fw.start_ns[0]) / _NS + WINDOW_S / 2.0  # window centres
    brk = fw.rest_break
    starts = np.flatnonzero(brk & ~np.concatenate([[False], brk[:-1]]))
    ends = np.flatnonzero(brk & ~np.concatenate([brk[1:], [False]]))
    rec = []
    for b0, b1 in zip(starts, ends):
        s0 = (fw.start_ns[b0] - fw.start_ns[0]) / _NS
        s1 = (fw.start_ns[b1] - fw.start_ns[0]) / _NS + WINDOW_S
        before = scored & (t_s < s0) & (t_s >= s0 - params.recovery_window_s)
        after = scored & (t_s >= s1) & (t_s < s1 + params.recovery_window_s)
        if before.any() and after.any():
            rec.append(
                {
                    "break_start_s": float(s0),
                    "break_end_s": float(s1),
                    "before": float(np.mean(fi[before])),
                    "after": float(np.mean(fi[after])),
                    "change": float(np.mean(fi[after]) - np.mean(fi[before])),
                }
            )
    out["recovery"] = rec
    out["recovery_mean"] = float(np.mean([r["change"] for r in rec])) if rec else None
