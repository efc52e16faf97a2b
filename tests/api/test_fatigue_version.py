"""Stored fatigue windows of another features version are recomputed before they are scored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.orm import Session

from analysis.fatigue_windows import FEATURES_VERSION
from api.app import create_app
from api.db import alembic_config, make_engine, upgrade
from api.models import FatigueWindowRow, SessionCacheState
from api.services import fatigue as fatigue_service
from api.services import fatigue_windows, sessions
from api.settings import Settings
from tests.api.conftest import BACKENDS, TEST_SECRET, ApiClient, fresh_database
from tests.api.factories import block_json, make_device, make_patient, make_therapist
from tests.api.test_sessions import TZ, cli_sessions, fixture_blocks

INGEST = "/api/v1/ingest"
#: A stored row of garbage: every column 7.0 (analysable true, features far from any real one).
GARBAGE = np.full(fatigue_windows.ROW_VALUES, 7.0, dtype="<f8").tobytes()


def _ingest_capture(client: ApiClient, db: Session, app: FastAPI) -> tuple[Any, int]:
    """The 1-h wrist capture of tests/api/test_sessions.py, uploaded in one request."""
    t = make_therapist(db, app)
    patient = make_patient(db, t, tz=TZ)
    _device, headers = make_device(db, patient)
    payload = [
        block_json(b.accel_g, seq=i, t0_ns=b.t0_ns, fs_hz=b.fs_hz)
        for i, b in enumerate(fixture_blocks())
    ]
    r = client.post(INGEST, headers=headers, json={"blocks": payload})
    assert r.status_code == 200, r.text
    return t, patient.id


def _get(client: ApiClient, t: Any, pid: int, what: str) -> Any:
    r = client.get(f"/api/v1/patients/{pid}/{what}", headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()


def _rows(db: Session) -> list[tuple[int, bytes, int | None]]:
    db.expire_all()
    return [
        (int(s), bytes(d), v)
        for s, d, v in db.execute(
            select(
                FatigueWindowRow.start_ns, FatigueWindowRow.data, FatigueWindowRow.features_version
            ).order_by(FatigueWindowRow.start_ns)
        )
    ]


@pytest.mark.parametrize("endpoint", ["sessions", "fatigue", "alerts"])
def test_rows_of_another_version_are_recomputed_at_the_next_read(
    client: ApiClient,
    db: Session,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    refresh_calls: list[tuple[int, int]],
    endpoint: str,
) -> None:
    t, pid = _ingest_capture(client, db, app)
    untouched = {what: _get(client, t, pid, what) for what in ("sessions", "fatigue", "alerts")}
    assert untouched["sessions"] == cli_sessions()  # `otmon analyze` of the same file
    assert untouched["sessions"][0]["fatigue"]["quality"] == "ok"
    rows = _rows(db)
    assert len(rows) == 122 and {v for _, _, v in rows} == {FEATURES_VERSION}

    # Rows of version 1 with garbage features, written behind the service's back.
    db.execute(text("UPDATE fatigue_windows SET features_version = 1, data = :g"), {"g": GARBAGE})
    db.commit()
    # Control: scored as stored (the check switched off), the garbage changes the fatigue.
    with monkeypatch.context() as m:
        m.setattr(fatigue_service, "ensure_current", lambda db, *, patient_id: 0)
        sessions.invalidate(db, patient_id=pid)
        db.commit()
        garbled = _get(client, t, pid, "sessions")
    assert garbled[0]["fatigue"] != untouched["sessions"][0]["fatigue"]
    assert {v for _, _, v in _rows(db)} == {1}  # and the cache now holds the garbled objects

    refresh_calls.clear()
    read = _get(client, t, pid, endpoint)
    assert read == untouched[endpoint]
    assert _rows(db) == rows  # every row recomputed, bit for bit, with the current version
    assert refresh_calls == [(rows[0][0], rows[-1][0])]  # one range: the stale rows' span
    # The cache that scored the garbage was dropped: every endpoint answers as before.
    for what in ("sessions", "fatigue", "alerts"):
        assert _get(client, t, pid, what) == untouched[what]
    assert len(refresh_calls) == 1


def test_only_stale_rows_are_recomputed(
    client: ApiClient, db: Session, app: FastAPI, refresh_calls: list[tuple[int, int]]
) -> None:
    t, pid = _ingest_capture(client, db, app)
    untouched = _get(client, t, pid, "sessions")
    rows = _rows(db)
    stale = [rows[k][0] for k in (10, 11, 12, 60)]  # two separate stretches, one NULL
    db.execute(
        text(
            "UPDATE fatigue_windows SET features_version = 1, data = :g WHERE start_ns IN (:a, :b, :c)"
        ),
        {"g": GARBAGE, "a": stale[0], "b": stale[1], "c": stale[2]},
    )
    db.execute(
        text("UPDATE fatigue_windows SET features_version = NULL, data = :g WHERE start_ns = :a"),
        {"g": GARBAGE, "a": stale[3]},
    )
    db.commit()
    refresh_calls.clear()
    assert fatigue_service.ensure_current(db, patient_id=pid) == 4
    assert refresh_calls == [(stale[0], stale[2]), (stale[3], stale[3])]
    db.commit()
    assert _rows(db) == rows
    assert _get(client, t, pid, "sessions") == untouched
    assert len(refresh_calls) == 2


def test_a_read_with_every_row_current_recomputes_nothing(
    client: ApiClient,
    db: Session,
    app: FastAPI,
    engine: Engine,
    refresh_calls: list[tuple[int, int]],
) -> None:
    t, pid = _ingest_capture(client, db, app)
    assert refresh_calls  # ingest computes the windows through the same function
    refresh_calls.clear()
    first = _get(client, t, pid, "sessions")  # fills the cache (reads the stored windows)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "fatigue_windows" in sql:
            statements.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for what in ("sessions", "fatigue", "alerts"):
            _get(client, t, pid, what)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert refresh_calls == []
    # One query on fatigue_windows per read: the staleness check (the cache answers the rest).
    assert len(statements) == 3 and all("features_version" in s for s in statements)
    assert fatigue_service.ensure_current(db, patient_id=pid) == 0
    assert db.get(SessionCacheState, pid) is not None  # the cache was kept
    assert _get(client, t, pid, "sessions") == first and refresh_calls == []


def test_the_staleness_check_uses_the_index(
    client: ApiClient, db: Session, app: FastAPI, backend: str
) -> None:
    _t, pid = _ingest_capture(client, db, app)
    sql = str(
        fatigue_service.stale_probe(pid).compile(
            db.get_bind(), compile_kwargs={"literal_binds": True}
        )
    )
    if backend == "sqlite":
        plan = " ".join(str(r[-1]) for r in db.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    else:  # the planner may prefer a scan of a table this small; the index must be usable
        db.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(str(r[0]) for r in db.execute(text(f"EXPLAIN {sql}")))
    assert "ix_fatigue_windows_device_version" in plan, plan
    assert "SORT" not in plan.upper(), plan  # both ends read in index order


V = FEATURES_VERSION


@pytest.mark.parametrize(
    ("versions", "stale"),
    [
        ([V, V, V, V, V], False),
        ([V, V, None, V, V], True),
        ([V, V - 1, V, V, V], True),
        ([V, V, V, V + 1, V], True),
        ([None, V, V, V, V - 1], True),
        ([None] * 5, True),
        ([V - 1] * 5, True),
    ],
)
def test_the_probe_finds_any_row_of_another_version(
    client: ApiClient, db: Session, app: FastAPI, versions: list[int | None], stale: bool
) -> None:
    t = make_therapist(db, app)
    patient = make_patient(db, t)
    device, _headers = make_device(db, patient)
    _other, _ = make_device(db, patient)  # a device without windows is never stale
    probe = fatigue_service.stale_probe(patient.id)
    assert db.scalars(probe).first() is None
    for k, version in enumerate(versions):
        db.add(
            FatigueWindowRow(
                device_id=device.id,
                stream="acc",
                start_ns=k * fatigue_windows.STEP_NS,
                n_samples=1,
                data=GARBAGE,
                features_version=version,
            )
        )
    db.flush()
    assert db.scalars(probe).first() == (device.id if stale else None)


@pytest.fixture(params=BACKENDS)
def live_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """An app on a fresh database of its own (real commits, so migrations can run between)."""
    with fresh_database(request.param, tmp_path) as url:
        app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path))
        try:
            yield url, app
        finally:
            app.state.engine.dispose()


def _migrate(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def test_migration_0005_marks_stored_windows_for_recomputation(
    live_app: tuple[str, FastAPI],
) -> None:
    url, app = live_app
    client = ApiClient(app)
    with app.state.session_factory() as db:
        t, pid = _ingest_capture(client, db, app)
        before = _get(client, t, pid, "sessions")
        rows = _rows(db)
    assert before == cli_sessions() and len(rows) == 122
    # A database at 0004 holding these windows (and a valid sessions cache).
    app.state.engine.dispose()
    _migrate(url, "0004")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("fatigue_windows")}
            assert "features_version" not in columns and "data" in columns
        upgrade(url)  # 0004 -> head
        with engine.connect() as conn:
            n, n_null = conn.execute(
                select(
                    func.count(), func.count().filter(FatigueWindowRow.features_version.is_(None))
                ).select_from(FatigueWindowRow)
            ).one()
            assert n == n_null == 122  # old rows: version unknown
    finally:
        engine.dispose()
    assert _get(client, t, pid, "sessions") == before
    with app.state.session_factory() as db:
        assert _rows(db) == rows  # recomputed with the current version, bit for bit
