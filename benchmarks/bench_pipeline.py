"""Benchmark: `otmon analyze` on a week of 100 Hz `.npy` data vs a bare NumPy/SciPy pass.

Run on demand, never in the test suite::

    python benchmarks/bench_pipeline.py [--days 7] [--fs 100] [--dtype float32] [--repeat 3]

Generates a realistic-ish wrist recording (day/night rhythm, posture changes, walking
bouts, off-wrist periods, sensor noise, quantised to 1/256 g like an ActiGraph/Axivity)
into ``/tmp`` (never committed), then times, each as a whole child process:

* ``baseline``: load the whole file (``np.load``, to float64), the vector magnitude, ENMO
  and MAD per 5 s, and one 4th-order Butterworth band-pass (0.2–15 Hz, GGIR's filter
  defaults, methods.md §1.2) over the vector magnitude with ``sosfilt`` — the simplest
  honest "NumPy/SciPy over the same file". Two variants differ only in the norm:
  ``rowsum`` = ``np.sqrt((a * a).sum(axis=1))`` (the textbook idiom, slow in NumPy because
  it reduces rows of 3) and ``columns`` = ``np.sqrt(x*x + y*y + z*z)`` (as
  `analysis.metrics` does);
* ``otmon analyze FILE.npy --fs 100 --start ... --json``: the full pipeline (5-s epoch
  table, days, calibration QC on 72 h, 1-s ENMO grid, sessions, personal peak).

Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``. Runs are interleaved; best of
``--repeat`` is reported. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
START = "2024-03-04T00:00:00Z"  # a Monday, UTC midnight
#: Samples generated per step; bounds the generator's memory (~1 h at 100 Hz).
_GEN_ROWS = 360_000


def generate(path: Path, *, days: float, fs_hz: float, dtype: str, seed: int = 7) -> Path:
    """Write a synthetic wrist recording (n, 3) in g to `path` as `.npy`, hour by hour."""
    n = round(days * 86_400 * fs_hz)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(n, 3))
    rng = np.random.default_rng(seed)
    direction = np.array([0.0, 0.0, 1.0])
    for r0 in range(0, n, _GEN_ROWS):
        r1 = min(n, r0 + _GEN_ROWS)
        t_s = np.arange(r0, r1) / fs_hz
        hour = (t_s / 3600.0) % 24.0
        m = r1 - r0
        # Posture: a new gravity direction every ~2–20 min (night: every ~30 min), held.
        acc = np.empty((m, 3))
        i = 0
        while i < m:
            night = hour[i] < 7.0 or hour[i] >= 23.0
            hold = int(rng.uniform(1200, 3600) if night else rng.uniform(120, 1200)) * int(fs_hz)
            j = min(m, i + hold)
            if rng.random() < 0.7:
                direction = rng.normal(size=3)
                direction /= np.linalg.norm(direction)
            acc[i:j] = direction
            if not night and rng.random() < 0.35:  # walking or a task: ~2 Hz, 0.1–0.6 g
                amp = rng.uniform(0.1, 0.6)
                f = rng.uniform(1.5, 2.3)
                tt = t_s[i:j]
                acc[i:j, 0] += amp * np.sin(2 * np.pi * f * tt)
                acc[i:j, 1] += 0.5 * amp * np.sin(2 * np.pi * 2 * f * tt + 1.0)
                acc[i:j, 2] += 0.7 * amp * np.sin(2 * np.pi * f * tt + 2.0)
            elif not night and rng.random() < 0.05:  # off wrist: flat on a table
                acc[i:j] = (0.0, 0.0, 1.0)
            i = j
        acc += rng.normal(scale=0.004, size=acc.shape)  # sensor noise ~4 mg
        out[r0:r1] = np.round(acc * 256.0) / 256.0
    out.flush()
    del out
    return path


_BASELINE = """
import sys, numpy as np, scipy.signal as ss
path, fs, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
a = np.load(path).astype(np.float64)
if mode == "rowsum":  # the textbook idiom
    en = np.sqrt((a * a).sum(axis=1))
else:  # "columns": the same norm, column by column (what analysis.metrics does)
    x, y, z = a[:, 0], a[:, 1], a[:, 2]
    en = np.sqrt(x * x + y * y + z * z)
del a
per = int(5 * fs)
k = en.size // per
e = en[: k * per].reshape(k, per)
enmo = np.maximum(e - 1.0, 0.0).mean(axis=1)
mad = np.abs(e - e.mean(axis=1, keepdims=True)).mean(axis=1)
sos = ss.butter(4, [0.2, 15.0], btype="bandpass", fs=fs, output="sos")
bp = ss.sosfilt(sos, en)
print(float(enmo.sum()), float(mad.sum()), float(np.abs(bp).sum()))
"""


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time (s), peak RSS (MiB) and stdout of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out.decode()


def bench(days: float, fs_hz: float, dtype: str, repeat: int, keep: bool) -> str:
    """Generate (or reuse) one file, run the three children interleaved; one Markdown row."""
    path = Path(f"/tmp/otmon_bench_{days:g}d_{fs_hz:g}hz_{dtype}.npy")
    if not (keep and path.exists()):
        t0 = time.perf_counter()
        generate(path, days=days, fs_hz=fs_hz, dtype=dtype)
        print(
            f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    py = sys.executable
    cmds = {
        "rowsum": [py, "-c", _BASELINE, str(path), str(fs_hz), "rowsum"],
        "columns": [py, "-c", _BASELINE, str(path), str(fs_hz), "columns"],
        "analyze": [
            py,
            "-m",
            "otmon",
            "analyze",
            str(path),
            "--fs",
            str(fs_hz),
            "--start",
            START,
            "--json",
        ],
    }
    run_child(cmds["columns"])  # warm the page cache: no child pays for the first disk read
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    report = None
    for _ in range(repeat):
        for name, cmd in cmds.items():
            wall, rss, out = run_child(cmd)
            runs[name].append((wall, rss))
            if name == "analyze":
                report = json.loads(out)
        print(
            f"{days:g} d: "
            + " | ".join(f"{k} {v[-1][0]:.2f} s {v[-1][1]:.0f} MiB" for k, v in runs.items())
            + f" | load {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
        )
    assert report is not None
    best = {k: min(t for t, _ in v) for k, v in runs.items()}
    rss = {k: max(r for _, r in v) for k, v in runs.items()}

    def cell(k: str) -> str:
        return f"{best[k]:.2f} s ({', '.join(f'{t:.2f}' for t, _ in runs[k])}), {rss[k]:.0f} MiB"

    return (
        f"| {days:g} d × {fs_hz:g} Hz {dtype} ({report['recording']['n_samples']:,} samples, "
        f"{len(report['sessions'])} sessions) | {cell('rowsum')} | {cell('columns')} | {cell('analyze')} | "
        f"{best['analyze'] / best['rowsum']:.2f}× / {best['analyze'] / best['columns']:.2f}× |"
    )


def main() -> None:
    """Run the benchmark for each ``--days`` and print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, nargs="+", default=[7.0])
    ap.add_argument("--fs", type=float, default=100.0)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="reuse an existing generated file")
    args = ap.parse_args()
    rows = [bench(d, args.fs, args.dtype, args.repeat, args.keep) for d in args.days]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, load {os.getloadavg()[0]:.2f}"
    )
    print(
        "| data | baseline, row-sum norm (best; runs), peak RSS | baseline, column norm | "
        "`otmon analyze --json` | ratio analyze / baseline (row-sum / column) |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
