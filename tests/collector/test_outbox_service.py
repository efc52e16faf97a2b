"""Shared by the outbox tests: the real service on a SQLite file, a device token, fault injection."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from api.db import upgrade
from api.models import SampleBlockRow
from api.services.ingest import load_accel
from api.settings import Settings
from tests.api.factories import make_device, make_patient, make_therapist
from tests.collector.test_outbox_source import checksum, source_block  # noqa: F401 (re-export)

SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def make_service(directory: Path, max_body_bytes: int = 16 * 1024 * 1024) -> tuple[FastAPI, str]:
    """The real app on a fresh migrated SQLite file (reused if present) and a device token."""
    url = f"sqlite:///{directory / 'server.sqlite3'}"
    fresh = not (directory / "server.sqlite3").exists()
    upgrade(url)
    settings = Settings(
        database_url=url, secret_key=SECRET, data_dir=directory, max_body_bytes=max_body_bytes
    )
    app = create_app(settings)
    token_file = directory / "device-token"
    if fresh:
        with Session(app.state.engine) as db:
            therapist = make_therapist(db, app)
            _, headers = make_device(db, make_patient(db, therapist))
        token_file.write_text(headers["Authorization"].split()[1])
    return app, token_file.read_text()


def stored(app: FastAPI) -> list[SampleBlockRow]:
    """Every stored block, in (stream, seq) order."""
    with Session(app.state.engine) as db:
        rows = db.scalars(
            select(SampleBlockRow).order_by(SampleBlockRow.stream, SampleBlockRow.seq)
        )
        return list(rows)


def stored_samples(app: FastAPI) -> list[np.ndarray]:
    return [load_accel(r) for r in stored(app)]


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    """The real app behind httpx.ASGITransport, with scripted or random faults in front.

    Faults: "503" (answer without reaching the app), "429" (Retry-After: 2), "cut" (connection
    error before the app), "cut_after" (the app commits, then the connection drops).
    """

    app: FastAPI
    script: list[str | None] = field(default_factory=list)
    p_5xx: float = 0.0
    p_cut: float = 0.0
    seed: int = 0
    seen: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inner = httpx.ASGITransport(app=self.app)
        self.rng = random.Random(self.seed)

    def _next_fault(self) -> str | None:
        if self.script:
            return self.script.pop(0)
        x = self.rng.random()
        if x < self.p_5xx:
            return "503"
        if x < self.p_5xx + self.p_cut:
            return self.rng.choice(["cut", "cut_after"])
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._next_fault()
        self.seen.append(fault)
        if fault == "503":
            return httpx.Response(503, json={"detail": "injected outage"})
        if fault == "429":
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow down"})
        if fault == "cut":
            raise httpx.ConnectError("injected: connection refused")
        response = await self.inner.handle_async_request(request)
        if fault == "cut_after":
            await response.aread()
            raise httpx.ReadError("injected: connection cut after the server answered")
        return response
