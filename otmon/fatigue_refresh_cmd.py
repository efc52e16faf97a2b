"""`otmon fatigue-refresh`: stored fatigue windows to the current features version, ahead of reads.

Wiring only: the work is `api.services.fatigue_refresh` (one bounded step per transaction).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

#: Seconds between two progress lines while one patient is being refreshed.
PROGRESS_EVERY_S = 10.0


def add_parsers(sub: Any) -> None:
    """Add `fatigue-refresh` to the `otmon` subparsers."""
    cmd = sub.add_parser(
        "fatigue-refresh",
        help="recompute stored fatigue windows of another features version (after an upgrade)",
    )
    cmd.add_argument(
        "--database-url", help="SQLAlchemy URL (default: OTMON_DATABASE_URL or SQLite)"
    )
    cmd.add_argument(
        "--patient", type=int, nargs="+", action="extend", metavar="ID", help="only these patients"
    )


def run(args: argparse.Namespace, *, settings: Any, error: type[Exception]) -> int:
    """Refresh every (or each given) patient; 0 when every stored window is then current."""
    from sqlalchemy import select

    from analysis.fatigue_windows import FEATURES_VERSION
    from api.db import make_engine, session_factory, upgrade
    from api.models import Patient
    from api.services import fatigue_refresh as fr

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        factory = session_factory(engine)
        with factory() as db:
            if args.patient:
                known = set(db.scalars(select(Patient.id).where(Patient.id.in_(args.patient))))
                unknown = sorted(set(args.patient) - known)
                if unknown:
                    raise error(f"unknown patient id {', '.join(map(str, unknown))}")
            todo = fr.stale_patients(db, patient_ids=args.patient)
        if not todo:
            print(
                f"nothing to recompute: every stored fatigue window is at features version {FEATURES_VERSION}"
            )
            return 0
        t0 = time.perf_counter()
        total = 0
        for pid in todo:
            last_print = [time.perf_counter()]

            def progress(p: fr.PatientRefresh, last: list[float] = last_print) -> None:
                if time.perf_counter() - last[0] >= PROGRESS_EVERY_S:
                    print(
                        f"patient {p.patient_id}: {p.windows} windows so far ({p.seconds:.1f} s)",
                        flush=True,
                    )
                    last[0] = time.perf_counter()

            result = fr.refresh_patient(factory, patient_id=pid, on_step=progress)
            total += result.windows
            print(
                f"patient {pid}: {result.windows} windows recomputed in {result.seconds:.1f} s "
                f"({result.steps} step{'' if result.steps == 1 else 's'})",
                flush=True,
            )
        with factory() as db:
            left = fr.stale_patients(db, patient_ids=args.patient)
        elapsed = time.perf_counter() - t0
        if left:
            print(
                f"otmon: error: patients {', '.join(map(str, left))} still have windows of another "
                f"features version (written by another version of otmon?); rerun",
                file=sys.stderr,
            )
            return 1
        print(
            f"done: {total} windows of {len(todo)} patient(s) recomputed in {elapsed:.1f} s; "
            f"every stored fatigue window is at features version {FEATURES_VERSION}"
        )
        return 0
    finally:
        engine.dispose()
