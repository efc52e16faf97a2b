"""Stale fatigue windows brought to the current version ahead of reads: `otmon fatigue-refresh`
and the service's background refresh, one bounded step per committed transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from analysis.fatigue_windows import FEATURES_VERSION
from api.app import create_app
from api.services import fatigue as fatigue_service
from api.services import fatigue_refresh
from api.settings import Settings
from otmon.cli import main
from tests.api.conftest import BACKENDS, TEST_SECRET, ApiClient, fresh_database
from tests.api.factories import block_json, make_device, make_patient
from tests.api.test_fatigue_version import GARBAGE, INGEST, _get, _ingest_capture, _rows
from tests.api.test_sessions import TZ, fixture_blocks

ENDPOINTS = ("sessions", "fatigue", "alerts")


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """A fresh database (real commits: the command runs on its own engine) and an app on it."""
    with fresh_database(request.param, tmp_path) as url:
        settings = Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path)
        app = create_app(settings)
        try:
            yield url, app
        finally:
            app.state.engine.dispose()


@pytest.fixture
def refresh_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every (first, last) window range recomputed by `fatigue.refresh_starts`."""
    calls: list[tuple[int, int]] = []
    real = fatigue_service.refresh_starts

    def spy(db: Session, **kw: Any) -> int:
        calls.append((kw["first_start_ns"], kw["last_start_ns"]))
        return real(db, **kw)

    monkeypatch.setattr(fatigue_service, "refresh_starts", spy)
    return calls


def _garble(app: FastAPI) -> None:
    """Every stored window to version 1 with garbage features, behind the service's back."""
    with app.state.session_factory() as db:
        db.execute(
            text("UPDATE fatigue_windows SET features_version = 1, data = :g"), {"g": GARBAGE}
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


def test_the_command_recomputes_stale_windows_and_a_second_run_nothing(
    live: tuple[str, FastAPI],
    capsys: pytest.CaptureFixture[str],
    refresh_calls: list[tuple[int, int]],
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        empty = make_patient(db, t, code="P000").id  # no device, never stale
        untouched = {what: _get(client, t, pid, what) for what in ENDPOINTS}
        rows = _rows(db)
    assert len(rows) == 122 and {v for _, _, v in rows} == {FEATURES_VERSION}
    _garble(app)

    refresh_calls.clear()
    assert _refresh(url) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"patient {pid}: 122 windows recomputed in ")
    assert out[0].endswith("(1 step)")
    assert out[-1].startswith("done: 122 windows of 1 patient(s) recomputed in ")
    assert len(out) == 2 and not any(line.startswith(f"patient {empty}:") for line in out)
    assert refresh_calls == [(rows[0][0], rows[-1][0])]  # one step: 1 h < 2 h of windows
    with app.state.session_factory() as db:
        assert _rows(db) == rows  # bit for bit, current version
    # Reads find everything current (nothing recomputed) and answer as before the garbage:
    # the sessions cache that scored the old rows was dropped by the command.
    refresh_calls.clear()
    for what in ENDPOINTS:
        assert _get(client, t, pid, what) == untouched[what]
    assert refresh_calls == []

    assert _refresh(url) == 0  # idempotent
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"nothing to recompute: every stored fatigue window is at features version {FEATURES_VERSION}"
    ]
    assert refresh_calls == []


def test_an_interrupted_run_keeps_its_committed_steps_and_a_rerun_finishes(
    live: tuple[str, FastAPI],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    refresh_calls: list[tuple[int, int]],
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        untouched = _get(client, t, pid, "sessions")
        rows = _rows(db)
    _garble(app)
    monkeypatch.setattr(fatigue_service, "RECOMPUTE_WINDOWS", 50)  # 122 windows: steps 50, 50, 22

    spy = fatigue_service.refresh_starts
    refresh_calls.clear()

    def dies_at_second_step(db: Session, **kw: Any) -> int:
        if len(refresh_calls) == 1:
            raise RuntimeError("killed")
        return spy(db, **kw)

    with monkeypatch.context() as m:
        m.setattr(fatigue_service, "refresh_starts", dies_at_second_step)
        with pytest.raises(RuntimeError, match="killed"):
            _refresh(url)
    capsys.readouterr()
    assert refresh_calls == [(rows[0][0], rows[49][0])]
    with app.state.session_factory() as db:
        after = _rows(db)
    assert after[:50] == rows[:50]  # the committed step is current, bit for bit
    assert {(d, v) for _, d, v in after[50:]} == {(GARBAGE, 1)}  # the failed step rolled back

    refresh_calls.clear()
    assert _refresh(url) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"patient {pid}: 72 windows recomputed in ")
    assert out[0].endswith("(2 steps)")
    assert refresh_calls == [(rows[50][0], rows[99][0]), (rows[100][0], rows[-1][0])]
    with app.state.session_factory() as db:
        assert _rows(db) == rows
    assert _get(client, t, pid, "sessions") == untouched
    assert len(refresh_calls) == 2


def test_a_read_after_an_interrupted_run_does_only_the_remaining_steps(
    live: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch, refresh_calls: list[tuple[int, int]]
) -> None:
    _url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        untouched = {what: _get(client, t, pid, what) for what in ENDPOINTS}
        rows = _rows(db)
    _garble(app)
    monkeypatch.setattr(fatigue_service, "RECOMPUTE_WINDOWS", 50)
    refresh_calls.clear()
    with app.state.session_factory() as db:  # one step, as the background refresh does it
        n, cursor = fatigue_refresh.refresh_step(db, patient_id=pid)
        db.commit()
    assert n == 50 and cursor is not None and cursor[2] == rows[49][0]
    assert _get(client, t, pid, "fatigue") == untouched["fatigue"]
    assert refresh_calls == [(rows[0][0], rows[49][0]), (rows[50][0], rows[99][0])] + [
        (rows[100][0], rows[-1][0])
    ]
    for what in ENDPOINTS:
        assert _get(client, t, pid, what) == untouched[what]
    assert len(refresh_calls) == 3
    with app.state.session_factory() as db:
        assert _rows(db) == rows


def test_patient_option_refreshes_only_that_patient(
    live: tuple[str, FastAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        other = _second_patient(client, db, t)
    _garble(app)
    assert _refresh(url, "--patient", str(other)) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"patient {other}: 122 windows")
    with app.state.session_factory() as db:
        assert fatigue_refresh.stale_patients(db) == [pid]
    assert _refresh(url, "--patient", str(pid), str(other)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"patient {pid}: 122 windows") and len(out) == 2


def test_unknown_patient_and_bad_url_are_one_line_errors(
    live: tuple[str, FastAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _app = live
    assert _refresh(url, "--patient", "424242") == 2
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
    live: tuple[str, FastAPI],
    refresh_calls: list[tuple[int, int]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        other = _second_patient(client, db, t)
        untouched = _get(client, t, pid, "sessions")
        rows = _rows(db)
    _garble(app)
    # A second app on the same database, as `otmon serve` builds it after an upgrade.
    started = create_app(Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path))
    refresh_calls.clear()
    with caplog.at_level(logging.INFO, logger="api.services.fatigue_refresh"):
        refresher = _run_lifespan(started)
    assert [(r.patient_id, r.windows) for r in refresher.done] == [(pid, 122), (other, 122)]
    assert refresher.failed == [] and len(refresh_calls) == 2
    assert "fatigue refresh: done, 244 windows of 2 patient(s) recomputed" in caplog.text
    with app.state.session_factory() as db:
        assert fatigue_refresh.stale_patients(db) == []
        assert len(rows) == 244 and sorted(_rows(db)) == sorted(rows)  # bit for bit
    refresh_calls.clear()
    assert _get(client, t, pid, "sessions") == untouched and refresh_calls == []


def test_the_background_refresh_logs_a_failing_patient_and_continues(
    live: tuple[str, FastAPI],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        other = _second_patient(client, db, t)
    _garble(app)
    real = fatigue_refresh.refresh_step

    def broken_for_pid(db: Session, *, patient_id: int, after: Any = None) -> Any:
        if patient_id == pid:
            raise RuntimeError("disk on fire")
        return real(db, patient_id=patient_id, after=after)

    monkeypatch.setattr(fatigue_refresh, "refresh_step", broken_for_pid)
    started = create_app(Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path))
    with caplog.at_level(logging.INFO, logger="api.services.fatigue_refresh"):
        refresher = _run_lifespan(started)
    assert refresher.failed == [pid]
    assert [(r.patient_id, r.windows) for r in refresher.done] == [(other, 122)]
    assert f"patient {pid} failed; continuing" in caplog.text and "disk on fire" in caplog.text
    with app.state.session_factory() as db:
        assert fatigue_refresh.stale_patients(db) == [pid]


def test_the_background_refresh_can_be_switched_off(
    live: tuple[str, FastAPI], tmp_path: Path
) -> None:
    url, app = live
    client = ApiClient(app)
    with app.state.session_factory() as db:
        _ingest_capture(client, db, app)
    _garble(app)
    off = Settings(
        database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path, fatigue_refresh_on_start=False
    )
    started = create_app(off)

    async def run() -> None:
        async with started.router.lifespan_context(started):
            assert started.state.fatigue_refresher is None

    asyncio.run(run())
    with app.state.session_factory() as db:
        assert len(fatigue_refresh.stale_patients(db)) == 1
