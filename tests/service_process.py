"""A real `otmon serve` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    env: Mapping[str, str], log_path: Path, *, args: Sequence[str] = (), cwd: Path | None = None
) -> Iterator[str]:
    """Start `otmon serve`, wait for /api/v1/health, yield its base URL, stop it with SIGINT."""
    port = free_port()
    with log_path.open("wb") as log_fh:
        server = subprocess.Popen(
            [sys.executable, "-m", "otmon", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=dict(env),
            stdout=log_fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
