"""A restartable `otmon serve` process on a fixed port, a seeded database and what it stores."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from sqlalchemy import select

from api.db import make_engine, session_factory
from api.models import DeviceEvent, SampleBlockRow
from api.security import create_access_token
from api.services import devices, patients, users
from api.services.ingest import load_accel
from tests.api.conftest import BACKENDS, TEST_SECRET, fresh_database
from tests.service_process import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0

__all__ = [
    "BACKENDS",
    "REPO",
    "Seeded",
    "Service",
    "StoredBlock",
    "seeded_database",
    "stored_blocks",
    "stored_events",
]


@dataclass(frozen=True, slots=True)
class Seeded:
    """A fresh migrated database with one therapist, one patient and one device."""

    url: str
    device_token: str
    therapist_headers: dict[str, str]
    patient_id: int
    device_id: int


@contextmanager
def seeded_database(backend: str, directory: Path) -> Iterator[Seeded]:
    """A new database on `backend` (dropped afterwards for PostgreSQL), seeded for ingest."""
    with fresh_database(backend, directory) as url:
        engine = make_engine(url)
        try:
            with session_factory(engine)() as db:
                user = users.create(db, email="rel@example.org", password="x" * 12)
                patient = patients.create(db, therapist=user, code="R1")
                device, token = devices.create(db, patient=patient, profile="thingy52", name="T")
                db.commit()
                access = create_access_token(user_id=user.id, secret_key=TEST_SECRET, ttl_s=3600)
                seeded = Seeded(
                    url, token, {"Authorization": f"Bearer {access}"}, patient.id, device.id
                )
        finally:
            engine.dispose()
        yield seeded


# A standby interpreter imports the service's modules ahead (seconds on a busy machine),
# then waits: a start sends it a line and it runs `otmon serve` from the beginning (settings,
# migrations, app, socket), exactly as `python -m otmon serve` would.
_STANDBY = (
    "import sys; import api.app, uvicorn, otmon.cli; "
    "sys.stdin.readline(); sys.exit(otmon.cli.main(sys.argv[1:]))"
)


class Service:
    """`otmon serve` on one port that survives SIGKILL and restarts (the URL stays the same)."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._standby: subprocess.Popen[bytes] | None = None
        self._standby_log: Path | None = None
        self.n_starts = 0

    def _spawn_standby(self) -> None:
        env = {
            **os.environ,
            "OTMON_SECRET_KEY": TEST_SECRET,
            "OTMON_DATA_DIR": str(self.directory),
            "PYTHONPATH": str(REPO),
        }
        self._standby_log = self.directory / f"serve-{self.n_starts}.log"
        with self._standby_log.open("wb") as log_fh:
            self._standby = subprocess.Popen(
                [sys.executable, "-c", _STANDBY, "serve", "--port", str(self.port),
                 "--database-url", self.database_url],
                cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=log_fh, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def start(self) -> float:
        """Start `otmon serve` and wait until /api/v1/health answers; return the seconds it
        took from the go to the first answer. The next start's interpreter is then prepared."""
        assert self.process is None, "already running"
        if self._standby is None:
            self._spawn_standby()
        assert self._standby is not None and self._standby.stdin is not None
        assert self._standby_log is not None
        began = time.monotonic()
        self.process, log_path, self._standby = self._standby, self._standby_log, None
        self.process.stdin.write(b"go\n")  # type: ignore[union-attr]
        self.process.stdin.close()  # type: ignore[union-attr]
        self.n_starts += 1
        deadline = began + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=1).status_code == 200:
                    self._spawn_standby()
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight requests die with the process."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """Graceful stop (SIGINT) if running; the prepared interpreter is ended."""
        if self._standby is not None:
            assert self._standby.stdin is not None
            self._standby.stdin.close()
            self._standby.kill()
            self._standby.wait()
            self._standby = None
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One stored block as the service keeps it, with the SHA-256 of its float32 samples."""

    stream: str
    seq: int
    t0_ns: int
    end_ns: int
    fs_hz: float
    n_samples: int
    sha256: str
    accel_g: np.ndarray


def stored_blocks(database_url: str) -> list[StoredBlock]:
    """Every block in the database, in (stream, seq) order, checksummed from the decoded data."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as db:
            rows = db.scalars(
                select(SampleBlockRow).order_by(SampleBlockRow.stream, SampleBlockRow.seq)
            ).all()
            out = []
            for r in rows:
                accel = load_accel(r)
                digest = hashlib.sha256(np.ascontiguousarray(accel, "<f4").tobytes()).hexdigest()
                out.append(
                    StoredBlock(
                        r.stream, r.seq, r.t0_ns, r.end_ns, r.fs_hz, r.n_samples, digest, accel
                    )
                )
            return out
    finally:
        engine.dispose()


def stored_events(database_url: str) -> list[dict[str, Any]]:
    """Every stored event as its wire object (id, kind, times, fields), in storage order."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as db:
            rows = db.scalars(select(DeviceEvent).order_by(DeviceEvent.id)).all()
            out: list[dict[str, Any]] = []
            for r in rows:
                times = {
                    "stream": r.stream,
                    "at_ns": r.at_ns,
                    "start_ns": r.start_ns,
                    "end_ns": r.end_ns,
                }
                wire = {
                    "id": r.event_id,
                    "kind": r.kind,
                    **{k: v for k, v in times.items() if v is not None},
                }
                out.append({**wire, **r.fields})
            return out
    finally:
        engine.dispose()
