"""Stored fatigue windows of another features version brought up to date ahead of any read.

`api.services.fatigue.ensure_current` recomputes a patient's stale windows inside the first
read after an upgrade, whole history at once. Here the same recomputation (`fatigue.refresh_starts`,
the ingest code) runs in bounded steps of at most `fatigue.RECOMPUTE_WINDOWS` windows, one
transaction per step: the patient's uploads wait for one step only, and a stopped run loses at
most one step (docs/fatigue-api.md, "Features version"). Used by `otmon fatigue-refresh` and by
the service's background refresh after start-up (`FatigueRefresher`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from analysis.fatigue_windows import FEATURES_VERSION
from api.models import Device, FatigueWindowRow, Patient
from api.services import fatigue, sessions

log = logging.getLogger(__name__)

#: Where a patient's refresh resumes: the last (device_id, stream, start_ns) recomputed.
Cursor = tuple[int, str, int]


@dataclass
class PatientRefresh:
    """What the refresh of one patient did: stale windows recomputed, steps, wall time."""

    patient_id: int
    windows: int = 0
    steps: int = 0
    seconds: float = 0.0


def is_stale(db: Session, *, patient_id: int) -> bool:
    """True when some stored window of the patient is of another features version (one query)."""
    return db.scalars(fatigue.stale_probe(patient_id)).first() is not None


def stale_patients(db: Session, *, patient_ids: Sequence[int] | None = None) -> list[int]:
    """Ids (ascending) of the patients, of ``patient_ids`` if given, with stale windows."""
    ids = (
        sorted(set(patient_ids))
        if patient_ids is not None
        else list(db.scalars(select(Patient.id).order_by(Patient.id)))
    )
    return [pid for pid in ids if is_stale(db, patient_id=pid)]


def refresh_step(
    db: Session, *, patient_id: int, after: Cursor | None = None
) -> tuple[int, Cursor | None]:
    """Recompute one range of the patient's stale windows after ``after``, in ``db``'s transaction.

    The range is the first that `fatigue.ensure_current` would recompute (at most
    `fatigue.RECOMPUTE_WINDOWS` windows of one stream); the devices and the patient are locked
    as ingest locks them and the sessions cache is dropped. Returns the number of stale windows
    recomputed and the cursor to resume from (None: no stale window after ``after``). The caller
    commits.
    """
    db.execute(
        select(Device.id)
        .where(Device.patient_id == patient_id)
        .order_by(Device.id)
        .with_for_update()
    )
    key = (FatigueWindowRow.device_id, FatigueWindowRow.stream, FatigueWindowRow.start_ns)
    stmt = select(*key).where(*fatigue._of_another_version(patient_id))
    if after is not None:
        stmt = stmt.where(tuple_(*key) > tuple_(*after))
    # A range holds at most RECOMPUTE_WINDOWS starts (one per 30-s step), so this many rows
    # always contain the whole first range.
    found = db.execute(stmt.order_by(*key).limit(fatigue.RECOMPUTE_WINDOWS)).all()
    if not found:
        return 0, None
    device_id, stream = found[0][0], found[0][1]
    starts = [int(r[2]) for r in found if (r[0], r[1]) == (device_id, stream)]
    first, last = fatigue._start_ranges(starts)[0]
    fatigue.refresh_starts(
        db, device_id=device_id, stream=stream, first_start_ns=first, last_start_ns=last
    )
    sessions.invalidate(db, patient_id=patient_id)
    return sum(1 for s in starts if s <= last), (device_id, stream, last)


def refresh_patient(
    factory: sessionmaker[Session],
    *,
    patient_id: int,
    stop: threading.Event | None = None,
    on_step: Callable[[PatientRefresh], None] | None = None,
) -> PatientRefresh:
    """Bring the patient's stored windows to `FEATURES_VERSION`, one step per committed transaction.

    Stops early (between steps) when ``stop`` is set. Ends with the staleness probe, so windows
    made stale behind the cursor meanwhile are picked up by another pass.
    """
    out = PatientRefresh(patient_id)
    t0 = time.perf_counter()
    cursor: Cursor | None = None
    pass_windows = 0
    while stop is None or not stop.is_set():
        with factory() as db:
            if cursor is None and pass_windows == 0 and not is_stale(db, patient_id=patient_id):
                break
            n, cursor = refresh_step(db, patient_id=patient_id, after=cursor)
            db.commit()
        if n:
            out.windows += n
            out.steps += 1
            pass_windows += n
            out.seconds = time.perf_counter() - t0
            if on_step is not None:
                on_step(out)
        if cursor is None:
            if pass_windows == 0:  # a whole pass found nothing after the start: done
                break
            pass_windows = 0  # another pass from the start, which begins with the probe
    out.seconds = time.perf_counter() - t0
    return out


class FatigueRefresher:
    """The service's background refresh: a daemon thread over every patient with stale windows.

    Each patient is refreshed with `refresh_patient` on sessions of its own; an error in one
    patient is logged and the next one is taken. `stop` asks it to end after the current step.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otmon-fatigue-refresh", daemon=True)
        self.done: list[PatientRefresh] = []
        self.failed: list[int] = []

    @property
    def stopping(self) -> threading.Event:
        """Set once `stop` has been called."""
        return self._stop

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the thread to stop after its current step and wait for it (up to ``timeout_s``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the thread to finish its work."""
        self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            with self._factory() as db:
                todo = stale_patients(db)
        except Exception:  # never crash the server; reads still refresh
            log.exception("fatigue refresh: cannot list patients with stale windows")
            return
        if not todo:
            return
        log.info(
            "fatigue refresh: %d patient(s) with windows of another features version, "
            "recomputing to version %d in the background",
            len(todo),
            FEATURES_VERSION,
        )
        for pid in todo:
            if self._stop.is_set():
                log.info("fatigue refresh: stopped; the rest is recomputed at their next read")
                return
            try:
                result = refresh_patient(self._factory, patient_id=pid, stop=self._stop)
            except Exception:  # one patient's error must not stop the others
                log.exception("fatigue refresh: patient %d failed; continuing", pid)
                self.failed.append(pid)
                continue
            self.done.append(result)
            log.info(
                "fatigue refresh: patient %d: %d windows recomputed in %.1f s",
                pid,
                result.windows,
                result.seconds,
            )
        log.info(
            "fatigue refresh: done, %d windows of %d patient(s) recomputed%s",
            sum(r.windows for r in self.done),
            len(self.done),
            f", {len(self.failed)} failed" if self.failed else "",
        )
