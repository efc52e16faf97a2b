"""The table of per-window fatigue features: `FatigueWindows` (contract, architecture.md issue 6).

One row per 60-s analysis window starting at a UTC multiple of 30 s (methods.md §2.5 step 1).
Feature columns follow methods.md §2.3 in the order of `FEATURES`; docs/fatigue.md defines each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FEATURES",
    "FEATURES_VERSION",
    "PAD_S",
    "SIGNATURE",
    "STEP_S",
    "WINDOW_S",
    "FatigueWindows",
]

#: Analysis window and step, s (methods.md §2.5 step 1: 60-s windows with a 30-s step).
WINDOW_S = 60
STEP_S = 30
#: Filter padding on each side of a window, s: a window's row depends only on the samples in
#: [start − PAD_S, start + WINDOW_S + PAD_S) (architecture.md, issue 6 contract). 15 s is > 20
#: time constants of the 0.25-Hz order-4 Butterworth used for gravity, so edge transients of the
#: zero-phase filter have decayed inside the window.
PAD_S = 15

#: Version of the window features, stored with every window the service keeps
#: (`api.models.FatigueWindowRow.features_version`); rows of another version are recomputed from
#: the stored samples before they are scored (docs/fatigue-api.md). 1 = the pre-registered
#: features (docs/fatigue-preregistration.md), 2 = pre-registration deviation 2 ("OT-FI v2"),
#: 3 = deviation 3 (activity from the movement-band magnitude, "OT-FI v3").
#: Bump it on any change that alters a window's row (a feature, a column, a threshold).
FEATURES_VERSION: int = 3

#: Feature columns, methods.md §2.3 items 1–9 (units in docs/fatigue.md).
FEATURES: tuple[str, ...] = ("int", "duty", "freq", "reg", "cv", "jerk", "sampen", "trem", "astp")
#: Task-signature columns (methods.md §2.5 step 3).
SIGNATURE: tuple[str, ...] = ("log_int", "freq_hz", "elev_deg", "gx", "gy", "gz")

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FatigueWindows:
    """Per-window features of one or more recordings (rows sorted by `start_ns`, unique).

    Attributes
    ----------
    start_ns : ndarray of int64, shape (n,)
        UTC ns of each window's start (a multiple of 30 s).
    worn_s, active_s : ndarray of float64, shape (n,)
        Worn and active 1-s epochs in the window, s.
    analysable : ndarray of bool, shape (n,)
        Wear ≥ 90 % (54 s) and active ≥ 20 s (§2.5 step 1).
    features : ndarray of float64, shape (n, 9)
        Columns `FEATURES`; read one with ``fw["freq"]``. NaN when undefined.
    signature : ndarray of float64, shape (n, 6)
        Task signature `SIGNATURE`: ln(1 + int mg), tempo (Hz), forearm elevation (deg, angle of
        gravity to the device x axis), unit gravity direction (x, y, z) in device axes.
    transitions : ndarray of float64, shape (n,)
        Active→rest transitions (an active run followed by a rest pause ≥ 5 s) that start in the
        window; `astp` = transitions / active minutes.
    rest_break : ndarray of bool, shape (n,)
        The window overlaps a worn inactive run ≥ 30 s (a rest break, §2.3).
    trem46 : ndarray of float64, shape (n,)
        Relative 4–6 Hz power in quiet holds (secondary tremor band, §2.3 item 8).
    """

    start_ns: NDArray[np.int64]
    worn_s: NDArray[np.float64]
    active_s: NDArray[np.float64]
    analysable: NDArray[np.bool_]
    features: NDArray[np.float64]
    signature: NDArray[np.float64]
    transitions: NDArray[np.float64]
    rest_break: NDArray[np.bool_]
    trem46: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.start_ns.shape[0]
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr.shape[0] != n:
                raise ValueError(f"FatigueWindows.{f.name} has {arr.shape[0]} rows, expected {n}")
        if self.features.shape[1:] != (len(FEATURES),):
            raise ValueError(f"features must have shape (n, {len(FEATURES)})")
        if self.signature.shape[1:] != (len(SIGNATURE),):
            raise ValueError(f"signature must have shape (n, {len(SIGNATURE)})")

    def __len__(self) -> int:
        return int(self.start_ns.shape[0])

    def __getitem__(self, name: str) -> NDArray[Any]:
        """A column by name: a feature of `FEATURES` or any attribute."""
        if name in FEATURES:
            return self.features[:, FEATURES.index(name)]
        if name in {f.name for f in fields(self)}:
            return getattr(self, name)  # type: ignore[no-any-return]
        raise KeyError(f"no column {name!r} in FatigueWindows")

    def take(self, idx: Any) -> FatigueWindows:
        """Rows `idx` (a boolean mask or integer indices), as a new table."""
        return FatigueWindows(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def select(self, start_ns: int, end_ns: int) -> FatigueWindows:
        """Windows lying entirely in [start_ns, end_ns) (UTC ns), e.g. one session."""
        end = self.start_ns + WINDOW_S * _NS_PER_S
        return self.take((self.start_ns >= start_ns) & (end <= end_ns))

    @classmethod
    def empty(cls) -> FatigueWindows:
        """A table without rows."""
        return cls(
            start_ns=np.zeros(0, np.int64),
            worn_s=np.zeros(0),
            active_s=np.zeros(0),
            analysable=np.zeros(0, bool),
            features=np.zeros((0, len(FEATURES))),
            signature=np.zeros((0, len(SIGNATURE))),
            transitions=np.zeros(0),
            rest_break=np.zeros(0, bool),
            trem46=np.zeros(0),
        )

    @classmethod
    def concat(cls, parts: Sequence[FatigueWindows]) -> FatigueWindows:
        """Rows of all `parts`, sorted by start; for a repeated start the last part's row wins."""
        if not parts:
            return cls.empty()
        cols = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        start = cols["start_ns"]
        # Keep the last occurrence of each start (a recomputed window replaces the old one).
        rev = start[::-1]
        _, first_in_rev = np.unique(rev, return_index=True)
        keep = np.sort(start.size - 1 - first_in_rev)
        order = keep[np.argsort(start[keep], kind="stable")]
        return cls(**{k: v[order] for k, v in cols.items()})

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns as JSON-ready lists (NaN as None); inverse of `from_dict`."""
        out: dict[str, list[Any]] = {}
        for f in fields(self):
            arr = getattr(self, f.name)
            if f.name == "features":
                for j, name in enumerate(FEATURES):
                    out[name] = _to_list(arr[:, j])
            elif f.name == "signature":
                out["signature"] = [_to_list(row) for row in arr]
            else:
                out[f.name] = _to_list(arr)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FatigueWindows:
        """Rebuild a table from `to_dict` output."""
        n = len(d["start_ns"])

        def col(name: str) -> NDArray[np.float64]:
            return np.array([np.nan if v is None else v for v in d[name]], dtype=np.float64)

        sig = np.array(
            [[np.nan if v is None else v for v in row] for row in d["signature"]], dtype=np.float64
        ).reshape(n, len(SIGNATURE))
        return cls(
            start_ns=np.asarray(d["start_ns"], dtype=np.int64),
            worn_s=col("worn_s"),
            active_s=col("active_s"),
            analysable=np.asarray(d["analysable"], dtype=bool),
            features=np.stack([col(k) for k in FEATURES], axis=1).reshape(n, len(FEATURES)),
            signature=sig,
            transitions=col("transitions"),
            rest_break=np.asarray(d["rest_break"], dtype=bool),
            trem46=col("trem46"),
        )


def _to_list(arr: NDArray[Any]) -> list[Any]:
    if arr.dtype.kind == "f":
        return [None if not np.isfinite(v) else float(v) for v in arr]
    return arr.tolist()  # type: ignore[no-any-return]
