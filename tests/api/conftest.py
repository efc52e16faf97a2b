"""API test fixtures: every test runs on SQLite and, if OTMON_TEST_DATABASE_URL is set, PostgreSQL.

One fresh database per backend and session, migrated with Alembic; each test runs in a
session joined to an outer transaction that is rolled back afterwards (SQLAlchemy's
"external transaction" recipe), so tests are isolated and order-independent.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
import asyncio
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.app import create_app
from api.db import make_engine, upgrade
from api.deps import get_db
from api.settings import Settings

TEST_SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
PG_ENV = "OTMON_TEST_DATABASE_URL"

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


def _pg_admin_dsn(url: str) -> str:
    """libpq DSN of the server's maintenance database, for CREATE/DROP DATABASE."""
    u = make_url(url).set(drivername="postgresql", database="postgres")
    return u.render_as_string(hide_password=False)


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, migrated, empty database on ``backend``; PostgreSQL ones are dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'otmon.sqlite3'}"
        upgrade(url)
        yield url
        return
    base = os.environ[PG_ENV]
    name = f"otmon_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_dsn(base)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh, migrated database for the whole session."""
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints of an outer transaction rolled back at the end."""
    conn = engine.connect()
    outer = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        conn.close()


class ApiClient:
    """Synchronous facade over ``httpx.AsyncClient`` + ``ASGITransport`` (real HTTP semantics).

    starlette's TestClient warns (an error under our filterwarnings) with httpx, so requests
    go through httpx's own ASGI transport, one event loop per request.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.request(method, url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return asyncio.run(self._send(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(app: FastAPI, db: Session) -> Iterator[ApiClient]:
    def _db() -> Iterator[Session]:
        yield db

    app.dependency_overrides[get_db] = _db
    try:
        yield ApiClient(app)
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def refresh_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every (first, last) window range recomputed by `fatigue.refresh_starts` (ingest or read)."""
    from api.services import fatigue as fatigue_service

    calls: list[tuple[int, int]] = []
    real = fatigue_service.refresh_starts

    def spy(db: Session, **kw: Any) -> int:
        calls.append((kw["first_start_ns"], kw["last_start_ns"]))
        return real(db, **kw)

    monkeypatch.setattr(fatigue_service, "refresh_starts", spy)
    return calls
