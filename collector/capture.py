"""Capture files (contract): `*.capture.jsonl[.gz]`, a header line then one event per line.

Header: `{"format": "otmon-capture", "version": 1, "profile", "settings", "device", "started_at"}`.
Event: `{"t_ns": host UTC ns, "kind": "notify"|"write"|"connect"|"disconnect", "char": UUID,
"hex": payload}`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from collector.errors import CaptureFormatError

FORMAT = "otmon-capture"
VERSION = 1
EVENT_KINDS = ("notify", "write", "connect", "disconnect")
EventKind = Literal["notify", "write", "connect", "disconnect"]
_HEADER_KEYS = ("format", "version", "profile", "settings", "device", "started_at")


@dataclass(frozen=True, slots=True)
class CaptureEvent:
    """One recorded BLE event."""

    t_ns: int
    kind: EventKind
    char: str
    hex: str

    @property
    def data(self) -> bytes:
        """Payload bytes."""
        return bytes.fromhex(self.hex)

    def to_json(self) -> dict[str, Any]:
        """Return the event as its JSON object."""
        return {"t_ns": self.t_ns, "kind": self.kind, "char": self.char, "hex": self.hex}


@dataclass(frozen=True, slots=True)
class Capture:
    """A whole capture: header mapping and events in file order."""

    header: dict[str, Any]
    events: list[CaptureEvent] = field(default_factory=list)

    @property
    def profile(self) -> str:
        """Name of the device profile that recorded it."""
        return str(self.header["profile"])

    @property
    def settings(self) -> dict[str, Any]:
        """Negotiated settings the decoder needs."""
        return dict(self.header.get("settings") or {})


def make_header(
    profile: str,
    settings: Mapping[str, Any],
    device: Mapping[str, Any],
    started_at: datetime | str | None = None,
) -> dict[str, Any]:
    """Build a capture header; `started_at` defaults to now (UTC)."""
    if started_at is None:
        started_at = datetime.now(UTC)
    if isinstance(started_at, datetime):
        started_at = started_at.isoformat()
    return {
        "format": FORMAT,
        "version": VERSION,
        "profile": profile,
        "settings": dict(settings),
        "device": dict(device),
        "started_at": started_at,
    }


def _open_read(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115


def _open_write(path: Path) -> IO[str] | _ClosingTextIO:
    if path.name.endswith(".gz"):
        # mtime=0 keeps gzip output byte-identical for identical content (reproducible fixtures).
        raw = open(path, "wb")  # noqa: SIM115 - closed with the wrapper
        return _ClosingTextIO(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0), raw)
    return open(path, "w", encoding="utf-8")  # noqa: SIM115


class _ClosingTextIO:
    """Text writer over a GzipFile that also closes the underlying file."""

    def __init__(self, gz: gzip.GzipFile, raw: IO[bytes]) -> None:
        self._gz = gz
        self._raw = raw

    def write(self, text: str) -> int:
        return self._gz.write(text.encode("utf-8"))

    def flush(self) -> None:
        self._gz.flush()
        self._raw.flush()

    def close(self) -> None:
        self._gz.close()
        self._raw.close()


class CaptureWriter:
    """Write a capture line by line, flushing each line so a crash loses at most one event.

    Events written before the header is known are buffered and written right after it.
    """

    def __init__(self, path: str | Path, header: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._file: IO[str] | _ClosingTextIO | None = _open_write(self.path)
        self._pending: list[CaptureEvent] = []
        self.header: dict[str, Any] | None = None
        self.n_events = 0
        if header is not None:
            self.write_header(header)

    def write_header(self, header: Mapping[str, Any]) -> None:
        """Write the header line (once), then any events buffered before it."""
        if self.header is not None:
            raise ValueError(f"{self.path}: header already written")
        missing = [k for k in _HEADER_KEYS if k not in header]
        if missing or header.get("format") != FORMAT:
            raise ValueError(f"capture header lacks {missing} or has the wrong format")
        self.header = dict(header)
        self._line(self.header)
        pending, self._pending = self._pending, []
        for event in pending:
            self._line(event.to_json())

    def write_event(self, t_ns: int, kind: EventKind, char: str, data: bytes = b"") -> None:
        """Record one event at host UTC `t_ns`."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"kind must be one of {EVENT_KINDS}, got {kind!r}")
        event = CaptureEvent(int(t_ns), kind, char, bytes(data).hex())
        self.n_events += 1
        if self.header is None:
            self._pending.append(event)
        else:
            self._line(event.to_json())

    def _line(self, obj: Mapping[str, Any]) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: capture already closed")
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file; a header-less capture gets a minimal header so it stays readable."""
        if self._file is None:
            return
        if self.header is None:
            self.write_header(make_header("unknown", {}, {}))
        self._file.close()
        self._file = None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parse_event(obj: Any) -> CaptureEvent:
    if not isinstance(obj, dict):
        raise ValueError("event is not a JSON object")
    t_ns, kind, char, hex_ = obj.get("t_ns"), obj.get("kind"), obj.get("char"), obj.get("hex")
    if not isinstance(t_ns, int) or isinstance(t_ns, bool) or t_ns < 0:
        raise ValueError(f"t_ns must be a non-negative integer, got {t_ns!r}")
    if kind not in EVENT_KINDS:
        raise ValueError(f"kind must be one of {EVENT_KINDS}, got {kind!r}")
    if not isinstance(char, str):
        raise ValueError(f"char must be a string, got {char!r}")
    if not isinstance(hex_, str):
        raise ValueError(f"hex must be a string, got {hex_!r}")
    bytes.fromhex(hex_)  # ValueError names the bad character
    return CaptureEvent(t_ns, kind, char.lower(), hex_.lower())


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of a capture file, gz or plain."""
    try:
        with _open_read(path) as f:
            yield from enumerate(f, start=1)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CaptureFormatError(path, 0, f"cannot read file: {exc}") from exc


def read_capture(path: str | Path) -> Capture:
    """Read a capture file.

    Raises:
        CaptureFormatError: a malformed line (the message names the file and the line).
    """
    path = Path(path)
    header: dict[str, Any] | None = None
    events: list[CaptureEvent] = []
    for no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CaptureFormatError(path, no, f"not JSON: {exc.msg}") from exc
        if header is None:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise CaptureFormatError(path, no, f"first line is not an {FORMAT} header")
            if obj.get("version") != VERSION:
                raise CaptureFormatError(path, no, f"unsupported version {obj.get('version')!r}")
            missing = [k for k in _HEADER_KEYS if k not in obj]
            if missing:
                raise CaptureFormatError(path, no, f"header lacks {', '.join(missing)}")
            header = obj
            continue
        try:
            events.append(_parse_event(obj))
        except ValueError as exc:
            raise CaptureFormatError(path, no, str(exc)) from exc
    if header is None:
        raise CaptureFormatError(path, 1, "empty capture (no header)")
    return Capture(header, events)
