"""Settings: environment prefix, default SQLite in the data dir, persisted generated secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings, get_settings


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTMON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OTMON_TOKEN_TTL_S", "120")
    monkeypatch.delenv("OTMON_DATABASE_URL", raising=False)
    monkeypatch.delenv("OTMON_SECRET_KEY", raising=False)
    s = Settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'otmon.sqlite3'}"
    assert s.token_ttl_s == 120
    assert s.max_block_samples == 360_000
    assert s.max_body_bytes == 16 * 1024 * 1024
    assert s.secret_key is None


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTMON_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_generated_secret_is_random_persisted_and_private(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    s = Settings(database_url=f"sqlite:///{db_dir / 'x.sqlite3'}", data_dir=tmp_path / "data")
    key = s.resolved_secret_key()
    path = db_dir / "secret_key"
    assert path.is_file() and (path.stat().st_mode & 0o077) == 0
    assert len(key) >= 32
    assert Settings(database_url=s.database_url).resolved_secret_key() == key  # a restart
    other = Settings(database_url=f"sqlite:///{tmp_path / 'other' / 'y.sqlite3'}")
    assert other.resolved_secret_key() != key


def test_secret_for_postgres_lives_in_data_dir(tmp_path: Path) -> None:
    s = Settings(database_url="postgresql+psycopg://u@localhost/db", data_dir=tmp_path)
    s.resolved_secret_key()
    assert (tmp_path / "secret_key").is_file()


def test_short_secret_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(secret_key="short")
