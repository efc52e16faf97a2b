"""Service configuration from the environment (prefix ``OTMON_``)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

# Shortest secret accepted for HS256 (RFC 7518 §3.2: key at least as long as the hash, 256 bits).
MIN_SECRET_KEY_CHARS = 32
SECRET_KEY_FILE = "secret_key"


class Settings(BaseSettings):
    """Settings of the therapist service; every field can be set with ``OTMON_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="OTMON_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("otmon")))
    # Default: SQLite file ``otmon.sqlite3`` in ``data_dir``; PostgreSQL via postgresql+psycopg://…
    database_url: str = ""
    # HS256 key for access tokens; when unset one is generated once and kept in a file (0600).
    secret_key: SecretStr | None = None
    # Access-token lifetime; 15 min follows the JWT best-practice guidance (ecosystem.md §2.2).
    token_ttl_s: int = Field(default=900, gt=0)
    # 360 000 samples = 2 h at 50 Hz, the largest block one upload may carry (architecture.md).
    max_block_samples: int = Field(default=360_000, gt=0)
    # 16 MiB request body limit for ingest (architecture.md).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # After start-up, recompute stored fatigue windows of another features version in the
    # background, one bounded step per transaction (docs/fatigue-api.md, "Features version").
    fatigue_refresh_on_start: bool = True

    @field_validator("secret_key")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_CHARS:
            raise ValueError(f"secret_key must have at least {MIN_SECRET_KEY_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'otmon.sqlite3'}"
        return self

    def secret_key_path(self) -> Path:
        """Where a generated secret is kept: beside a SQLite database file, else in data_dir."""
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).parent / SECRET_KEY_FILE
        return self.data_dir / SECRET_KEY_FILE

    def resolved_secret_key(self) -> str:
        """Return the configured secret, or load (creating once) the persisted random one."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.secret_key_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
            if len(key) < MIN_SECRET_KEY_CHARS:
                raise ValueError(f"secret key file {path} is too short; delete it to regenerate")
            return key
        key = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
        return key


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
