"""Collector exceptions.

Tree::

    CollectorError
    ├── DecodeError               a notification payload cannot be decoded (skipped and counted)
    ├── CaptureFormatError        a capture file is malformed (names the file and the line)
    ├── BluetoothUnavailableError no adapter / no BlueZ / BLE stack not reachable
    ├── DeviceNotFoundError       no advertising device matched the profile
    ├── ProtocolError             the device answered a command with an error (e.g. CP status)
    └── UploadError               the service rejected an upload or could not be reached
"""

from __future__ import annotations

from pathlib import Path


class CollectorError(Exception):
    """Root of all collector errors."""


class DecodeError(CollectorError):
    """A notification payload cannot be decoded."""


class CaptureFormatError(CollectorError):
    """A capture file line is malformed."""

    def __init__(self, path: str | Path, line_no: int, reason: str) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.reason = reason
        super().__init__(f"{self.path}:{line_no}: {reason}")


class BluetoothUnavailableError(CollectorError):
    """No usable Bluetooth adapter or BLE stack."""


class DeviceNotFoundError(CollectorError):
    """No advertising device matched the profile within the scan timeout."""


class ProtocolError(CollectorError):
    """The device answered a command with an error or an unexpected response."""


class UploadError(CollectorError):
    """The service rejected an upload (4xx) or stayed unreachable after retries."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)
