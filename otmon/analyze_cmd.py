"""Output assembly of `otmon analyze`: wires `analysis` functions into a report; computes nothing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from analysis.calibration import calibrate
from analysis.effort import grid_personal_peak_mg, recording_summary, second_grid
from analysis.gaps import Gap
from analysis.intensity import DEFAULT_CUTPOINTS
from analysis.pipeline import epoch_table, summarise_days
from analysis.read_npy import release_pages
from analysis.samples import NS_PER_S, Recording, SampleBlock
from analysis.seconds import SecondEnmo, enmo_by_second
from analysis.streaming import stream_block
from analysis.sessions import detect_sessions, summarise_sessions, whole_recording_session
from otmon.fatigue_report import add_fatigue

#: GGIR's g.calibrate starts from the first 72 h of a file (extending only on failure);
#: calibrating on at most 72 h also bounds the memory of the uniform grid it needs.
CALIBRATION_HOURS = 72
_NOT_APPLIED = (
    "estimated for quality control only: days and sessions are computed from the raw blocks "
    "so that they equal the service's numbers (docs/architecture.md)"
)


class Progress:
    """Stage messages on stderr, shown only when stderr is a terminal."""

    def __init__(self, stream: TextIO | None = None, total: int = 5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.done = total, 0

    def step(self, what: str) -> None:
        """Announce the next stage."""
        self.done += 1
        if self.enabled:
            self.stream.write(f"\r\033[K[{self.done}/{self.total}] {what}…")
            self.stream.flush()

    def finish(self) -> None:
        """Clear the progress line."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def calibration_report(blocks: list[SampleBlock]) -> dict[str, Any]:
    """QC of van Hees auto-calibration on the first `CALIBRATION_HOURS` h (not applied)."""
    t_end = blocks[0].t0_ns + CALIBRATION_HOURS * 3600 * NS_PER_S
    if len(blocks) == 1:  # already uniform (e.g. a memory-mapped .npy): no copy
        b = blocks[0]
        accel, fs_hz = b.accel_g[: int(CALIBRATION_HOURS * 3600 * b.fs_hz)], b.fs_hz
    else:
        grid = Recording([b for b in blocks if b.t0_ns < t_end]).to_uniform()
        accel, fs_hz = grid.accel_g, grid.fs_hz
    result = calibrate(accel, fs_hz=fs_hz)
    release_pages(accel)  # keep a memory-mapped file's pages out of the resident set
    return {"applied": False, "note": _NOT_APPLIED, **result.to_dict()}


def capture_connect_times(path: Path) -> list[int]:
    """Host UTC ns of the capture's ``connect`` events (the capture is already validated)."""
    from collector.capture import iter_lines

    times = []
    for _, line in iter_lines(path):
        if '"connect"' in line:
            event = json.loads(line)
            if event.get("kind") == "connect":
                times.append(int(event["t_ns"]))
    return times


def capture_gap_events(blocks: list[SampleBlock], connect_ns: list[int]) -> list[Gap]:
    """The gap events a live collector reports for a capture's blocks: the space between
    blocks nearest a reconnect (host time; a decoder may date the first samples of a frame
    before its arrival) is ``ble_disconnect``, as `collector.reconnect` reports link gaps;
    any other space between consecutive blocks is a drop the decoder found in the frames,
    ``device_drop`` (the assembler only cuts there)."""
    bs = sorted(blocks, key=lambda b: b.t0_ns)
    spaces = [(bs[k - 1].end_ns, bs[k].t0_ns) for k in range(1, len(bs)) if bs[k].t0_ns > bs[k - 1].end_ns]
    reconnects = set()
    for c in connect_ns:
        if spaces and bs[0].t0_ns < c:  # the first connection's connect is no reconnect
            reconnects.add(min(range(len(spaces)), key=lambda k: max(spaces[k][0] - c, c - spaces[k][1], 0)))
    return [
        Gap(a, b, "ble_disconnect" if k in reconnects else "device_drop") for k, (a, b) in enumerate(spaces)
    ]


def build_report(
    path: Path,
    blocks: list[SampleBlock],
    info: dict[str, Any],
    *,
    tz: str,
    cutpoints: str | None,
    whole_file: bool,
    activity: str | None,
    progress: Progress,
) -> tuple[dict[str, Any], Any]:
    """The ``--json`` document and the 5-s epoch table of a recording.

    Raises:
        ValueError: a bad time zone or cut-point set (the caller reports it in one line).
    """
    cp = cutpoints or DEFAULT_CUTPOINTS
    block_spans = [(b.t0_ns, b.end_ns, b.fs_hz) for b in blocks]
    gap_events: list[Gap] = []
    if info.get("format") == "otmon-capture":
        gap_events = capture_gap_events(blocks, capture_connect_times(path))
    progress.step("epochs")
    seconds: SecondEnmo | None = None
    if len(blocks) == 1:
        # One uniform block (e.g. a memory-mapped .npy): the 5-s table and 1-s ENMO in one
        # chunked pass, so memory does not grow with the file (analysis.streaming).
        epochs, seconds = stream_block(blocks[0])
    else:
        epochs = epoch_table(blocks)
    days = summarise_days(epochs, tz=tz, cutpoints=cp, block_spans=block_spans, gap_events=gap_events)
    progress.step("calibration")
    calibration = calibration_report(blocks)
    progress.step("sessions")
    if seconds is None:
        seconds = enmo_by_second(blocks)
    grid = second_grid(seconds, class_epochs=epochs, cutpoints=cp)
    spans = [whole_recording_session(grid, activity)] if whole_file else detect_sessions(grid)
    sessions = summarise_sessions(
        grid, spans, personal_peak_mg=grid_personal_peak_mg(grid), block_spans=block_spans, gap_events=gap_events
    )
    add_fatigue(blocks, grid, spans, sessions)  # issue 6: sessions[i]["fatigue"]
    recording = {"file": str(path), **info, **recording_summary(blocks)}
    return {"recording": recording, "calibration": calibration, "days": days, "sessions": sessions}, epochs


def _print_text(report: dict[str, Any], out: TextIO) -> None:
    rec = report["recording"]
    print(f"{Path(rec['file']).name}: {rec['n_samples']} samples in {rec['blocks']} blocks ({rec['format']})", file=out)
    header = f"{'date':<12}{'samples':>9}{'wear min':>10}{'sed':>8}{'light':>8}{'mod':>8}{'vig':>8}{'ENMO mg':>9}"
    print(header, file=out)
    for day in report["days"]:
        enmo = "-" if day["mean_enmo_mg"] is None else f"{day['mean_enmo_mg']:.1f}"
        print(
            f"{day['date']:<12}{day['samples']:>9}{day['wear_min']:>10.1f}{day['sedentary_min']:>8.1f}"
            f"{day['light_min']:>8.1f}{day['moderate_min']:>8.1f}{day['vigorous_min']:>8.1f}{enmo:>9}",
            file=out,
        )
    for s in report["sessions"]:
        enmo = "-" if s["mean_enmo_mg"] is None else f"{s['mean_enmo_mg']:.1f} mg"
        print(
            f"session {s['start']} – {s['end']}: {s['duration_s'] / 60:.1f} min, active {s['active_s'] / 60:.1f} min, "
            f"{s['rest_breaks']['count']} rest breaks, mean active ENMO {enmo}",
            file=out,
        )


def run_analyze(
    args: argparse.Namespace,
    *,
    load_blocks: Callable[..., tuple[list[SampleBlock], dict[str, Any]]],
    write_epochs: Callable[[Path, Any], None],
    error: type[Exception],
) -> int:
    """Run `otmon analyze` for parsed `args`; bad user input raises `error` (one line)."""
    if getattr(args, "activity", None) and not args.session:
        raise error("--activity labels the whole-file session: use it with --session")
    progress = Progress()
    progress.step(f"reading {args.file.name}")
    blocks, info = load_blocks(args.file, fs_hz=args.fs, start=args.start)
    if not blocks:
        raise error(f"{args.file}: no samples")
    try:
        report, epochs = build_report(
            args.file,
            list(blocks),
            dict(info),
            tz=args.tz,
            cutpoints=args.cutpoints,
            whole_file=args.session,
            activity=getattr(args, "activity", None),
            progress=progress,
        )
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise
        raise error(str(exc)) from exc
    if args.epochs:
        progress.step("writing epochs")
        write_epochs(args.epochs, epochs)
    progress.finish()
    if args.json:
        print(json.dumps(report))
    else:
        _print_text(report, sys.stdout)
    return 0
