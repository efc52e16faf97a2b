"""Retrospective check of the fatigue index's statistical layer on public fatiguing-protocol data.

Run on demand (never in the test suite)::

    python benchmarks/fatigue_retrospective.py [--data ../shared/data] [--json out.json]

methods.md §2.6 B. The data are accelerometer-derived features, not raw signals, so this tests
baseline scoring (oriented robust z with floors, Ledoit–Wolf Mahalanobis D²), the CUSUM and the
trend — not feature extraction. Nothing is trained; every choice below was fixed in this file
before it was run on the data.

B1 shoulder_fatigue_modeling (overhead lifting, Borg CR-10 about every 5 min): per subject ×
condition session, cycles in time order; baseline = first 10 % of cycles. Primary variant as
docs/fatigue-preregistration.md §5.2: at least 8 reference cycles; wrist and upper-arm acc RMS,
MAD, SD and jerk RMS, SD, all "lower = more fatigued" (methods.md §2.6 B1), equal weights, so
composite = mean of z·(−1), and D² on the same 10 features. Secondary ("harness", this file's
first version, also fixed before any run): ≥ 5 reference cycles, jerk mean added to the
composite, D² on acc mean, RMS, MAD, SD, P25, P75 and jerk mean, RMS, SD (18). Reported:
within-session Spearman ρ(index, RPE), repeated-measures correlation over sessions, AUC of the
index for rated cycles with RPE ≥ 5 vs ≤ 2, the CUSUM alarm (k, h of the preregistration) vs the
first RPE ≥ 5, and the Theil–Sen slope of the composite per condition against the workload
order 2.5-15 > 2.5-10 > 1.5-15 > 2.5-5 (kg × lifts/min).

B2 maman2020 (MMH and walking; per participant 9 non-fatigued then 9 fatigued rows, checked in
the file): baseline = the first 5 non-fatigued rows in file order; scored = the other 4
non-fatigued and the 9 fatigued. Features: the wrist ones (an otmon wrist device): jerk mean ↓,
acceleration mean ↓, jerk CV ↑, acceleration CV ↑ for the composite; D² on the wrist four and,
as a secondary, on every accelerometer feature (wrist, hip, chest/torso, ankle acc/jerk
mean and CV). Heart rate is left out (not a wearable-accelerometer feature). AUC pooled over
participants, plus the median per-participant AUC; compared with the published supervised
accuracy ≥ 0.85 (accuracy, not AUC: an indication, not a like-for-like comparison).

Adaptations of the core's statistical layer: floors — the §2.5 floor table is for OT-FI's own
features; for these derived features the floor is 5 % of |baseline median| (the log-intensity
floor 0.05 is likewise ≈ 5 % relative). Ledoit–Wolf and the CUSUM are `analysis.fatigue_stats`
(`ledoit_wolf`, `cusum_upper`) as they are; D² uses the baseline mean (5 points are too few for
a robust location in 18 dimensions) and the pseudo-inverse of the shrunk covariance.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fatigue_stats import cusum_upper, ledoit_wolf, theil_sen
from benchmarks.fatigue.hmp import default_data_dir
from benchmarks.fatigue.metrics import (
    auc,
    cluster_bootstrap,
    mahalanobis_d2,
    median_iqr,
    rmcorr,
    robust_z,
)

REL_FLOOR = 0.05  # see the module docstring: floors for derived features
BASELINE_FRACTION = 0.10  # methods.md §2.6 B1
SENSORS = ("wrist", "upperarm")
# Two pre-specified variants, both fixed before any run on the data. "preregistered" is
# docs/fatigue-preregistration.md §5.2 (primary): reference ≥ 8 cycles, composite and D² on
# acc RMS, MAD, SD and jerk RMS, SD. "harness" is this file's first version (commit 10b903a,
# secondary): reference ≥ 5 cycles, composite adds jerk mean, D² on 9 statistics per sensor.
SHOULDER_VARIANTS = {
    "preregistered": {"min_baseline": 8,
                      "composite": ("acc_rms", "acc_mad", "acc_std", "jerk_rms", "jerk_std"),
                      "d2": ("acc_rms", "acc_mad", "acc_std", "jerk_rms", "jerk_std")},
    "harness": {"min_baseline": 5,
                "composite": ("acc_rms", "acc_mad", "acc_std", "jerk_mean", "jerk_rms",
                              "jerk_std"),
                "d2": ("acc_mean", "acc_rms", "acc_mad", "acc_std", "acc_perc25", "acc_perc75",
                       "jerk_mean", "jerk_rms", "jerk_std")},
}
D2_STATS = SHOULDER_VARIANTS["harness"]["d2"]  # every column either variant reads
WORKLOAD = {"Condition 2.5-15": 4, "Condition 2.5-10": 3, "Condition 1.5-15": 2,
            "Condition 2.5-5": 1}  # expected order of fatigue build-up (kg × lifts/min)


def _prereg_cusum() -> tuple[float, float]:
    """CUSUM k, h from the core's preregistered defaults (methods.md §2.5 if not exposed)."""
    try:
        from analysis.fatigue import DEFAULT_PARAMS  # type: ignore[attr-defined]
    except ImportError:
        return 0.5, 4.0
    p = DEFAULT_PARAMS
    get = p.get if isinstance(p, dict) else lambda k, d: getattr(p, k, d)
    return float(get("cusum_k", 0.5)), float(get("cusum_h", 4.0))


def score(x: np.ndarray, base: np.ndarray, comp_cols: list[int], signs: np.ndarray,
          d2_cols: list[int] | None = None) -> tuple:
    """(composite, D²) of rows ``x`` against baseline rows ``base`` (D² on ``d2_cols``, all)."""
    floor = REL_FLOOR * np.abs(np.nanmedian(base, axis=0))
    z = robust_z(x[:, comp_cols], base[:, comp_cols], floor=floor[comp_cols], sign=signs)
    comp = np.nanmean(z, axis=1)
    d2c = list(range(x.shape[1])) if d2_cols is None else d2_cols
    cov, _ = ledoit_wolf(base[:, d2c])
    return comp, mahalanobis_d2(x[:, d2c], base[:, d2c], cov)


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def shoulder(path: Path, k: float, h: float, variant: str = "preregistered") -> dict:
    spec = SHOULDER_VARIANTS[variant]
    rows = _read_csv(path)
    cols = [f"{s}_{st}" for s in SENSORS for st in D2_STATS]
    comp_cols = [cols.index(f"{s}_{st}") for s in SENSORS for st in spec["composite"]]
    d2_cols = [cols.index(f"{s}_{st}") for s in SENSORS for st in spec["d2"]]
    signs = -np.ones(len(comp_cols))
    sessions: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        sessions.setdefault((r["subject"], r["experimental_condition"]), []).append(r)
    per, pooled = [], {"sess": [], "comp": [], "d2": [], "rpe": []}
    raw_rho: dict[str, list[float]] = {}
    for (subj, cond), rs in sorted(sessions.items()):
        rs.sort(key=lambda r: float(r["wrist_acc_time"]))
        x = np.array([[float(r[c]) for c in cols] for r in rs])
        t_min = (np.array([float(r["wrist_acc_time"]) for r in rs]) - float(rs[0]["wrist_acc_time"])) / 60
        rpe = np.array([float(r["rpe"]) if r["rpe"] not in ("", "NA") else np.nan for r in rs])
        nb = max(int(np.ceil(BASELINE_FRACTION * len(rs))), spec["min_baseline"])
        comp, d2 = score(x, x[:nb], comp_cols, signs, d2_cols)
        rated = np.isfinite(rpe)
        after = rated & (np.arange(len(rs)) >= nb)  # rated cycles outside the baseline
        rho = stats.spearmanr(comp[rated], rpe[rated]).statistic if np.ptp(rpe[rated]) > 0 else np.nan
        rho_d2 = stats.spearmanr(d2[rated], rpe[rated]).statistic if np.ptp(rpe[rated]) > 0 else np.nan
        if np.ptp(rpe[rated]) > 0:  # descriptive: each raw feature's own ρ with RPE
            for j in sorted(set(comp_cols) | set(d2_cols)):
                raw_rho.setdefault(cols[j], []).append(
                    float(stats.spearmanr(x[rated, j], rpe[rated]).statistic))
        _, alarm, onset = cusum_upper(comp[nb:], k=k, h=h)
        cross = np.flatnonzero(rated & (rpe >= 5))
        slope = theil_sen(t_min[nb:], comp[nb:])["slope"]
        per.append({"subject": subj, "condition": cond, "n_cycles": len(rs), "n_baseline": nb,
                    "rho_composite": rho, "rho_d2": rho_d2, "max_rpe": float(np.nanmax(rpe)),
                    "alarm_min": float(t_min[nb + alarm]) if alarm is not None else None,
                    "onset_min": float(t_min[nb + onset]) if alarm is not None else None,
                    "rpe5_min": float(t_min[cross[0]]) if len(cross) else None,
                    "slope_per_10min": slope * 10 if slope is not None else None})
        for key, v in (("comp", comp[after]), ("d2", d2[after]), ("rpe", rpe[after])):
            pooled[key].extend(v.tolist())
        pooled["sess"].extend([f"{subj}|{cond}"] * int(after.sum()))
    sess = np.array(pooled["sess"])
    comp, d2, rpe = (np.array(pooled[k]) for k in ("comp", "d2", "rpe"))
    subj_of = np.array([s.split("|")[0] for s in sess])
    hi, lo = rpe >= 5, rpe <= 2

    def auc_idx(v):
        return lambda idx: auc(v[idx][hi[idx]], v[idx][lo[idx]])

    out = {"variant": variant, "n_sessions": len(per), "n_rated_scored": len(rpe),
           "n_rpe_ge5": int(hi.sum()), "n_rpe_le2": int(lo.sum())}
    for name, v in (("composite", comp), ("d2", d2)):
        out[f"auc_{name}"] = auc(v[hi], v[lo])
        out[f"auc_{name}_ci95"] = cluster_bootstrap(auc_idx(v), subj_of, seed=61)
        out[f"rmcorr_{name}"] = rmcorr(sess, v, rpe)
    for name in ("rho_composite", "rho_d2"):
        vals = [p[name] for p in per]
        out[f"{name}_median_iqr"] = median_iqr(vals)
        out[f"{name}_positive"] = f"{sum(v > 0 for v in vals if np.isfinite(v))}/" \
                                  f"{sum(np.isfinite(v) for v in vals)}"
    with_cross = [p for p in per if p["rpe5_min"] is not None]
    without = [p for p in per if p["rpe5_min"] is None]
    out["cusum"] = {
        "k": k, "h": h,
        "sessions_reaching_rpe5": len(with_cross),
        "alarm_at_or_before_rpe5": sum(p["alarm_min"] is not None and p["alarm_min"] <= p["rpe5_min"]
                                       for p in with_cross),
        "alarm_after_rpe5": sum(p["alarm_min"] is not None and p["alarm_min"] > p["rpe5_min"]
                                for p in with_cross),
        "no_alarm_though_rpe5": sum(p["alarm_min"] is None for p in with_cross),
        "sessions_never_rpe5": len(without),
        "alarm_without_rpe5": sum(p["alarm_min"] is not None for p in without),
        "lead_min_median_iqr": median_iqr([p["rpe5_min"] - p["alarm_min"] for p in with_cross
                                           if p["alarm_min"] is not None]),
    }
    by_cond = {}
    for cond in sorted(WORKLOAD, key=WORKLOAD.get, reverse=True):
        ps = [p for p in per if p["condition"] == cond]
        by_cond[cond] = {"n": len(ps),
                         "slope_per_10min_median": median_iqr([p["slope_per_10min"] for p in ps])[0],
                         "max_rpe_median": median_iqr([p["max_rpe"] for p in ps])[0]}
    out["by_condition"] = by_cond
    out["raw_feature_rho_median"] = {c: float(np.median(v)) for c, v in raw_rho.items()}
    wl = [WORKLOAD[p["condition"]] for p in per]
    out["spearman_slope_vs_workload"] = float(stats.spearmanr(
        wl, [p["slope_per_10min"] for p in per]).statistic)
    out["spearman_maxrpe_vs_workload"] = float(stats.spearmanr(
        wl, [p["max_rpe"] for p in per]).statistic)
    out["sessions"] = per
    return out


MAMAN_WRIST = {"MMH": (("Wrist.jerk.Mean", -1), ("Wrist.ACC.Mean", -1),
                       ("Wrist.jerk.coefficient.of.variation", 1),
                       ("Wrist.ACC.coefficient.of.variation", 1)),
               "WLK": (("Wrist.jerk.Mean", -1), ("Wrist.ACC.Mean", -1),
                       ("Wrist.jerk.CV", 1), ("Wrist.ACC.CV", 1))}
N_BASE_MAMAN = 5


def _acc_columns(header: list[str]) -> list[str]:
    """Every accelerometer acc/jerk mean and CV column (wrist, hip, chest/torso, ankle)."""
    keep = []
    for c in header:
        parts = c.split(".")
        if len(parts) >= 3 and parts[1] in ("jerk", "ACC") and parts[0] in (
                "Wrist", "Hip", "Chest", "Torso", "Ankle"):
            keep.append(c)
    return keep


def maman(path: Path, task: str) -> dict:
    rows = _read_csv(path)
    label_col = "fatiguestate1" if "fatiguestate1" in rows[0] else "Fatigue state"
    wrist = MAMAN_WRIST[task]
    all_acc = _acc_columns(list(rows[0].keys()))
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["subject"], []).append(r)
    res = {"comp": [], "d2_wrist": [], "d2_all": [], "y": [], "subj": []}
    order_ok, per_auc = True, {"comp": [], "d2_wrist": [], "d2_all": []}
    for subj, rs in by.items():
        y = np.array([int(r[label_col]) for r in rs])
        if np.any(np.diff(y) < 0):
            order_ok = False  # a fatigued row before a non-fatigued one
        nonf = np.flatnonzero(y == 0)
        if len(nonf) < N_BASE_MAMAN + 1 or not (y == 1).any():
            continue
        base_idx, test_idx = nonf[:N_BASE_MAMAN], np.setdiff1d(np.arange(len(rs)), nonf[:N_BASE_MAMAN])
        xw = np.array([[float(r[c]) for c, _ in wrist] for r in rs])
        xa = np.array([[float(r[c]) for c in all_acc] for r in rs])
        signs = np.array([s for _, s in wrist], float)
        comp, d2w = score(xw[test_idx], xw[base_idx], list(range(len(wrist))), signs)
        cov, _ = ledoit_wolf(xa[base_idx])
        d2a = mahalanobis_d2(xa[test_idx], xa[base_idx], cov)
        yt = y[test_idx]
        for key, v in (("comp", comp), ("d2_wrist", d2w), ("d2_all", d2a)):
            res[key].extend(v.tolist())
            per_auc[key].append(auc(v[yt == 1], v[yt == 0]))
        res["y"].extend(yt.tolist())
        res["subj"].extend([subj] * len(yt))
    y = np.array(res["y"])
    subj = np.array(res["subj"])
    out = {"task": task, "n_participants": len(set(res["subj"])), "rows_in_order": order_ok,
           "n_fatigued": int((y == 1).sum()), "n_nonfatigued_scored": int((y == 0).sum()),
           "all_acc_features": len(all_acc)}
    for key in ("comp", "d2_wrist", "d2_all"):
        v = np.array(res[key])
        out[f"auc_{key}"] = auc(v[y == 1], v[y == 0])
        out[f"auc_{key}_ci95"] = cluster_bootstrap(
            lambda idx, v=v: auc(v[idx][y[idx] == 1], v[idx][y[idx] == 0]), subj, seed=62)
        out[f"auc_{key}_per_participant_median_iqr"] = median_iqr(per_auc[key])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--json", type=Path, help="write the full results here")
    args = ap.parse_args(argv)
    root = args.data / "fatigue"
    if not root.is_dir():
        print(f"error: {root}: fatigue data folder not found", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    k, h = _prereg_cusum()
    sh = root / "shoulder_fatigue_modeling" / "initial_features.csv"
    out = {"shoulder": shoulder(sh, k, h), "shoulder_harness": shoulder(sh, k, h, "harness"),
           "maman_mmh": maman(root / "maman2020" / "MMH_15p.csv", "MMH"),
           "maman_wlk": maman(root / "maman2020" / "WLK_13p.csv", "WLK")}
    out["runtime_s"] = time.perf_counter() - t0
    summary = {key: {k2: v for k2, v in val.items() if k2 != "sessions"} if isinstance(val, dict)
               else val for key, val in out.items()}
    print(json.dumps(summary, indent=1, default=float))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
