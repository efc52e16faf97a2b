"""Login: OAuth2 password flow returning a bearer access token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import DbSession, SettingsDep
from api.schemas import Token
from api.security import create_access_token
from api.services import users

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DbSession,
    settings: SettingsDep,
    request: Request,
) -> Token:
    """Exchange email (as ``username``) and password for an access token."""
    user = users.authenticate(db, email=form.username, password=form.password)
    token = create_access_token(
        user_id=user.id, secret_key=request.app.state.secret_key, ttl_s=settings.token_ttl_s
    )
    return Token(access_token=token, token_type="bearer")
