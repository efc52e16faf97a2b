"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from api.db import make_engine, session_factory
from api.errors import ApiError, Unauthenticated
from api.routers import alerts, auth, dashboard, devices, fatigue, health, ingest, patients, sessions
from api.services.fatigue_refresh import FatigueRefresher
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # A unique constraint hit by a concurrent request (the services check first): the client
    # may retry. Any other error still propagates as a 500 and is logged.
    log.info("integrity error mapped to 409: %s", exc)
    return JSONResponse(
        {"detail": "the request conflicts with data written concurrently; retry"}, status_code=409
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: ``get_settings()``).

    The database must already be migrated (``api.db.upgrade``); tables are never created here.
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresher = None
        if settings.fatigue_refresh_on_start:
            refresher = FatigueRefresher(app.state.session_factory)
            refresher.start()
        app.state.fatigue_refresher = refresher
        yield
        if refresher is not None:  # it stops after its current step (one bounded transaction)
            await asyncio.to_thread(refresher.stop)
        engine.dispose()

    app = FastAPI(title="otmon", version="0.1.0", lifespan=lifespan, openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.secret_key = settings.resolved_secret_key()
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(IntegrityError, _integrity_error)

    v1 = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, patients, devices, ingest, sessions, fatigue, alerts):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(dashboard.router)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith(API_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
