"""Alembic migrations: the migrated schema equals the models; create_app creates no tables."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from api.app import create_app
from api.db import alembic_config, make_engine, upgrade
from api.models import Base
from api.settings import Settings
from tests.api.conftest import TEST_SECRET


def test_migrated_schema_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert ctx.get_current_revision() == head


def test_upgrade_is_idempotent(database_url: str, engine: Engine) -> None:
    upgrade(database_url)
    with engine.connect() as conn:
        assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())


def test_create_app_does_not_create_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = create_app(Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path))
    app.state.engine.dispose()
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        eng.dispose()
    upgrade(url)
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            assert "alembic_version" in inspect(conn).get_table_names()
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        eng.dispose()
