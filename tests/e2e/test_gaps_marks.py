"""Issue 4 end to end: a collector outbox with a gapped recording, its gap events and the
patient's task marks (`otmon task` processes) is drained by the real uploader into a real
`otmon serve`; the therapist sees the gaps by cause, the patient's session with its Borg rating
and note, and the device status — and the days equal `otmon analyze --json` of the capture."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.outbox import Outbox
from collector.outbox_upload import OutboxUploader
from collector.session import decode_capture
from tests.api.gapped_capture import write_gapped_capture
from tests.e2e.test_spine import EMAIL, PASSWORD, _postgres_database, _therapist
from tests.service_process import running_service

TZ = "America/Chicago"


def _otmon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otmon", *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


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
    created = subprocess.run(
        [sys.executable, "-m", "otmon", "user", "add", "--email", EMAIL, "--password-stdin"],
        env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
    )
    assert created.returncode == 0, created.stderr
    with running_service(env, tmp_path / "serve.log") as url:
        yield url, env


def test_gaps_marks_and_status_reach_the_therapist(service: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = service
    capture = write_gapped_capture(tmp_path / "gapped.capture.jsonl.gz")
    decoded = decode_capture(capture)
    blocks = sorted(decoded.blocks, key=lambda b: b.t0_ns)
    outbox_path = tmp_path / "outbox.sqlite3"
    with Outbox(outbox_path) as outbox:
        for i, block in enumerate(blocks):
            events = []
            if i and block.t0_ns - blocks[i - 1].end_ns > 60_000_000_000:  # across the reconnect
                events.append(("gap", {"stream": "acc", "start_ns": blocks[i - 1].end_ns, "end_ns": block.t0_ns,
                                       "cause": "ble_disconnect"}))
            outbox.put(block, events=events)
        for g in decoded.gaps:  # what the decoder found inside the connection
            outbox.put_event("gap", stream="acc", start_ns=g.start_ns, end_ns=g.start_ns + g.length_ns,
                             cause="device_drop")
    started = _otmon("task", "start", "cooking", "--outbox", str(outbox_path), env=env)
    assert started.returncode == 0, started.stderr
    stopped = _otmon("task", "stop", "--borg", "14", "--note", "felt dizzy", "--outbox", str(outbox_path), env=env)
    assert stopped.returncode == 0, stopped.stderr

    with _therapist(url) as http:
        patient = http.post("/patients", json={"code": "p-gaps", "timezone": TZ}).json()
        device = http.post(f"/patients/{patient['id']}/devices", json={"profile": "polar_pmd", "name": "H10"}).json()

        async def drain() -> None:
            with Outbox(outbox_path) as outbox:
                uploader = OutboxUploader(outbox, url, device["token"])
                try:
                    await uploader.drain()
                finally:
                    await uploader.aclose()
                left = outbox.backlog()
                assert (left.n_blocks, left.n_events, left.n_refused_blocks, left.n_refused_events) == (0, 0, 0, 0)

        asyncio.run(drain())

        analyzed = _otmon("analyze", str(capture), "--json", "--tz", TZ, env=env)
        assert analyzed.returncode == 0, analyzed.stderr
        report = json.loads(analyzed.stdout)
        days = http.get(f"/patients/{patient['id']}/days").json()
        assert days == report["days"]
        (day,) = days
        assert [g["cause"] for g in day["gaps"]] == ["ble_disconnect", "device_drop"]
        assert day["gaps"][1]["duration_s"] == 7.2

        sessions = http.get(f"/patients/{patient['id']}/sessions").json()
        detected = [s for s in sessions if s["source"] == "detected"]
        assert detected == report["sessions"]
        (marked,) = [s for s in sessions if s["source"] == "patient"]
        assert (marked["activity"], marked["borg"], marked["note"]) == ("cooking", 14, "felt dizzy")
        # Marked now, with no samples uploaded for that time: the whole session is a gap.
        assert [g["cause"] for g in marked["gaps"]] == ["unknown"]
        assert marked["gaps"][0]["duration_s"] == pytest.approx(marked["duration_s"], abs=0.01)

        (dev,) = http.get(f"/patients/{patient['id']}/devices").json()
        assert dev["last_seen"] is not None and dev["backlog_blocks"] == 0 and dev["backlog_samples"] == 0
        other = httpx.get(f"{url}/api/v1/patients/{patient['id']}/days")
        assert other.status_code == 401
