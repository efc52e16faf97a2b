"""Ingest benchmark: one hour of 50 Hz data through real HTTP into a running `otmon serve`.

Run on demand (not part of the test suite):

    python benchmarks/bench_ingest.py                 # SQLite in a temporary directory
    python benchmarks/bench_ingest.py --database-url postgresql+psycopg://user@host:port/db

It measures, on the fixture capture (180 000 samples = 1 h at 50 Hz):
- decode: capture -> Polar decoder -> upload blocks (`collector.session.decode_capture`);
- ingest: POST /api/v1/ingest of those blocks over HTTP, including the service's compression,
  storage and incremental epoch computation, until the last response (= committed);
- replay: the whole `otmon replay` process (bleak replay path + decode + upload);
- days: GET /patients/{id}/days afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from collector.session import decode_capture
from collector.upload import Uploader
from otmon.demo import demo_capture

EMAIL = "bench@otmon.example"
PASSWORD = "benchmark-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _otmon(*args: str, env: dict[str, str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "otmon", *args], env=env, input=stdin, text=True,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs (fresh device each)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url_db = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        env = {**os.environ, "OTMON_DATABASE_URL": url_db, "OTMON_DATA_DIR": tmp}
        _otmon("user", "add", "--email", EMAIL, "--password-stdin", env=env, stdin=PASSWORD + "\n")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "otmon", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            run(base, env, args.repeat, "postgresql" if "postgresql" in url_db else "sqlite")
        finally:
            server.terminate()
            server.wait(timeout=15)


def run(base: str, env: dict[str, str], repeat: int, backend: str) -> None:
    capture = demo_capture()
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=120)
    token = http.post("/auth/token", data={"username": EMAIL, "password": PASSWORD}).json()
    http.headers["Authorization"] = f"Bearer {token['access_token']}"

    t = time.perf_counter()
    decoded = decode_capture(capture)
    decode_s = time.perf_counter() - t
    n = decoded.n_samples

    ingest_s: list[float] = []
    days_s: list[float] = []
    for i in range(repeat):
        patient = http.post("/patients", json={"code": f"bench-{i}", "timezone": "UTC"}).json()
        device = http.post(f"/patients/{patient['id']}/devices",
                           json={"profile": "polar_pmd", "name": f"bench {i}"}).json()

        async def upload(token: str = device["token"]) -> None:
            async with Uploader(base, token) as uploader:
                await uploader.upload(decoded.blocks)

        t = time.perf_counter()
        asyncio.run(upload())
        ingest_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        days = http.get(f"/patients/{patient['id']}/days").json()
        days_s.append(time.perf_counter() - t)
        assert sum(d["samples"] for d in days) == n, "stored sample count differs"

    patient = http.post("/patients", json={"code": "bench-replay", "timezone": "UTC"}).json()
    device = http.post(f"/patients/{patient['id']}/devices",
                       json={"profile": "polar_pmd", "name": "bench replay"}).json()
    replay_s = _otmon("replay", str(capture), "--server", base, "--token", device["token"], env=env)

    best = min(ingest_s)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"backend: {backend}; data: {n} samples (1 h at 50 Hz) in {len(decoded.blocks)} blocks")
    print(f"decode capture -> blocks: {decode_s:.2f} s")
    print(f"ingest over HTTP (best of {repeat}): {best:.2f} s "
          f"= {n / best / 1e3:.0f} k samples/s = {3600 / best:.0f}x real time; all runs "
          + ", ".join(f"{s:.2f}" for s in ingest_s))
    print(f"GET days after ingest (best): {min(days_s) * 1e3:.0f} ms")
    print(f"otmon replay process (bleak replay path, decode, upload): {replay_s:.2f} s")


if __name__ == "__main__":
    main()
