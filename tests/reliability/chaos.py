"""The chaos run: wearable timeline, `otmon collect` processes killed at random, a faulty link.

`run_chaos` drives the processes and returns what happened; `test_chaos.py` checks it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collector.outbox import Outbox
from fixtures.make_long_capture import LongRecording
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.service import REPO, Service

NS = 1_000_000_000
# How long a kill waits for a restarted collector that has not joined the stream yet.
JOIN_WAIT_S = 3.0

# A trigger copies every block and event the outbox commits into journal tables, inside the
# same transaction: an exact record of what the collector committed, though the uploader
# deletes what the service confirmed.
JOURNAL = """
CREATE TABLE journal_blocks (stream TEXT, seq INTEGER, t0_ns INTEGER, fs_hz REAL,
                             n_samples INTEGER, data BLOB, stored_ns INTEGER);
CREATE TRIGGER journal_blocks AFTER INSERT ON blocks BEGIN
  INSERT INTO journal_blocks VALUES (NEW.stream, NEW.seq, NEW.t0_ns, NEW.fs_hz, NEW.n_samples,
                                     NEW.data, NEW.stored_ns);
END;
CREATE TABLE journal_drafts (stream TEXT, t0_ns INTEGER, fs_hz REAL, n_samples INTEGER,
                             stored_ns INTEGER);
CREATE TRIGGER journal_drafts AFTER INSERT ON draft BEGIN
  INSERT INTO journal_drafts VALUES (NEW.stream, NEW.t0_ns, NEW.fs_hz, NEW.n_samples,
                                     NEW.stored_ns);
END;
CREATE TABLE journal_events (id TEXT, kind TEXT, body TEXT, created_ns INTEGER);
CREATE TRIGGER journal_events AFTER INSERT ON events BEGIN
  INSERT INTO journal_events VALUES (NEW.id, NEW.kind, NEW.body, NEW.created_ns);
END;
"""


@dataclass
class ChaosRun:
    """What the run did, in wall-clock and virtual (timeline) time."""

    origin_ns: int  # virtual time at the anchor
    anchor_wall_ns: int
    speed: float
    kills_wall_ns: list[int] = field(default_factory=list)
    joins_ns: list[int] = field(default_factory=list)  # virtual
    outage_wall_ns: tuple[int, int] = (0, 0)
    drain_s: float | None = None  # server back up -> everything committed before is stored
    wall_s: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    exit_codes: list[int] = field(default_factory=list)

    def virtual(self, wall_ns: int) -> int:
        """Timeline time at wall-clock `wall_ns`."""
        return self.origin_ns + int((wall_ns - self.anchor_wall_ns) * self.speed)


def install_journal(outbox: Path) -> None:
    """Create the outbox file (as the collector would) and the journal triggers."""
    Outbox(outbox).close()
    with sqlite3.connect(outbox) as db:
        db.executescript(JOURNAL)


def journal(outbox: Path) -> list[tuple[str, int, int, float, int, bytes, int]]:
    """Every block the collector committed: (stream, seq, t0_ns, fs_hz, n, data, stored_ns)."""
    with sqlite3.connect(outbox) as db:
        return db.execute("SELECT * FROM journal_blocks ORDER BY stream, seq").fetchall()


def commits(outbox: Path) -> list[tuple[int, int]]:
    """(wall ns of the commit, UTC ns after its last sample) of every block and draft
    committed, in commit order: how far the durable record reached, and when."""
    with sqlite3.connect(outbox) as db:
        rows = db.execute(
            "SELECT stored_ns, t0_ns, fs_hz, n_samples FROM journal_blocks UNION ALL "
            "SELECT stored_ns, t0_ns, fs_hz, n_samples FROM journal_drafts"
        ).fetchall()
    return sorted((int(s), int(t0 + round(n * 1e9 / fs))) for s, t0, fs, n in rows)


def _server_seqs(database: Path) -> set[int]:
    with sqlite3.connect(database) as db:
        return {int(r[0]) for r in db.execute("SELECT seq FROM sample_blocks")}


def _kill_times(
    rng: random.Random, n: int, lo: float, hi: float, quiet: list[tuple[float, float]], gap: float
) -> list[float]:
    """`n` random times in [lo, hi] outside the `quiet` spans, at least `gap` apart (uniform
    spacings drawn on the free length, then laid out skipping the quiet spans)."""
    free: list[tuple[float, float]] = []
    t = lo
    for a, b in sorted(quiet):
        if a > t:
            free.append((t, min(a, hi)))
        t = max(t, b)
    if t < hi:
        free.append((t, hi))
    total = sum(b - a for a, b in free)
    slack = total - (n - 1) * gap - len(free) * gap  # room left once every spacing is kept
    assert slack > 0, "the stream is too short for that many kills"
    xs = sorted(rng.uniform(0, slack) for _ in range(n))
    out, i, offset = [], 0, 0.0
    for a, b in free:
        while i < n and xs[i] + i * gap - offset < b - a - gap:
            out.append(a + xs[i] + i * gap - offset)
            i += 1
        offset += b - a - gap
    return out


def _n_joins(joins: Path) -> int:
    return len(joins.read_text().split()) if joins.exists() else 0


class _Collector:
    def __init__(self, argv: list[str], directory: Path) -> None:
        self.argv, self.directory, self.n = argv, directory, 0
        self.process: subprocess.Popen[bytes] | None = None
        self.joins_at_start = 0

    def start(self) -> None:
        self.joins_at_start = _n_joins(self.directory / "joins.log")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        log = (self.directory / f"collect-{self.n}.log").open("wb")
        self.n += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.chaos_collector", *self.argv],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def signal(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process = None
        return code


def run_chaos(
    rec: LongRecording,
    directory: Path,
    service: Service,
    token: str,
    *,
    speed: float,
    n_kills: int,
    outage_s: tuple[float, float],
    seed: int,
) -> ChaosRun:
    """Stream `rec` at `speed`, kill the collector `n_kills` times, take the service down for
    `outage_s` (start, length in wall s after the anchor), then let everything drain."""
    rng = random.Random(seed)
    timeline_path = directory / "timeline.npz"
    rec.timeline.save(timeline_path)
    outbox, joins = directory / "outbox.sqlite3", directory / "joins.log"
    install_journal(outbox)
    t_ns = rec.timeline.t_ns
    origin = int(t_ns[0]) - 2 * NS
    length_s = (int(t_ns[-1]) - origin) / NS / speed
    began = time.monotonic()
    run = ChaosRun(origin, time.time_ns() + NS // 2, speed)
    proxy = FaultProxy(service.port, p_5xx=0.10, p_cut=0.05, seed=seed)
    argv = [str(timeline_path), str(origin), str(run.anchor_wall_ns), str(speed),
            proxy.url, token, str(outbox), str(joins)]  # fmt: skip
    collector = _Collector(argv, directory)
    # Kill times: random, at least 1.2 s apart (a restart takes ~1 s), inside the stream, and
    # not from 600 s of recording before an out-of-range span to 60 s after it, so that a
    # collector is connected when the wearable leaves (the link loss is then reported).
    quiet = [((s - origin) / NS / speed - 600 / speed, (e - origin) / NS / speed + 60 / speed)
             for s, e in rec.timeline.absent_ns.tolist()]  # fmt: skip
    plan = [(k, "kill") for k in _kill_times(rng, n_kills, 1.5, length_s - 1.0, quiet, 1.2)]
    plan += [(outage_s[0], "server_down"), (outage_s[0] + outage_s[1], "server_up")]
    back: threading.Thread | None = None
    with proxy:
        collector.start()
        try:
            for at_s, action in sorted(plan):
                time.sleep(max(0.0, run.anchor_wall_ns / NS + at_s - time.time()))
                if action == "kill":
                    # A run still starting when its kill is due (a busy machine) is given up
                    # to JOIN_WAIT_S to join the stream, then killed a random moment later.
                    deadline = time.monotonic() + JOIN_WAIT_S
                    while _n_joins(joins) <= collector.joins_at_start:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.02)
                    else:
                        time.sleep(rng.uniform(0.0, 0.3))
                    for a, b in quiet:  # the wait ran into a quiet stretch: after it, then
                        now_s = time.time() - run.anchor_wall_ns / NS
                        if a <= now_s <= b:
                            time.sleep(b - now_s)
                    run.exit_codes.append(collector.signal(signal.SIGKILL))
                    run.kills_wall_ns.append(time.time_ns())
                    collector.start()  # systemd Restart=always, RestartSec=0
                elif action == "server_down":
                    service.kill()
                    run.outage_wall_ns = (time.time_ns(), 0)
                else:  # in the background: the kills go on while the service starts
                    back = threading.Thread(target=_restart, args=(run, outbox, service))
                    back.start()
            if back is not None:
                back.join()
            time.sleep(max(0.0, run.anchor_wall_ns / NS + length_s + 0.5 - time.time()))
            _wait_drained(outbox, service, timeout_s=60)
            deadline = time.monotonic() + JOIN_WAIT_S  # SIGTERM a run that has started
            while _n_joins(joins) <= collector.joins_at_start and time.monotonic() < deadline:
                time.sleep(0.02)
            run.exit_codes.append(collector.signal(signal.SIGTERM))
        finally:
            if collector.process is not None:
                collector.signal(signal.SIGKILL)
        run.faults = dict(proxy.counts)
    run.joins_ns = [int(x) for x in joins.read_text().split()]
    run.wall_s = time.monotonic() - began
    (directory / "run.json").write_text(json.dumps(dataclasses.asdict(run)))  # for a post-mortem
    return run


def _restart(run: ChaosRun, outbox: Path, service: Service) -> None:
    """Start the service again, then measure the seconds until it holds every block
    committed before it was back."""
    service.start()
    back_ns = time.time_ns()
    run.outage_wall_ns = (run.outage_wall_ns[0], back_ns)
    wanted = {r[1] for r in journal(outbox) if r[6] <= back_ns}
    database = Path(service.database_url.removeprefix("sqlite:///"))
    while time.time_ns() - back_ns < 60 * NS:
        if wanted <= _server_seqs(database):
            run.drain_s = (time.time_ns() - back_ns) / NS
            return
        time.sleep(0.05)


def _wait_drained(outbox: Path, service: Service, *, timeout_s: float) -> None:
    database = Path(service.database_url.removeprefix("sqlite:///"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        wanted = {r[1] for r in journal(outbox)}
        with Outbox(outbox) as box:
            backlog = box.backlog().n_blocks
        if backlog == 0 and wanted <= _server_seqs(database):
            return
        time.sleep(0.1)
    with Outbox(outbox) as box:
        status, refused = box.status(), box.refused()
    raise AssertionError(
        f"the outbox did not drain in {timeout_s} s: {backlog} blocks wait, "
        f"{len(wanted - _server_seqs(database))} committed blocks not on the service; "
        f"last error {status.get('last_error')!r}, refused {refused}; "
        f"service log: {_last_exception(service.directory)}"
    )


def _last_exception(directory: Path) -> str:
    """Where the service's last traceback ended (file, line, message), from its logs."""
    lines = [
        ln for log in sorted(directory.glob("serve-*.log")) for ln in log.read_text().splitlines()
    ]
    where = [ln.strip() for ln in lines if ln.strip().startswith('File "')]
    errors = [ln for ln in lines if ln and not ln.startswith(" ") and "Error" in ln]
    return f"{where[-1] if where else '-'}: {errors[-1] if errors else 'no traceback'}"


def deaf_spans(run: ChaosRun, rec: LongRecording) -> list[tuple[int, int]]:
    """Virtual spans in which no collector was listening: before the first join, from each
    kill and each out-of-range start to the next join."""
    joins = np.array(sorted(run.joins_ns), dtype=np.int64)
    starts = [run.origin_ns] + [run.virtual(k) for k in run.kills_wall_ns]
    starts += [int(s) for s, _ in rec.timeline.absent_ns]
    out = []
    for s in sorted(starts):
        i = int(np.searchsorted(joins, s, side="right"))
        out.append((s, int(joins[i]) if i < len(joins) else int(rec.timeline.t_ns[-1]) + 1))
    return out
