"""ActiGraph counts benchmark: `analysis.counts.actigraph_counts` vs `agcounts` on the same data.

Run on demand (not part of the test suite). `agcounts` (GPL-3.0) is never a project
dependency: install it for the benchmark only, outside the project, e.g.

    python -m pip install --target /tmp/agcounts-bench --no-deps agcounts==0.2.6
    PYTHONPATH=/tmp/agcounts-bench python benchmarks/bench_counts.py

Data (real wrist movement, tiled): the 20.7 h, 30 Hz ActiGraph Link recording of
`../shared/data/agcounts_R_example_gt3x/calibration_raw_30hz_mg_int16.npz` (MIT), tiled to
`--days` days; for 100 Hz the same recording resampled 30 → 100 Hz (`resample_poly`) and
quantised to 1/256 g like a ±8 g ActiGraph. Without ../shared/data the 3-min, 100 Hz fixture
`fixtures/recordings/actigraph_link_example_100hz.npz` is tiled instead.

agcounts' 100 Hz path runs a Python loop over every 300 Hz sample (about a minute per
day of data), so at 100 Hz it gets the first `--agcounts-hours-100hz` hours; the ratio
compares both on exactly those hours, and our time for the whole week is reported too.
Each timing is the best of `--repeats` runs, ours and agcounts' interleaved so that other load
on the machine hits both alike. The counts of both are compared epoch by epoch.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import signal

from analysis.counts import actigraph_counts

ROOT = Path(__file__).resolve().parents[1]
SHARED_NPZ = (
    ROOT.parent
    / "shared"
    / "data"
    / "agcounts_R_example_gt3x"
    / "calibration_raw_30hz_mg_int16.npz"
)
FIXTURE_NPZ = ROOT / "fixtures" / "recordings" / "actigraph_link_example_100hz.npz"
LSB_PER_G = 256.0  # ActiGraph ±8 g: 256 LSB per g


def _load_base() -> tuple[dict[int, np.ndarray], str]:
    """One stretch of real data per rate (30 and 100 Hz), in g, float64."""
    if SHARED_NPZ.is_file():
        x30 = np.load(SHARED_NPZ)["xyz_mg"] / 1000.0
        x100 = np.round(signal.resample_poly(x30, 10, 3, axis=0) * LSB_PER_G) / LSB_PER_G
        return {30: x30, 100: x100}, "20.7 h real wrist recording (agcounts_R_example_gt3x), tiled"
    rec = np.load(FIXTURE_NPZ)
    x100 = rec["xyz_lsb"] / float(rec["lsb_per_g"])
    x30 = np.round(signal.resample_poly(x100, 3, 10, axis=0), 3)
    return {30: x30, 100: x100}, "3-min real recording (fixtures/recordings), tiled"


def _tile(x: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.tile(x, (reps, 1))[:n])


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    times = dict.fromkeys(fns, float("inf"))
    outs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, outs[name] = _best(fn, 1)
            times[name] = min(times[name], t)
    return times, outs


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0, help="data length for our runs")
    parser.add_argument("--agcounts-hours-100hz", type=float, default=2.0)
    parser.add_argument("--epoch-s", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        from importlib.metadata import version

        import agcounts  # type: ignore[import-not-found]  # noqa: F401
        from agcounts.extract import get_counts  # type: ignore[import-not-found]

        ag_version = version("agcounts")
    except ImportError:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        print("agcounts is not importable: install it as shown above.", file=sys.stderr)
        return 2

    base, origin = _load_base()
    load0 = os.getloadavg()
    rows = []
    for fs in (30, 100):
        week = _tile(base[fs], int(args.days * 86_400 * fs))
        week32 = week.astype(np.float32)  # the stored precision of SampleBlock (architecture.md)
        ag_n = len(week) if fs == 30 else int(args.agcounts_hours_100hz * 3600 * fs)
        same = week[:ag_n]
        times, outs = _interleaved(
            {
                "agcounts": lambda x=same, fs=fs: get_counts(x, fs, args.epoch_s),
                "ours": lambda x=same, fs=fs: actigraph_counts(x, fs_hz=fs, epoch_s=args.epoch_s),
                "ours2": lambda x=same, fs=fs: actigraph_counts(
                    x, fs_hz=fs, epoch_s=args.epoch_s, workers=2
                ),
            },
            args.repeats,
        )
        n_ep = min(len(outs["agcounts"]), len(outs["ours"]))
        differ = int((outs["agcounts"][:n_ep] != outs["ours"][:n_ep]).any(axis=1).sum())
        max_diff = int(np.abs(outs["agcounts"][:n_ep] - outs["ours"][:n_ep]).max())
        t_week, _ = _best(
            lambda x=week32, fs=fs: actigraph_counts(x, fs_hz=fs, epoch_s=args.epoch_s), 2
        )
        t_week2, _ = _best(
            lambda x=week32, fs=fs: actigraph_counts(x, fs_hz=fs, epoch_s=args.epoch_s, workers=2),
            2,
        )
        rows.append(
            f"| {fs} Hz | {ag_n / fs / 3600:.1f} h ({ag_n:,} samples) | {times['agcounts']:.2f} s"
            f" | {times['ours']:.3f} s | **{times['agcounts'] / times['ours']:.0f}×**"
            f" | {times['ours2']:.3f} s ({times['agcounts'] / times['ours2']:.0f}×)"
            f" | {differ} of {n_ep} (max {max_diff})"
            f" | {t_week:.2f} s / {t_week2:.2f} s ({args.days:g} d, {len(week):,} samples, float32) |"
        )
        print(rows[-1], flush=True)
    load1 = os.getloadavg()
    print()
    print(f"Machine: {_machine()}; Python {platform.python_version()}, NumPy {np.__version__},")
    print(f"SciPy {scipy.__version__}, agcounts {ag_version}. Data: {origin}.")
    print(f"{args.epoch_s}-s epochs; best of {args.repeats} interleaved runs. Load average")
    print(f"(1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end.")
    print()
    print(
        "| rate | same data for both | agcounts | ours, 1 thread | speed-up | ours, 2 threads"
        " | epochs differing | ours on the whole week, 1 / 2 threads |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
