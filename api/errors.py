"""Domain errors of the service; ``create_app`` maps them to HTTP.

ApiError
 ├── NotFound          -> 404 (also for objects owned by someone else)
 ├── Conflict          -> 409
 ├── Invalid           -> 422
 ├── TooLarge          -> 413
 └── Unauthenticated   -> 401
"""

from __future__ import annotations


class ApiError(Exception):
    """Root of the service's domain errors."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ApiError):
    """The object does not exist or is not visible to the caller."""

    status_code = 404

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")


class Conflict(ApiError):
    """The request contradicts stored state (duplicate key, overlapping data)."""

    status_code = 409


class Invalid(ApiError):
    """The request is well-formed HTTP but its content is invalid."""

    status_code = 422


class TooLarge(ApiError):
    """The request or one of its parts exceeds a configured limit."""

    status_code = 413


class Unauthenticated(ApiError):
    """Missing, invalid, expired or revoked credentials."""

    status_code = 401
