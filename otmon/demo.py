"""`otmon demo`: the service and a collector as two processes, as at a clinic and a home."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from otmon.cli import CliError

DEMO_EMAIL = "therapist@demo.otmon.example"
DEMO_PATIENT_CODE = "demo-001"
# The fixture was recorded in Kansas (see fixtures/README.md); its days read best there.
DEMO_PATIENT_TZ = "America/Chicago"
SERVICE_START_TIMEOUT_S = 60.0


def demo_capture() -> Path:
    """The fixture capture replayed by the demo."""
    import fixtures

    path = Path(fixtures.__file__).parent / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
    if not path.is_file():
        raise CliError(f"demo capture missing: {path}")
    return path


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _credentials(data_dir: Path, database_url: str) -> str:
    """Create the demo therapist once per data dir; return its password."""
    from api.db import make_engine, session_factory, upgrade
    from api.services import users

    stored = data_dir / "demo-login.json"
    if stored.is_file():
        return str(json.loads(stored.read_text())["password"])
    password = secrets.token_urlsafe(12)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as db:
            users.create(db, email=DEMO_EMAIL, password=password, role="therapist")
            db.commit()
    finally:
        engine.dispose()
    stored.write_text(json.dumps({"email": DEMO_EMAIL, "password": password}))
    stored.chmod(0o600)
    return password


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CliError(f"the service exited with code {server.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise CliError(f"the service did not answer on {url} within {SERVICE_START_TIMEOUT_S:.0f} s")


def _device_token(url: str, password: str) -> str:
    """Log in as the demo therapist, make sure the demo patient exists, register a device."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=30.0) as http:
        login = http.post("/auth/token", data={"username": DEMO_EMAIL, "password": password})
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        patients = http.get("/patients").raise_for_status().json()
        patient = next((p for p in patients if p["code"] == DEMO_PATIENT_CODE), None)
        if patient is None:
            patient = (
                http.post("/patients", json={"code": DEMO_PATIENT_CODE, "timezone": DEMO_PATIENT_TZ})
                .raise_for_status()
                .json()
            )
        device = http.post(
            f"/patients/{patient['id']}/devices",
            json={"profile": "polar_pmd", "name": "Polar H10 (replayed home session)"},
        ).raise_for_status()
        return str(device.json()["token"])


def run_demo(*, host: str, port: int, data_dir: Path | None, as_json: bool) -> int:
    """Start the service, replay the fixture through the collector, serve until Ctrl-C."""
    if port == 0:
        port = _free_port(host)
    elif _port_in_use(host, port):
        raise CliError(f"port {port} on {host} is in use; choose another with --port (0 = any free port)")
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="otmon-demo-")
        data_dir = Path(tmp.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data_dir / 'otmon.sqlite3'}"
    url = f"http://{host}:{port}"
    env = {**os.environ, "OTMON_DATABASE_URL": database_url, "OTMON_DATA_DIR": str(data_dir)}
    capture = demo_capture()
    password = _credentials(data_dir, database_url)

    server = subprocess.Popen(
        [sys.executable, "-m", "otmon", "serve", "--host", host, "--port", str(port)],
        env=env,
    )
    try:
        _wait_ready(url, server)
        token = _device_token(url, password)
        # The collector runs as its own process and reaches the service only over HTTP.
        collector = subprocess.run(
            [sys.executable, "-m", "otmon", "replay", str(capture), "--server", url, "--token", token],
            env=env,
            stdout=subprocess.DEVNULL if as_json else None,
        )
        if collector.returncode != 0:
            raise CliError(f"the collector replay failed with code {collector.returncode}")
        if as_json:
            print(json.dumps({"url": f"{url}/", "email": DEMO_EMAIL, "password": password}), flush=True)
        else:
            print(
                f"\notmon demo is running: open {url}/ and log in as {DEMO_EMAIL} "
                f"with password {password}\n(data in {data_dir}; Ctrl-C stops)",
                flush=True,
            )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if tmp is not None:
            tmp.cleanup()
