"""`otmon scan` / `record` / `collect`: no-Bluetooth errors (subprocess) and emulated devices."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from collector.capture import read_capture
from collector.devices import polar_pmd as pmd
from collector.reconnect import Backoff
from collector.session import decode_capture
from otmon import collect_cmds
from otmon.cli import build_parser
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.wearable import Recording
from tests.collector.test_upload import TOKEN, make_app

REPO = Path(__file__).resolve().parents[2]
SYSTEM_BUS = Path("/run/dbus/system_bus_socket")
FAST = Backoff(initial_s=0.02, max_s=0.1, jitter=0.0)


def _otmon(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "otmon", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )


@pytest.mark.skipif(SYSTEM_BUS.exists(), reason="this machine has a D-Bus system bus (BlueZ)")
@pytest.mark.parametrize(
    "argv",
    [
        ("scan", "--timeout", "1"),
        ("collect", "--device", "auto", "--server", "http://127.0.0.1:9", "--token", "t"),
    ],
)
def test_without_bluetooth_one_line_exit_2(argv: tuple[str, ...]) -> None:
    proc = _otmon(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("otmon: error: Bluetooth is not available (scanning): ")
    assert "no Bluetooth adapter or BlueZ service" in lines[0]


def test_unknown_profile_is_one_line() -> None:
    proc = _otmon("record", "--device", "auto", "--out", "x.capture.jsonl", "--profile", "nope")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "otmon: error: unknown profile 'nope'; known: "
        + ", ".join(sorted(__import__("collector.devices").devices.PROFILES))
    )


def _ctrl_c() -> None:
    """Press Ctrl-C: only while the command's own handler is installed (never kill pytest)."""
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    os.kill(os.getpid(), signal.SIGINT)


def _source(n: int = 1200) -> np.ndarray[Any, np.dtype[np.float64]]:
    rng = np.random.default_rng(3)
    return np.round(rng.normal(0, 0.3, (n, 3)) + [0, 0, 1], 3)


async def test_scan_lists_supported_devices_only(capsys: pytest.CaptureFixture[str]) -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(_source(50), 50)))
        other = EmulatedPolar(
            recording=Recording(_source(50), 50), name="Kettle", address="F0:0D:00:00:00:07"
        )
        other.service_uuids = ()  # advertises no PMD service and no Polar name: not supported
        await radio.add(other)
        args = build_parser().parse_args(["scan", "--timeout", "0.3"])
        rc = await collect_cmds.run_async(
            args, collect_cmds.Backends(scanner=radio.scanner_backend)
        )
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0].split() == ["name", "address", "profile", "RSSI"]
    assert out[1:] == [f"{dev.name:<24}{dev.address:<20}{'polar_pmd':<14}{-55:>5}"]


async def test_record_auto_with_a_drop_writes_a_capture_that_decodes(tmp_path: Path) -> None:
    out = tmp_path / "h10.capture.jsonl"
    source = _source(1500)
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source, 50)))
        backends = collect_cmds.Backends(
            client=radio.client_backend,
            scanner=radio.scanner_backend,
            clock=dev.host_clock,
            backoff=FAST,
        )
        args = build_parser().parse_args(["record", "--device", "auto", "--out", str(out)])
        run = asyncio.get_running_loop().create_task(collect_cmds.run_async(args, backends))
        await dev.wait_sent(250)
        await dev.force_disconnect()
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        _ctrl_c()
        assert await asyncio.wait_for(run, 10) == 0
    capture = read_capture(out)
    assert capture.profile == "polar_pmd" and capture.header["device"]["address"] == dev.address
    assert [e.kind for e in capture.events].count("connect") == 2
    decoded = decode_capture(out)
    want = np.concatenate([source[r.start : r.stop] for r in dev.sent])
    got = np.concatenate([b.accel_g for b in decoded.blocks])
    np.testing.assert_array_equal(got, (np.round(want * 1000) / 1000).astype(np.float32))
    assert len(dev.sent) == 2 and decoded.n_decode_errors == 0


async def test_collect_by_address_uploads_every_sample(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []
    source = _source(600)
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source, 50)))
        backends = collect_cmds.Backends(
            client=radio.client_backend,
            scanner=radio.scanner_backend,
            clock=dev.host_clock,
            upload_transport=httpx.ASGITransport(app=make_app(received, [])),
        )
        argv = ["collect", "--device", dev.address.lower(), "--profile", "polar_pmd"]
        argv += ["--server", "http://otmon.test", "--token", TOKEN]
        argv += ["--outbox", str(tmp_path / "outbox.sqlite3")]
        run = asyncio.get_running_loop().create_task(
            collect_cmds.run_async(build_parser().parse_args(argv), backends)
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        _ctrl_c()
        assert await asyncio.wait_for(run, 10) == 0
    (sent,) = dev.sent
    assert sent.stop == len(source)
    got = np.concatenate([b["accel_g"] for b in received])
    np.testing.assert_array_equal(got, (np.round(source * 1000) / 1000).astype(np.float32))
    first = received[0]["seq"]  # a new outbox numbers from the UTC time in µs (outbox.py)
    assert [b["seq"] for b in received] == list(range(first, first + len(received)))
    assert "uploaded to http://otmon.test: 600 samples" in capsys.readouterr().out
    assert [c[1] for c in dev.commands][-1] == pmd.STOP_ACC


async def test_duration_stops_record(tmp_path: Path) -> None:
    out = tmp_path / "short.capture.jsonl"
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(_source(5000), 50)))
        backends = collect_cmds.Backends(
            client=radio.client_backend, scanner=radio.scanner_backend, clock=dev.host_clock
        )
        argv = ["record", "--device", "auto", "--out", str(out), "--duration", "0.3"]
        t0 = asyncio.get_running_loop().time()
        assert await collect_cmds.run_async(build_parser().parse_args(argv), backends) == 0
        elapsed = asyncio.get_running_loop().time() - t0
    assert elapsed >= 0.3 and not dev.exhausted.is_set()  # stopped by --duration, not by the end
    assert decode_capture(out).n_samples == dev.n_sent > 0
    assert [c[1] for c in dev.commands][-1] == pmd.STOP_ACC
