"""The spine end to end: capture -> bleak -> decoder -> collector -> HTTP -> database -> days.

The service runs as a real `otmon serve` process on a real port; the collector is a real
`otmon replay` process that drives the unmodified bleak client over the recorded capture.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from otmon.demo import demo_capture
from tests.service_process import running_service

PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
PMD_HEADER_BYTES = 10
BYTES_PER_RAW_SAMPLE = 6  # 3 axes x int16
PATIENT_TZ = "America/Chicago"
EMAIL = "ot@clinic.example"
PASSWORD = "correct horse battery"


def _otmon(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otmon", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def capture_sample_count(path: Path) -> int:
    """Samples carried by the data notifications of a raw-frame Polar capture, counted from bytes."""
    total = 0
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            event = json.loads(line)
            if event["kind"] == "notify" and event["char"] == PMD_DATA_UUID:
                payload = bytes.fromhex(event["hex"])
                total += (len(payload) - PMD_HEADER_BYTES) // BYTES_PER_RAW_SAMPLE
    return total


def _postgres_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(os.environ["OTMON_TEST_DATABASE_URL"])
    name = f"otmon_e2e_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'otmon.sqlite3'}"
        return
    if not os.environ.get("OTMON_TEST_DATABASE_URL"):
        pytest.skip("OTMON_TEST_DATABASE_URL not set")
    yield from _postgres_database()


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running `otmon serve` with one therapist; yields (base URL, environment)."""
    env = {**os.environ, "OTMON_DATABASE_URL": database_url, "OTMON_DATA_DIR": str(tmp_path)}
    created = _otmon("user", "add", "--email", EMAIL, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    with running_service(env, tmp_path / "serve.log") as url:
        yield url, env


@contextmanager
def _therapist(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as http:
        token = http.post("/auth/token", data={"username": EMAIL, "password": PASSWORD})
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http


def test_replayed_capture_reaches_the_days_summary(service: tuple[str, dict[str, str]]) -> None:
    url, env = service
    capture = demo_capture()
    expected_samples = capture_sample_count(capture)
    assert expected_samples > 100_000  # one hour at 50 Hz, not a toy

    with _therapist(url) as http:
        patient = http.post("/patients", json={"code": "p-e2e", "timezone": PATIENT_TZ}).json()
        device = http.post(
            f"/patients/{patient['id']}/devices", json={"profile": "polar_pmd", "name": "H10"}
        ).json()

        replay = _otmon("replay", str(capture), "--server", url, "--token", device["token"], env=env)
        assert replay.returncode == 0, replay.stderr
        assert f"{expected_samples} samples" in replay.stdout

        days = http.get(f"/patients/{patient['id']}/days")
        assert days.status_code == 200, days.text
        assert sum(day["samples"] for day in days.json()) == expected_samples

        analyzed = _otmon("analyze", str(capture), "--json", "--tz", PATIENT_TZ, env=env)
        assert analyzed.returncode == 0, analyzed.stderr
        assert json.loads(analyzed.stdout)["days"] == days.json()
        sessions = http.get(f"/patients/{patient['id']}/sessions")
        assert sessions.status_code == 200, sessions.text
        assert sessions.json() and json.loads(analyzed.stdout)["sessions"] == sessions.json()

        # The collector may resend after a crash: a second replay stores nothing twice.
        again = _otmon("replay", str(capture), "--server", url, "--token", device["token"], env=env)
        assert again.returncode == 0, again.stderr
        assert http.get(f"/patients/{patient['id']}/days").json() == days.json()
        assert http.get(f"/patients/{patient['id']}/sessions").json() == sessions.json()

    if env["OTMON_DATABASE_URL"].startswith("sqlite"):
        db_path = env["OTMON_DATABASE_URL"].removeprefix("sqlite:///")
        with sqlite3.connect(db_path) as conn:
            (stored,) = conn.execute("SELECT sum(n_samples) FROM sample_blocks").fetchone()
        assert stored == expected_samples


def test_demo_serves_the_replayed_session(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "otmon", "demo", "--port", "0", "--json", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        line = demo.stdout.readline()
        assert line, demo.stderr.read() if demo.stderr else ""
        info = json.loads(line)
        assert set(info) == {"url", "email", "password"}
        url = info["url"].rstrip("/")
        assert httpx.get(f"{url}/", timeout=10).status_code == 200
        with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as http:
            login = http.post("/auth/token", data={"username": info["email"], "password": info["password"]})
            assert login.status_code == 200
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            (patient,) = http.get("/patients").json()
            days = http.get(f"/patients/{patient['id']}/days").json()
        assert sum(day["samples"] for day in days) == capture_sample_count(demo_capture())
        assert sum(day["wear_min"] for day in days) > 0
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.communicate()
    assert demo.returncode in (0, -signal.SIGINT, 130)
