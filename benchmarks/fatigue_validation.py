"""Validation of OT-FI by fatigue injected into real wrist recordings (issue 6, methods.md §2.6 A).

Run on demand (never in the test suite)::

    python benchmarks/fatigue_validation.py [--pool test] [--workers 2] [--json out.json]

Base material: HMP right-wrist ADL trials (`../shared/data/hmp-adl/`, 32 Hz, read in place)
assembled into 20–40-min same-task pseudo-sessions (`benchmarks.fatigue.hmp`); reported figures
use the test pool of volunteers only. Every base session is run clean, under each negative
control and under every manipulation level (`benchmarks.fatigue.runs.conditions`), through
`analysis.fatigue_features.window_features` and `analysis.fatigue.session_fatigue` with the
preregistered defaults (no between-session baseline: the within-session index). Seeds are fixed
(``--seed``), so a rerun gives the same numbers.

Scoring conventions (docs/fatigue-preregistration.md §5.1): in the primary AUC a session failing
a quality gate counts against the index — a gated fatigued session ranks below every control, a
gated control above every fatigued session; the complete-case AUC drops them. A CUSUM alarm in a
control session with quality ok is a false alarm (the index raises at most one per session). Onset
error is |onset_s − t0| on the index's active-time axis (t0 converted with the same half-sum of
window active seconds) for fatigued sessions that alarmed after t0; detection delay is the alarm
time (end of the alarming window) − t0 in wall time.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fatigue import DEFAULT_PARAMS, session_fatigue
from analysis.fatigue_features import window_features
from benchmarks.fatigue import hmp, runs
from benchmarks.fatigue.metrics import auc, cluster_bootstrap, median_iqr

_SESSIONS: list[hmp.Session] = []


def _init(pool: str, data_dir: str | None) -> None:
    trials = hmp.load_hmp(Path(data_dir) if data_dir else None)
    _SESSIONS[:] = hmp.build_sessions(trials, pool=pool)


def evaluate(sess: hmp.Session, case: runs.Case, base: int) -> dict:
    """Index on one case; the row of results for it."""
    res = case.result
    fw = window_features(res.accel_g, fs_hz=res.fs_hz, t0_ns=runs.T0_NS)
    out = session_fatigue(fw)
    row = {"base": base, "task": sess.task, "volunteers": list(sess.volunteers),
           "kind": case.kind, "level": case.level, "tau_s": case.tau_s, "t0_s": res.onset_s,
           "duration_s": res.duration_s, "quality": out["quality"], "delta": out["delta"],
           "ci95": out["ci95"], "alarm": out["alarm"], "onset_active_s": out["onset_s"],
           "contributions": out["contributions"], "features_used": out["features_used"],
           "n_scored": out["n_scored"]}
    row.update(runs.timing(out["series"], res.onset_s, DEFAULT_PARAMS.cusum_k,
                           DEFAULT_PARAMS.cusum_h))
    fi = [v for v in out["series"]["fi_within"] if v is not None]
    # Active seconds before each window's start, as the index counts them (half-sum of the
    # overlapping windows' active seconds); t0 goes onto the same axis (preregistration §5.1).
    act = np.concatenate([[0.0], np.cumsum(fw.active_s)[:-1] / 2.0]) if len(fw) else np.zeros(0)
    wall = (fw.start_ns - runs.T0_NS) / 1e9
    row["t0_active_s"] = (float(np.interp(res.onset_s, wall, act))
                          if res.onset_s is not None and len(fw) else None)
    row["pelt_onset_active_s"] = out["pelt_onset_s"]
    # Windows after the within-session reference (first 5 active min), for calibration.
    after = [v for v, a in zip(out["series"]["fi_within"], act)
             if v is not None and a >= DEFAULT_PARAMS.ref_active_s]
    row["fi_after_ref"] = after if res.onset_s is None else []
    # The replayed CUSUM must find the index's own onset (active seconds of the same window).
    row["onset_replay_ok"] = out["onset_s"] is None if row["onset_wall_s"] is None else bool(
        np.isclose(act[np.searchsorted(fw.start_ns, runs.T0_NS + round(row["onset_wall_s"] * 1e9))],
                   out["onset_s"]))
    row["n_fi"] = len(fi)
    return row


def _job(args: tuple[int, str, float | None, float | None, int]) -> dict:
    base, kind, level, tau, seed = args
    sess = _SESSIONS[base]
    rng = np.random.default_rng(seed)
    other = None
    if kind == "task_switch":  # a session of another task, chosen reproducibly
        others = [i for i, s in enumerate(_SESSIONS) if s.task != sess.task]
        pick = int(rng.integers(len(others)))
        # The switch time random_control will draw next (peeked on a copy of the generator):
        # if the pick is too short to fill the rest of the session (possible in the tune pool),
        # take the next session of the list that is long enough; draws are otherwise unchanged.
        t_s = copy.deepcopy(rng).uniform(0.3, 0.7) * sess.duration_s
        need = len(sess.accel_g) - round(t_s * sess.fs_hz)
        order = others[pick:] + others[:pick]
        fits = [j for j in order if len(_SESSIONS[j].accel_g) >= need]
        other = _SESSIONS[fits[0] if fits else order[0]]
    case = runs.make_case(sess, kind, level, tau, rng, other)
    return evaluate(sess, case, base)


CONTROLS = ("clean", "task_switch", "strap_rotation", "calibration_drift", "resample")


def _scores(rows: list[dict], gated: float) -> np.ndarray:
    """ΔFI per row; a gated session (no ΔFI) gets ``gated`` (±inf, see the module docstring)."""
    return np.array([gated if r["delta"] is None else r["delta"] for r in rows])


def _auc_ci(fat: list[dict], ctl: list[dict], seed: int, *, complete: bool = False
            ) -> tuple[float, tuple[float, float]]:
    """AUC of ΔFI fatigued vs controls, bootstrap CI over base recordings.

    Primary (preregistration §5.1): a gated fatigued session ranks below every control and a
    gated control above every fatigued session. ``complete``: gated sessions dropped.
    """
    if complete:
        fat = [r for r in fat if r["delta"] is not None]
        ctl = [r for r in ctl if r["delta"] is not None]
    s = np.concatenate([_scores(fat, -np.inf), _scores(ctl, np.inf)])
    y = np.array([1] * len(fat) + [0] * len(ctl))
    base = [r["base"] for r in fat + ctl]
    a = auc(s[y == 1], s[y == 0])
    ci = cluster_bootstrap(lambda i: auc(s[i][y[i] == 1], s[i][y[i] == 0]), base, seed=seed)
    return a, ci


def _fi_stats(rows: list[dict]) -> dict:
    fi = np.concatenate([r["fi_after_ref"] for r in rows]) if rows else np.zeros(0)
    if not fi.size:
        return {"mean": None, "sd": None, "n_windows": 0}
    return {"mean": float(np.mean(fi)), "sd": float(np.std(fi)), "n_windows": int(fi.size)}


def _condition(fat: list[dict], ctl: list[dict], clean: list[dict], thr95: float,
               seed: int) -> dict:
    """Every reported figure for one manipulation level (or the realistic combination)."""
    hit = [r for r in fat if r["alarm"] and not r["alarm_before_t0"]]
    err = np.array([abs(r["onset_active_s"] - r["t0_active_s"]) / 60 for r in hit])
    pelt = [abs(r["pelt_onset_active_s"] - r["t0_active_s"]) / 60 for r in fat
            if r["pelt_onset_active_s"] is not None and r["t0_active_s"] is not None]
    contrib: dict[str, list[float]] = {}
    for r in fat:
        for f, v in r["contributions"].items():
            contrib.setdefault(f, []).append(v)
    top = sorted(((f, float(np.mean(v))) for f, v in contrib.items()), key=lambda kv: -kv[1])
    # Mean contribution (last third) minus that of the clean sessions: what moved, and which way.
    clean_c: dict[str, list[float]] = {}
    for r in clean:
        for f, v in r["contributions"].items():
            clean_c.setdefault(f, []).append(v)
    shift = {f: float(np.mean(v) - np.mean(clean_c.get(f, [0.0]))) for f, v in contrib.items()}
    a, ci = _auc_ci(fat, ctl, seed)
    return {
        "n": len(fat), "gated": sum(r["quality"] != "ok" for r in fat),
        "auc_vs_all_controls": a, "auc_ci95": ci,
        "auc_vs_all_controls_complete_case": _auc_ci(fat, ctl, seed, complete=True)[0],
        "auc_vs_clean": _auc_ci(fat, clean, seed)[0],
        "delta_median_iqr": median_iqr([r["delta"] for r in fat if r["delta"] is not None]),
        "sens_at_95spec": float(np.mean(_scores(fat, -np.inf) > thr95)),
        "detection_rate": len(hit) / len(fat) if fat else float("nan"),
        "alarm_before_t0": sum(r["alarm_before_t0"] for r in fat),
        "onset_error_active_min_median_iqr": median_iqr(err),
        "onset_error_active_min_ci95": cluster_bootstrap(
            lambda i, e=err: float(np.median(e[i])), [r["base"] for r in hit], seed=seed)
        if len(hit) else (float("nan"),) * 2,
        "onset_error_wall_min_median_iqr": median_iqr(
            [abs(r["onset_wall_s"] - r["t0_s"]) / 60 for r in hit]),
        "delay_wall_min_median_iqr": median_iqr([(r["alarm_wall_s"] - r["t0_s"]) / 60
                                                 for r in hit]),
        "pelt_onset_error_active_min_median_iqr": median_iqr(pelt),
        "pelt_found": len(pelt),
        "top_contributions": top[:3],
        "contribution_shift_vs_clean": dict(sorted(shift.items(), key=lambda kv: -kv[1])),
    }


def summarise(rows: list[dict], seed: int) -> dict:
    ctl = [r for r in rows if r["kind"] in CONTROLS]
    clean = [r for r in rows if r["kind"] == "clean"]
    ok = [r for r in ctl if r["quality"] == "ok"]
    hours_ok = sum(r["duration_s"] for r in ok) / 3600
    fa = sum(r["alarm"] for r in ok)
    fat_rows = [r for r in rows if r["t0_s"] is not None]
    pre_h = sum(r["t0_s"] for r in fat_rows if r["quality"] == "ok") / 3600
    pre_fa = sum(r["alarm_before_t0"] for r in fat_rows)
    # ΔFI threshold at 95 % specificity among controls with quality ok (with gated controls as
    # +inf the 95th percentile is +inf as soon as > 5 % are gated, and sensitivity is 0).
    ok_d = [r["delta"] for r in ctl if r["delta"] is not None]
    thr95 = float(np.quantile(ok_d, 0.95, method="higher")) if ok_d else float("nan")
    out: dict = {
        "n_base_sessions": len({r["base"] for r in rows}), "n_runs": len(rows),
        "control_hours_quality_ok": hours_ok,
        "control_hours_gated": sum(r["duration_s"] for r in ctl if r["quality"] != "ok") / 3600,
        "control_false_alarms": int(fa),
        "false_alarms_per_10h": 10 * fa / hours_ok if hours_ok else float("nan"),
        "false_alarms_per_10h_incl_pre_onset": 10 * (fa + pre_fa) / (hours_ok + pre_h)
        if hours_ok + pre_h else float("nan"),
        "ot_fi_after_ref": {"clean": _fi_stats(clean), "all_controls": _fi_stats(ctl)},
        "delta_threshold_95pct_specificity": thr95, "controls": {}, "conditions": [],
    }
    for kind in (*CONTROLS, "clean_6bit"):
        rs = [r for r in rows if r["kind"] == kind]
        if rs:
            out["controls"][kind] = {
                "n": len(rs), "gates": dict(Counter(r["quality"] for r in rs)),
                "alarms_quality_ok": sum(r["alarm"] for r in rs if r["quality"] == "ok"),
                "hours": sum(r["duration_s"] for r in rs) / 3600,
                "delta_median_iqr": median_iqr([r["delta"] for r in rs if r["delta"] is not None]),
                "fi_after_ref": _fi_stats(rs)}
    real = [r for r in fat_rows if r["kind"] == "realistic"]
    if real:
        out["primary_realistic"] = _condition(real, ctl, clean, thr95, seed)
    keys = sorted({(r["kind"], r["level"], r["tau_s"] if r["kind"].startswith("realistic")
                    else None) for r in fat_rows}, key=lambda k: (k[0], k[1] or 0, k[2] or 0))
    for kind, level, tau in keys:
        fat = [r for r in fat_rows if r["kind"] == kind and r["level"] == level
               and (tau is None or r["tau_s"] == tau)]
        ref = [r for r in rows if r["kind"] == "clean_6bit"] if kind.endswith("_6bit") else ctl
        row = {"kind": kind, "level": level, "tau_s": tau}
        row.update(_condition(fat, ref, clean, thr95, seed))
        out["conditions"].append(row)
    dose = {}
    for m in runs.MANIPULATIONS:
        pairs = [(0.0, r["delta"]) for r in clean] + [(r["level"], r["delta"]) for r in fat_rows
                                                     if r["kind"] == m]
        lv = np.array([p[0] for p in pairs if p[1] is not None])
        sc = np.array([p[1] for p in pairs if p[1] is not None])
        if len(np.unique(lv)) > 1 and len(np.unique(sc)) > 1:
            dose[m] = float(stats.spearmanr(lv, sc).statistic)
    out["dose_response_spearman_complete_case"] = dose
    return out


def _commit() -> str:
    """The repository's HEAD (and whether analysis/ differs from it), for the record."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "analysis"], cwd=root, text=True,
                               capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (analysis/ modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", choices=("test", "tune"), default="test")
    ap.add_argument("--data", help="folder holding hmp-adl/ (default ../shared/data)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--limit", type=int, help="only the first N base sessions (smoke runs)")
    ap.add_argument("--json", type=Path, help="write every run's row and the summary here")
    ap.add_argument("--summarise", type=Path, metavar="JSON",
                    help="recompute the summary from the rows of an earlier --json output")
    args = ap.parse_args(argv)
    if args.summarise:
        saved = json.loads(args.summarise.read_text())
        summary = summarise(saved["rows"], args.seed)
        for key in ("runtime_s", "workers", "cpu_count", "params", "commit"):
            summary[key] = saved["summary"].get(key)
        print(json.dumps(summary, indent=1, default=float))
        if args.json:
            args.json.write_text(json.dumps({"summary": summary, "rows": saved["rows"]},
                                            default=float))
        return 0
    root = Path(args.data) if args.data else hmp.default_data_dir()
    if not (root / "hmp-adl").is_dir():
        print(f"error: {root / 'hmp-adl'}: HMP data folder not found", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    _init(args.pool, args.data)
    n_base = len(_SESSIONS) if args.limit is None else min(args.limit, len(_SESSIONS))
    ss = np.random.SeedSequence(args.seed)
    conds = runs.conditions()
    seeds = ss.generate_state(n_base * len(conds))
    jobs = [(b, kind, level, tau, int(seeds[b * len(conds) + j]))
            for b in range(n_base) for j, (kind, level, tau) in enumerate(conds)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers, initializer=_init,
                                 initargs=(args.pool, args.data)) as ex:
            rows = list(ex.map(_job, jobs, chunksize=4))
    else:
        rows = [_job(j) for j in jobs]
    summary = summarise(rows, args.seed)
    summary["onset_replay_mismatches"] = sum(not r["onset_replay_ok"] for r in rows)
    summary["runtime_s"] = time.perf_counter() - t_start
    summary["workers"] = args.workers
    summary["params"] = dataclasses.asdict(DEFAULT_PARAMS)
    summary["commit"] = _commit()
    summary["cpu_count"] = os.cpu_count()
    print(json.dumps(summary, indent=1, default=float))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
