"""The collector's TOML config file (`otmon collect --config FILE`): server, token, device, limits.

Every key is optional in the file (command-line flags override it), unknown keys are errors
(a typo must not silently fall back to a default), and a relative `outbox` path is taken
relative to the file. Errors name the file and the key in one line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from collector.errors import CollectorError
from collector.outbox import DEFAULT_LIMIT_BYTES, DEFAULT_WARN_FRACTION
from collector.outbox_events import MAX_LABEL_CHARS

MIB = 1024 * 1024


class ConfigError(CollectorError):
    """The config file cannot be read or a key has a bad value (names the file and the key)."""


def default_outbox_path() -> Path:
    """`outbox.sqlite3` in the user's data directory (as the service's default database)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("otmon")) / "outbox.sqlite3"


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Settings of `otmon collect` / `otmon status` (None: not given)."""

    server: str | None = None
    token: str | None = None
    device: str | None = None
    profile: str | None = None
    outbox: Path | None = None
    outbox_limit_mb: float = DEFAULT_LIMIT_BYTES / MIB
    outbox_warn_percent: float = DEFAULT_WARN_FRACTION * 100
    # On a graceful stop (Ctrl-C, SIGTERM, --duration) wait this long for the backlog to drain;
    # 10 s covers a normal backlog, anything left is sent at the next start.
    drain_timeout_s: float = 10.0
    # The label a button press on the wearable starts (architecture.md, issue 4).
    task_label: str = "task"

    @property
    def outbox_path(self) -> Path:
        """The outbox file to use."""
        return self.outbox if self.outbox is not None else default_outbox_path()

    @property
    def limit_bytes(self) -> int:
        """The outbox's disk limit in bytes."""
        return int(self.outbox_limit_mb * MIB)

    @property
    def warn_fraction(self) -> float:
        """The fill level (0..1) at which the outbox warns."""
        return self.outbox_warn_percent / 100


_STRINGS = ("server", "token", "device", "profile", "outbox", "task_label")
_KNOWN = tuple(f.name for f in fields(CollectorConfig))


def _number(path: Path, key: str, value: Any, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: key {key!r}: expected a number, got {value!r}")
    if not value > low or (high is not None and value > high):
        bound = f"> {low:g}" + ("" if high is None else f" and <= {high:g}")
        raise ConfigError(f"{path}: key {key!r}: must be {bound}, got {value!r}")
    return float(value)


def load_config(path: str | Path) -> CollectorConfig:
    """Read and check a config file.

    Raises:
        ConfigError: missing/unreadable file, invalid TOML (with its line), unknown key or bad value.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KNOWN:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(_KNOWN)})")
        if key in _STRINGS:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"{path}: key {key!r}: expected a non-empty string, got {value!r}"
                )
            values[key] = value.strip()
        elif key == "outbox_warn_percent":
            values[key] = _number(path, key, value, 0, 100)
        else:
            values[key] = _number(path, key, value, 0, None)
    if len(values.get("task_label", "")) > MAX_LABEL_CHARS:
        raise ConfigError(f"{path}: key 'task_label': at most {MAX_LABEL_CHARS} characters")
    if "outbox" in values:
        outbox = Path(values["outbox"]).expanduser()
        values["outbox"] = outbox if outbox.is_absolute() else path.parent / outbox
    if "server" in values and not values["server"].startswith(("http://", "https://")):
        raise ConfigError(
            f"{path}: key 'server': expected an http(s) URL, got {values['server']!r}"
        )
    return CollectorConfig(**values)


def merge(config: CollectorConfig, **overrides: Any) -> CollectorConfig:
    """`config` with every override that is not None (command-line flags win)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(_KNOWN)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    current = {k: getattr(config, k) for k in _KNOWN}
    return CollectorConfig(**{**current, **given})
