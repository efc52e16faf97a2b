"""Password hashing (Argon2id), access tokens (JWT HS256) and device tokens (SHA-256 at rest)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from api.errors import Unauthenticated

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "otmon-api"
# Device tokens start with this prefix so they are recognisable in logs and never mistaken for a JWT.
DEVICE_TOKEN_PREFIX = "otd_"
# 32 random bytes = 256 bits: guessing is hopeless, so an unsalted SHA-256 is a safe lookup key.
DEVICE_TOKEN_BYTES = 32

# argon2-cffi defaults (m=64 MiB, t=3, p=4) are above the OWASP floor (19 MiB, t=2, p=1).
_password_hash = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so login timing does not reveal accounts.
_DUMMY_HASH = _password_hash.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Return the Argon2id PHC string of ``password``."""
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check ``password`` against a stored hash (or a dummy one, in constant-ish time)."""
    return _password_hash.verify(password, password_hash or _DUMMY_HASH) and bool(password_hash)


def create_access_token(*, user_id: int, secret_key: str, ttl_s: int) -> str:
    """Return a signed access token for ``user_id`` valid for ``ttl_s`` seconds."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_s),
        "typ": "access",
    }
    return jwt.encode(claims, secret_key, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, *, secret_key: str) -> int:
    """Return the user id of a valid access token.

    Raises:
        Unauthenticated: bad signature, wrong algorithm or audience, expired, or claims missing.
    """
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "aud"]},
        )
        if claims.get("typ") != "access":
            raise Unauthenticated("not an access token")
        return int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise Unauthenticated("invalid or expired access token") from exc


def new_device_token() -> str:
    """Return a fresh high-entropy device token (shown once, stored only as its hash)."""
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(DEVICE_TOKEN_BYTES)


def hash_device_token(token: str) -> str:
    """Hex SHA-256 of a device token, the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
