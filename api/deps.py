"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import Unauthenticated
from api.models import Device, User
from api.security import decode_access_token, hash_device_token
from api.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """Settings the running app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; the caller commits, anything uncommitted is rolled back."""
    with request.app.state.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DbSession = Annotated[Session, Depends(get_db)]

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_device_bearer = HTTPBearer(auto_error=False, scheme_name="DeviceToken")


def get_current_user(
    db: DbSession, request: Request, token: Annotated[str | None, Depends(_oauth2)]
) -> User:
    """The therapist or admin behind the bearer access token.

    Raises:
        Unauthenticated: no token, invalid or expired token, unknown or inactive user.
    """
    if not token:
        raise Unauthenticated("not authenticated")
    user_id = decode_access_token(token, secret_key=request.app.state.secret_key)
    user = db.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("invalid or expired access token")
    return user


def get_current_device(
    db: DbSession, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_device_bearer)]
) -> Device:
    """The device behind the bearer device token.

    Raises:
        Unauthenticated: no token, unknown token or revoked device.
    """
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("not authenticated")
    digest = hash_device_token(credentials.credentials)
    device = db.scalars(select(Device).where(Device.token_sha256 == digest)).one_or_none()
    if device is None or device.revoked_at is not None:
        raise Unauthenticated("unknown or revoked device token")
    # End the lookup's transaction now: on SQLite it holds the write lock while the body uploads.
    db.commit()
    return device


CurrentTherapist = Annotated[User, Depends(get_current_user)]
CurrentDevice = Annotated[Device, Depends(get_current_device)]

# Integer primary keys are 32-bit on PostgreSQL; larger path ids are invalid, not a 500.
INT32_MAX = 2**31 - 1
PatientId = Annotated[int, Path(ge=1, le=INT32_MAX, description="Patient id")]
