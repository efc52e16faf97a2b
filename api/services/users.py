"""Therapist and admin accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import Conflict, Invalid, Unauthenticated
from api.models import User
from api.security import hash_password, verify_password

ROLES = ("therapist", "admin")


def _normalise(email: str) -> str:
    return email.strip().lower()


def create(db: Session, *, email: str, password: str, role: str = "therapist") -> User:
    """Create a user (flushed, not committed).

    Raises:
        Conflict: a user with this email exists.
        Invalid: unknown role, empty email or password.
    """
    email = _normalise(email)
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if "@" not in email or not password:
        raise Invalid("an email address and a password are required")
    if db.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role, is_active=True)
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, *, email: str, password: str) -> User:
    """Return the active user with these credentials.

    Raises:
        Unauthenticated: unknown email, wrong password or inactive user (one message for all).
    """
    user = db.scalars(select(User).where(User.email == _normalise(email))).one_or_none()
    ok = verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        raise Unauthenticated("incorrect email or password")
    return user
