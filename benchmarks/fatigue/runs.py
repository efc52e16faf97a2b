"""One validation run: a base pseudo-session, a condition (manipulation or control), the index.

Conditions are named ``"<kind>:<level>"``; ``MANIPULATIONS`` lists the levels of methods.md
§2.6 A. τ for a single manipulation is drawn per run from {0 (step), 5, 10, 20} min; the
realistic combination is run at every τ. t0 ~ U(30 %, 70 %) of the base session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.fatigue import controls, inject
from benchmarks.fatigue.hmp import Session, quantise

T0_NS = 1_599_999_990 * 1_000_000_000  # UTC ns, a multiple of 30 s (window grid)
TAUS_S = (0.0, 300.0, 600.0, 1200.0)

MANIPULATIONS: dict[str, tuple[float, ...]] = {
    "M1_amplitude": (0.05, 0.10, 0.20, 0.30),  # α
    "M2_tempo": (0.05, 0.10, 0.15),  # β
    "M3_pauses": (0.5, 1.0, 2.0),  # γ
    "M4_variability": (0.05, 0.10, 0.20),  # σ
    "M5_tremor": (0.002, 0.005, 0.010),  # A, g
    "M6_smoothness": (0.005, 0.010, 0.020),  # sub-movement peak, g
}


def conditions() -> list[tuple[str, float | None, float | None]]:
    """(kind, level, τ) of every run on one base session (τ None: drawn per run)."""
    out: list[tuple[str, float | None, float | None]] = [(k, None, None) for k in controls.CONTROL_KINDS]
    out += [(m, lv, None) for m, levels in MANIPULATIONS.items() for lv in levels]
    out += [("realistic", None, tau) for tau in TAUS_S]
    out += [("clean_6bit", None, None), ("realistic_6bit", None, 600.0)]
    return out


@dataclass
class Case:
    """A manipulated or control session ready for the index."""

    kind: str
    level: float | None
    tau_s: float | None
    result: inject.Injected


def make_case(sess: Session, kind: str, level: float | None, tau_s: float | None,
              rng: np.random.Generator, other: Session | None = None) -> Case:
    """Apply condition ``kind`` (a control kind, a manipulation, or realistic[_6bit])."""
    a, fs = sess.accel_g, sess.fs_hz
    if kind in controls.CONTROL_KINDS:
        res = controls.random_control(kind, a, fs, rng,
                                      other_g=None if other is None else other.accel_g)
        return Case(kind, None, None, res)
    if kind == "clean_6bit":
        n = len(a)
        return Case(kind, None, None, inject.Injected(quantise(a), np.arange(n) / fs, fs))
    t0 = float(rng.uniform(0.3, 0.7) * sess.duration_s)
    tau = float(rng.choice(TAUS_S)) if tau_s is None else tau_s
    quiet = inject.quiet_hold_mask(a, fs, sess.rest)
    if kind in ("realistic", "realistic_6bit"):
        res = inject.realistic(a, fs, t0_s=t0, tau_s=tau, rng=rng, quiet=quiet)
        if kind == "realistic_6bit":
            res.accel_g = quantise(res.accel_g)
        return Case(kind, None, tau, res)
    kw = {"t0_s": t0, "tau_s": tau}
    if kind == "M1_amplitude":
        res = inject.amplitude_decay(a, fs, alpha=level, **kw)
    elif kind == "M2_tempo":
        res = inject.tempo_slowing(a, fs, beta=level, **kw)
    elif kind == "M3_pauses":
        res = inject.pauses(a, fs, gamma=level, rng=rng, **kw)
    elif kind == "M4_variability":
        res = inject.variability(a, fs, sigma=level, rng=rng, **kw)
    elif kind == "M5_tremor":
        res = inject.tremor(a, fs, amp_g=level, rng=rng, quiet=quiet, **kw)
    elif kind == "M6_smoothness":
        active = inject.mad_1s(a, fs) > inject.ACTIVE_MAD_G
        res = inject.smoothness(a, fs, amp_g=level, rng=rng, active=active & ~sess.rest, **kw)
    else:
        raise ValueError(f"unknown condition kind {kind!r}")
    return Case(kind, level, tau, res)


def timing(series: dict, t0_s: float | None, k: float, h: float) -> dict:
    """Alarm and onset in wall time (s from the session start) from ``session_fatigue``'s series.

    Replays the index's CUSUM (k, h) on the chain of non-overlapping scored windows (the parity
    of the first scored window, as `analysis.fatigue` does) to time the alarm: it is raised at
    the end of the alarming window. The onset is the start of the first window of the alarming
    excursion. Both are None without an alarm.
    """
    from analysis.fatigue_stats import cusum_upper

    start = np.asarray(series["start_ns"], dtype=np.int64)
    fi = np.array([np.nan if v is None else v for v in series["fi_within"]], float)
    scored = np.isfinite(fi)
    out: dict = {"alarm_wall_s": None, "onset_wall_s": None, "alarm_before_t0": False}
    if not scored.any():
        return out
    first = int(np.flatnonzero(scored)[0])
    parity = (start // 30_000_000_000) % 2 == (start[first] // 30_000_000_000) % 2
    chain = np.flatnonzero(scored & parity)
    _, alarm, onset = cusum_upper(fi[chain], k=k, h=h)
    if alarm is None:
        return out
    wall = (start - T0_NS) / 1e9
    out["alarm_wall_s"] = float(wall[chain[alarm]] + 60.0)
    out["onset_wall_s"] = float(wall[chain[min(onset, alarm)]])
    out["alarm_before_t0"] = t0_s is not None and out["alarm_wall_s"] < t0_s
    return out
