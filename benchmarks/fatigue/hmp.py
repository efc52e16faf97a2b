"""HMP wrist ADL trials (32 Hz, 6-bit) and their assembly into 20–40-min same-task pseudo-sessions.

The data (`../shared/data/hmp-adl/`, research use only, no redistribution) is read in place.
Decoding follows hmp-adl/MANUAL.txt §4.2: ``g = -1.5 + coded / 63 * 3`` (range ±1.5 g, 6 bit,
≈ 47.6 mg per step). Axes: x towards the hand, y to the left, z out of the back of the hand.

Pseudo-sessions (methods.md §2.6 A, base material option 2): trials of one task (or of an
alternating pair, e.g. stand up / sit down) are concatenated in a random order, drawn without
replacement until the pool is exhausted and then reshuffled, separated by short rests. A rest is
the previous trial's final gravity vector plus white noise of ``STILL_NOISE_G`` SD, with a 1-s
raised-cosine blend to the next trial's initial gravity vector (a still wrist being repositioned).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FS_HZ = 32.0  # MANUAL.txt §3: output data rate 32 Hz
CODE_MAX = 63  # MANUAL.txt §4.2: coded 0..63 maps to -1.5 g..+1.5 g
RANGE_G = 1.5
STEP_G = 2 * RANGE_G / CODE_MAX  # one code step ≈ 0.0476 g
# methods.md §2.6 A: still noise of a device is 2–5 mg; the HMP device's cannot be measured (its
# 48-mg steps hide it), so the middle of that range.
STILL_NOISE_G = 0.003
# Rests between trials: lognormal, median 6 s, sigma_ln 0.5, clipped to 2–20 s, i.e. a short
# pause to reset (pick up the glass again, turn at the end of the corridor). Documented choice.
REST_MEDIAN_S = 6.0
REST_SIGMA_LN = 0.5
REST_CLIP_S = (2.0, 20.0)
BLEND_S = 1.0

# Task groups for pseudo-sessions: alternating pairs make repeatable sequences (sit-to-stand,
# stairs up and down, lie down and get up) instead of 100 copies of one half-movement.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "brush_teeth": ("Brush_teeth",),
    "comb_hair": ("Comb_hair",),
    "drink_glass": ("Drink_glass",),
    "pour_water": ("Pour_water",),
    "eat_meat": ("Eat_meat",),
    "eat_soup": ("Eat_soup",),
    "use_telephone": ("Use_telephone",),
    "walk": ("Walk",),
    "stairs": ("Climb_stairs", "Descend_stairs"),
    "sit_stand": ("Standup_chair", "Sitdown_chair"),
    "bed": ("Liedown_bed", "Getup_bed"),
}

# methods.md §2.6 rule 4 (tune on one pool, test on another), split by volunteer. The tune pool
# is used only to develop and check this harness (never to set the index's parameters, which are
# preregistered in docs/fatigue-preregistration.md); every reported figure comes from the test
# pool. f1 holds most of the material (the only volunteer with eating sessions), so it is a test
# volunteer; the tune pool is the four next-richest volunteers.
TUNE_VOLUNTEERS = frozenset({"m1", "m2", "f2", "f4"})

_NAME = re.compile(r"Accelerometer-(\d{4}(?:-\d\d){5})-([a-z_]+)-([mf]\d+)\.txt$")


def default_data_dir() -> Path:
    """``../shared/data`` relative to the repository root."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass(frozen=True)
class Trial:
    """One HMP recording: decoded acceleration in g, shape (n, 3), at 32 Hz."""

    activity: str
    volunteer: str
    start: str
    accel_g: np.ndarray = field(repr=False)


def decode(coded: np.ndarray) -> np.ndarray:
    """Coded 0..63 values to g (MANUAL.txt §4.2); rejects codes outside 0..63."""
    coded = np.asarray(coded)
    if coded.size and (coded.min() < 0 or coded.max() > CODE_MAX):
        raise ValueError(f"coded values must be in 0..{CODE_MAX}, got {coded.min()}..{coded.max()}")
    return -RANGE_G + coded.astype(np.float64) / CODE_MAX * (2 * RANGE_G)


def quantise(accel_g: np.ndarray) -> np.ndarray:
    """Round to the HMP device's 6-bit grid (clipping to ±1.5 g), as the sensor would have."""
    codes = np.clip(np.round((accel_g + RANGE_G) / STEP_G), 0, CODE_MAX)
    return -RANGE_G + codes * STEP_G


def load_trial(path: Path) -> Trial:
    """Read one HMP file; a malformed line raises ValueError naming the file and line."""
    m = _NAME.search(path.name)
    if m is None:
        raise ValueError(f"{path}: not an HMP file name (Accelerometer-START-activity-volunteer.txt)")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{path}:{lineno}: expected three coded integers, got {line!r}")
        rows.append([int(p) for p in parts])
    if not rows:
        raise ValueError(f"{path}: no samples")
    try:
        accel = decode(np.array(rows))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return Trial(m.group(2), m.group(3), m.group(1), accel)


def load_hmp(data_dir: Path | None = None) -> list[Trial]:
    """All trials of the 14 activity folders (the *_MODEL folders are not in this copy)."""
    root = (data_dir or default_data_dir()) / "hmp-adl"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: HMP data folder not found")
    folders = {name for group in TASK_GROUPS.values() for name in group}
    trials = []
    for folder in sorted(folders):
        for path in sorted((root / folder).glob("Accelerometer-*.txt")):
            trials.append(load_trial(path))
    return trials


@dataclass
class Session:
    """A pseudo-session: acceleration (n, 3) in g plus provenance and a per-sample rest mask."""

    task: str
    volunteers: tuple[str, ...]
    seed: int
    accel_g: np.ndarray = field(repr=False)
    rest: np.ndarray = field(repr=False)  # True on samples of inserted rests
    fs_hz: float = FS_HZ
    n_trials: int = 0

    @property
    def duration_s(self) -> float:
        return len(self.accel_g) / self.fs_hz


def _edge_gravity(x: np.ndarray, *, head: bool, n: int = 8) -> np.ndarray:
    seg = x[:n] if head else x[-n:]
    return seg.mean(axis=0)


def make_rest(
    g_from: np.ndarray, g_to: np.ndarray, duration_s: float, rng: np.random.Generator,
    fs_hz: float = FS_HZ, noise_g: float = STILL_NOISE_G,
) -> np.ndarray:
    """A still segment: hold ``g_from``, blend to ``g_to`` over the last second, plus noise."""
    n = max(round(duration_s * fs_hz), 1)
    nb = min(round(BLEND_S * fs_hz), n)
    w = np.zeros(n)
    w[n - nb:] = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, nb + 1) / nb)
    g = g_from[None, :] * (1 - w[:, None]) + g_to[None, :] * w[:, None]
    return g + rng.normal(0.0, noise_g, (n, 3))


def assemble(
    pools: list[list[Trial]], duration_s: float, rng: np.random.Generator, *, task: str, seed: int,
) -> Session:
    """Concatenate trials (alternating over ``pools``) with rests until ``duration_s`` is reached."""
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if not pools or any(not p for p in pools):
        raise ValueError("assemble needs at least one trial in every pool")
    decks: list[list[Trial]] = [[] for _ in pools]
    parts, rests, total, k, n_trials = [], [], 0, 0, 0
    vols: set[str] = set()
    prev_end = None
    target = round(duration_s * FS_HZ)
    while total < target:
        i = k % len(pools)
        k += 1
        if not decks[i]:
            decks[i] = [pools[i][j] for j in rng.permutation(len(pools[i]))]
        trial = decks[i].pop()
        vols.add(trial.volunteer)
        if prev_end is not None:
            dur = float(np.clip(REST_MEDIAN_S * np.exp(rng.normal(0, REST_SIGMA_LN)), *REST_CLIP_S))
            rest = make_rest(prev_end, _edge_gravity(trial.accel_g, head=True), dur, rng)
            parts.append(rest)
            rests.append(np.ones(len(rest), bool))
            total += len(rest)
        parts.append(trial.accel_g)
        rests.append(np.zeros(len(trial.accel_g), bool))
        total += len(trial.accel_g)
        n_trials += 1
        prev_end = _edge_gravity(trial.accel_g, head=False)
    return Session(task, tuple(sorted(vols)), seed, np.concatenate(parts), np.concatenate(rests),
                   n_trials=n_trials)


def build_sessions(
    trials: list[Trial], *, pool: str, n_per_group: int = 2, min_unique_s: float = 150.0,
    duration_range_s: tuple[float, float] = (1200.0, 2400.0), seed: int = 6,
) -> list[Session]:
    """Pseudo-sessions for the ``"test"`` or ``"tune"`` volunteer pool.

    For each task group: one group of sessions per volunteer holding at least ``min_unique_s``
    of distinct material for it (same-subject sessions); the pool's remaining volunteers of that
    task are merged into one mixed group if together they reach ``min_unique_s``. Each group
    yields ``n_per_group`` sessions of a duration drawn from ``duration_range_s``.
    """
    if pool not in ("test", "tune"):
        raise ValueError(f"pool must be 'test' or 'tune', got {pool!r}")
    keep = [t for t in trials if (t.volunteer in TUNE_VOLUNTEERS) == (pool == "tune")]
    rng = np.random.default_rng(seed)
    sessions = []
    for task, folders in TASK_GROUPS.items():
        lower = [f.lower() for f in folders]
        by_vol: dict[str, list[list[Trial]]] = {}
        for t in keep:
            if t.activity in lower:
                by_vol.setdefault(t.volunteer, [[] for _ in folders])[lower.index(t.activity)].append(t)
        groups, leftover = [], [[] for _ in folders]
        for vol in sorted(by_vol):
            pools = by_vol[vol]
            secs = sum(len(t.accel_g) for p in pools for t in p) / FS_HZ
            if secs >= min_unique_s and all(pools):
                groups.append(pools)
            else:
                for j, p in enumerate(pools):
                    leftover[j].extend(p)
        if all(leftover) and sum(len(t.accel_g) for p in leftover for t in p) / FS_HZ >= min_unique_s:
            groups.append(leftover)
        for pools in groups:
            for _ in range(n_per_group):
                s = int(rng.integers(2**31))
                r = np.random.default_rng(s)
                dur = float(r.uniform(*duration_range_s))
                sessions.append(assemble(pools, dur, r, task=task, seed=s))
    return sessions
