"""Stale fatigue windows brought to the current version ahead of reads: `otmon fatigue-refresh`
and the service's background refresh, one bounded step per committed transaction."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from analysis.fatigue_windows import FEATURES_VERSION
from api.app import create_app
from api.services import fatigue as fatigue_service
from api.services import fatigue_refresh
from api.settings import Settings
from otmon.cli import main
from tests.api.conftest import BACKENDS, TEST_SECRET, ApiClient, _pg_admin_dsn, fresh_database
from tests.api.factories import block_json, make_device, make_patient
from tests.api.test_fatigue_version import GARBAGE, INGEST, _get, _ingest_capture, _rows
from tests.api.test_sessions import TZ, fixture_blocks

ENDPOINTS = ("sessions", "fatigue", "alerts")


@dataclass(frozen=True)
class Seeded:
    """A database holding two patients with the same hour of data, and what they read as."""

    backend: str
    url: str
    therapist: Any
    pid: int
    other: int
    empty: int  # a patient without devices: never stale
    untouched: dict[str, Any]  # of `pid`, per endpoint
    rows: list[tuple[int, bytes, int | None]]  # every stored window (both devices)
    starts: list[int]  # the window starts of each device (the same for both)


def _settings(url: str, directory: Path, **kw: Any) -> Settings:
    return Settings(database_url=url, secret_key=TEST_SECRET, data_dir=directory, **kw)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """Ingested once per backend; every test works on a copy (ingest is the slow part)."""
    directory = tmp_path_factory.mktemp("seed")
    with fresh_database(request.param, directory) as url:
        app = create_app(_settings(url, directory))
        client = ApiClient(app)
        with app.state.session_factory() as db:
            t, pid = _ingest_capture(client, db, app)
            other = _second_patient(client, db, t)
            empty = make_patient(db, t, code="P000").id
            untouched = {what: _get(client, t, pid, what) for what in ENDPOINTS}
            rows = _rows(db)
        app.state.engine.dispose()
        starts = sorted({s for s, _, _ in rows})
        yield Seeded(request.param, url, t, pid, other, empty, untouched, rows, starts)


@pytest.fixture
def live(seeded: Seeded, tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """A copy of the seeded database (real commits: the command runs on its own engine)."""
    if seeded.backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'otmon.sqlite3'}"
        shutil.copy(make_url(seeded.url).database or "", tmp_path / "otmon.sqlite3")
        clone = None
    else:
        clone = f"otmon_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_pg_admin_dsn(seeded.url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{make_url(seeded.url).database}"')
        url = make_url(seeded.url).set(database=clone).render_as_string(hide_password=False)
    app = create_app(_settings(url, tmp_path))
    try:
        yield url, app
    finally:
        app.state.engine.dispose()
        if clone is not None:
            with psycopg.connect(_pg_admin_dsn(seeded.url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)')


def _garble(app: FastAPI, patient_id: int | None = None) -> None:
    """Stored windows (of one patient, or all) to version 1 with garbage, behind the service's back."""
    where = (
        ""
        if patient_id is None
        else (" WHERE device_id IN (SELECT id FROM devices WHERE patient_id = :p)")
    )
    with app.state.session_factory() as db:
        db.execute(
            text(f"UPDATE fatigue_windows SET features_version = 1, data = :g{where}"),
            {"g": GARBAGE, "p": patient_id},
        )
        db.commit()


def _second_patient(client: ApiClient, db: Session, t: Any) -> int:
    """Another patient of the same therapist with the same hour of data on a device of its own."""
    patient = make_patient(db, t, code="P002", tz=TZ)
    _device, headers = make_device(db, patient)
    payload = [
        block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz)
        for i, b in enumerate(fixture_blocks())
    ]
    assert client.post(INGEST, headers=headers, json={"blocks": payload}).status_code == 200
    return patient.id


def _refresh(url: str, *extra: str) -> int:
    return main(["fatigue-refresh", "--database-url", url, *extra])


def _current_rows(app: FastAPI) -> list[tuple[int, bytes, int | None]]:
    with app.state.session_factory() as db:
        return sorted(_rows(db))


def test_the_command_recomputes_stale_windows_and_a_second_run_nothing(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    capsys: pytest.CaptureFixture[str],
    refresh_calls: list[tuple[int, int]],
) -> None:
    url, app = live
    client, t, pid, other, s = (
        ApiClient(app),
        seeded.therapist,
        seeded.pid,
        seeded.other,
        seeded.starts,
    )
    assert len(seeded.rows) == 2 * 122 and {v for _, _, v in seeded.rows} == {FEATURES_VERSION}
    _garble(app)

    assert _refresh(url) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3, out
    assert out[0].startswith(f"patient {pid}: 122 windows recomputed in ")
    assert out[1].startswith(f"patient {other}: 122 windows recomputed in ")
    assert out[0].endswith("(1 step)") and out[1].endswith("(1 step)")
    assert out[2].startswith("done: 244 windows of 2 patient(s) recomputed in ")
    assert not any(line.startswith(f"patient {seeded.empty}:") for line in out)
    assert refresh_calls == [(s[0], s[-1])] * 2  # one step each: 1 h < 2 h of windows
    assert _current_rows(app) == sorted(seeded.rows)  # bit for bit, current version
    # Reads find everything current (nothing recomputed) and answer as before the garbage:
    # the sessions cache that scored the old rows was dropped by the command.
    for what in ENDPOINTS:
        assert _get(client, t, pid, what) == seeded.untouched[what]
    assert len(refresh_calls) == 2

    assert _refresh(url) == 0  # idempotent
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"nothing to recompute: every stored fatigue window is at features version {FEATURES_VERSION}"
    ]
    assert len(refresh_calls) == 2


def test_an_interrupted_run_keeps_its_committed_steps_and_a_rerun_finishes(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    refresh_calls: list[tuple[int, int]],
) -> None:
    url, app = live
    pid, s = seeded.pid, seeded.starts
    _garble(app, pid)
    monkeypatch.setattr(fatigue_service, "RECOMPUTE_WINDOWS", 50)  # 122 windows: steps 50, 50, 22
    spy = fatigue_service.refresh_starts

    def dies_at_second_step(db: Session, **kw: Any) -> int:
        if len(refresh_calls) == 1:
            raise RuntimeError("killed")
        return spy(db, **kw)

    with monkeypatch.context() as m:
        m.setattr(fatigue_service, "refresh_starts", dies_at_second_step)
        with pytest.raises(RuntimeError, match="killed"):
            _refresh(url)
    capsys.readouterr()
    assert refresh_calls == [(s[0], s[49])]
    with app.state.session_factory() as db:
        after = {(start, v) for start, _, v in _rows(db)}
    # The committed step is current; the failed one rolled back (still version 1).
    assert {start for start, v in after if v == 1} == set(s[50:])

    refresh_calls.clear()
    assert _refresh(url) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"patient {pid}: 72 windows recomputed in ")
    assert out[0].endswith("(2 steps)") and len(out) == 2
    assert refresh_calls == [(s[50], s[99]), (s[100], s[-1])]
    assert _current_rows(app) == sorted(seeded.rows)
    assert _get(ApiClient(app), seeded.therapist, pid, "sessions") == seeded.untouched["sessions"]
    assert len(refresh_calls) == 2


def test_a_read_after_an_interrupted_run_does_only_the_remaining_steps(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    monkeypatch: pytest.MonkeyPatch,
    refresh_calls: list[tuple[int, int]],
) -> None:
    _url, app = live
    client, t, pid, s = ApiClient(app), seeded.therapist, seeded.pid, seeded.starts
    _garble(app, pid)
    monkeypatch.setattr(fatigue_service, "RECOMPUTE_WINDOWS", 50)
    with app.state.session_factory() as db:  # one step, as the background refresh does it
        n, cursor = fatigue_refresh.refresh_step(db, patient_id=pid)
        db.commit()
    assert n == 50 and cursor is not None and cursor[2] == s[49]
    assert refresh_calls == [(s[0], s[49])]
    assert _get(client, t, pid, "fatigue") == seeded.untouched["fatigue"]
    assert refresh_calls == [(s[0], s[49]), (s[50], s[99]), (s[100], s[-1])]
    for what in ENDPOINTS:
        assert _get(client, t, pid, what) == seeded.untouched[what]
    assert len(refresh_calls) == 3
    assert _current_rows(app) == sorted(seeded.rows)


def test_patient_option_refreshes_only_those_patients(
    seeded: Seeded, live: tuple[str, FastAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, app = live
    pid, other = seeded.pid, seeded.other
    _garble(app)
    assert _refresh(url, "--patient", str(other)) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"patient {other}: 122 windows")
    with app.state.session_factory() as db:
        assert fatigue_refresh.stale_patients(db) == [pid]
    assert _refresh(url, "--patient", str(pid), str(other)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"patient {pid}: 122 windows") and len(out) == 2
    assert _current_rows(app) == sorted(seeded.rows)


def test_unknown_patient_and_bad_url_are_one_line_errors(
    seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _refresh(seeded.url, "--patient", str(seeded.pid), "424242") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "otmon: error: unknown patient id 424242\n"
    assert main(["fatigue-refresh", "--database-url", "not a url"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("otmon: error: bad database URL: ") and err.count("\n") == 1


def _run_lifespan(app: FastAPI, timeout_s: float = 60.0) -> fatigue_refresh.FatigueRefresher:
    """Start the app (its lifespan), wait for the background refresh, shut the app down."""

    async def run() -> fatigue_refresh.FatigueRefresher:
        async with app.router.lifespan_context(app):
            refresher = app.state.fatigue_refresher
            assert refresher is not None
            await asyncio.to_thread(refresher.join, timeout_s)
            assert not refresher.is_alive()
            return refresher  # type: ignore[no-any-return]

    return asyncio.run(run())


def test_the_started_service_refreshes_stale_windows_without_any_read(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    refresh_calls: list[tuple[int, int]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    url, app = live
    pid, other = seeded.pid, seeded.other
    _garble(app)
    # A second app on the same database, as `otmon serve` builds it after an upgrade.
    started = create_app(_settings(url, tmp_path))
    with caplog.at_level(logging.INFO, logger="api.services.fatigue_refresh"):
        refresher = _run_lifespan(started)
    assert [(r.patient_id, r.windows) for r in refresher.done] == [(pid, 122), (other, 122)]
    assert refresher.failed == [] and len(refresh_calls) == 2
    assert "fatigue refresh: done, 244 windows of 2 patient(s) recomputed" in caplog.text
    assert _current_rows(app) == sorted(seeded.rows)
    assert _get(ApiClient(app), seeded.therapist, pid, "sessions") == seeded.untouched["sessions"]
    assert len(refresh_calls) == 2  # the read found nothing to do


def test_the_background_refresh_logs_a_failing_patient_and_continues(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    url, app = live
    pid, other = seeded.pid, seeded.other
    _garble(app)
    real = fatigue_refresh.refresh_step

    def broken_for_pid(db: Session, *, patient_id: int, after: Any = None) -> Any:
        if patient_id == pid:
            raise RuntimeError("disk on fire")
        return real(db, patient_id=patient_id, after=after)

    monkeypatch.setattr(fatigue_refresh, "refresh_step", broken_for_pid)
    with caplog.at_level(logging.INFO, logger="api.services.fatigue_refresh"):
        refresher = _run_lifespan(create_app(_settings(url, tmp_path)))
    assert refresher.failed == [pid]
    assert [(r.patient_id, r.windows) for r in refresher.done] == [(other, 122)]
    assert f"patient {pid} failed; continuing" in caplog.text and "disk on fire" in caplog.text
    with app.state.session_factory() as db:
        assert fatigue_refresh.stale_patients(db) == [pid]


def test_the_background_refresh_can_be_switched_off(
    live: tuple[str, FastAPI], tmp_path: Path
) -> None:
    url, app = live
    _garble(app)
    started = create_app(_settings(url, tmp_path, fatigue_refresh_on_start=False))

    async def run() -> None:
        async with started.router.lifespan_context(started):
            assert started.state.fatigue_refresher is None

    asyncio.run(run())
    with app.state.session_factory() as db:
        assert len(fatigue_refresh.stale_patients(db)) == 2


def test_shutdown_stops_the_background_refresh_after_its_current_step(
    seeded: Seeded,
    live: tuple[str, FastAPI],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url, app = live
    pid, s = seeded.pid, seeded.starts
    _garble(app)
    monkeypatch.setattr(fatigue_service, "RECOMPUTE_WINDOWS", 10)  # 13 steps per patient
    stepped = threading.Event()
    real = fatigue_refresh.refresh_step

    def step(db: Session, **kw: Any) -> Any:
        out = real(db, **kw)
        stepped.set()  # then hold the step open until the shutdown asks the thread to stop
        assert started.state.fatigue_refresher.stopping.wait(30)
        return out

    monkeypatch.setattr(fatigue_refresh, "refresh_step", step)
    started = create_app(_settings(url, tmp_path))

    async def run() -> fatigue_refresh.FatigueRefresher:
        async with started.router.lifespan_context(started):
            assert await asyncio.to_thread(stepped.wait, 30)
            refresher = started.state.fatigue_refresher
        return refresher  # type: ignore[no-any-return]

    refresher = asyncio.run(run())  # the shutdown waited for the thread
    assert not refresher.is_alive() and refresher.failed == []
    with app.state.session_factory() as db:
        versions = {(start, v) for start, _, v in _rows(db)}
        assert fatigue_refresh.stale_patients(db) == [pid, seeded.other]
    # The step under way when the service stopped was committed, and nothing after it.
    assert sorted(start for start, v in versions if v == FEATURES_VERSION) == s[:10]
