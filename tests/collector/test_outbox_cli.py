"""`otmon collect --config` through the outbox into the real service, `otmon status`, config errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bumble.gatt import Characteristic, Service

from collector.config import ConfigError, load_config, merge
from collector.outbox import Outbox
from otmon import collect_cmds
from otmon.cli import build_parser, main
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.wearable import Recording
from tests.collector.test_outbox_service import (
    FaultyTransport,
    make_service,
    stored,
    stored_samples,
)
from tests.collector.test_outbox_source import source_block

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_file_keys_and_relative_outbox(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path / "c.toml",
            """
server = "https://otmon.example.org"
token = "otd_abc"
device = "auto"
profile = "polar_pmd"
outbox = "data/outbox.sqlite3"
outbox_limit_mb = 64
outbox_warn_percent = 90
""",
        )
    )
    assert cfg.outbox_path == tmp_path / "data" / "outbox.sqlite3"
    assert (cfg.server, cfg.token, cfg.device, cfg.profile) == (
        "https://otmon.example.org",
        "otd_abc",
        "auto",
        "polar_pmd",
    )
    assert cfg.limit_bytes == 64 * 2**20 and cfg.warn_fraction == 0.9
    over = merge(cfg, server="http://other", device=None)
    assert over.server == "http://other" and over.device == "auto"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('srever = "http://x"', "unknown key 'srever'"),
        ("outbox_limit_mb = -1", "key 'outbox_limit_mb': must be > 0"),
        ('outbox_limit_mb = "big"', "key 'outbox_limit_mb': expected a number"),
        ("outbox_warn_percent = 120", "key 'outbox_warn_percent': must be > 0 and <= 100"),
        ("token = 5", "key 'token': expected a non-empty string"),
        ('server = "otmon.example.org"', r"key 'server': expected an http\(s\) URL"),
        ('server = "http://x"\ntoken = \n', r"invalid TOML: Invalid value \(at line 2, column 9\)"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {message}"):
        load_config(path)


def test_bad_config_is_one_line_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "outbox_limit_mb = 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otmon", "collect", "--config", str(path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2
    assert proc.stderr == f"otmon: error: {path}: key 'outbox_limit_mb': must be > 0, got 0\n"


def test_missing_server_names_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.toml", 'device = "auto"\ntoken = "t"\n')
    assert main(["collect", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"otmon: error: otmon collect needs --server (or `server` in the config file in {path})\n"
    )


def test_status_shows_backlog_upload_device_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path, limit_bytes=4 * 3600, clock_ns=lambda: 1_700_000_000_000_000_000) as box:
        for i in range(4):
            box.put(source_block(i))
        box.set_status(
            device="C6:05:04:03:02:01",
            device_state="link lost",
            device_state_ns=1_700_000_000_000_000_000,
            battery_pct=72,
            last_upload_ns=1_699_999_990_000_000_000,
            collector_pid=2**22 + 12345,
        )
    assert main(["status", "--outbox", str(path)]) == 0
    out = capsys.readouterr().out
    assert "backlog           4 blocks, 1200 samples" in out
    assert "oldest waiting    2023-11-14 22:13:20 UTC" in out
    assert "last upload       2023-11-14 22:13:10 UTC" in out
    assert "connection        link lost since 2023-11-14 22:13:20 UTC" in out
    assert "battery           72 %" in out
    assert "collector         not running" in out  # the recorded pid is gone
    assert "WARNING: outbox " in out and "100% full" in out
    assert main(["status", "--outbox", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["backlog_blocks"], report["backlog_samples"], report["backlog_bytes"]) == (
        4,
        1200,
        14400,
    )
    assert report["last_upload_ns"] == 1_699_999_990_000_000_000


def test_status_without_an_outbox_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--outbox", str(tmp_path / "none.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"otmon: error: no outbox at {tmp_path / 'none.sqlite3'}: the collector has not run yet\n"
    )
    assert not (tmp_path / "none.sqlite3").exists()


def _ctrl_c() -> None:
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    os.kill(os.getpid(), signal.SIGINT)


class PolarWithBattery(EmulatedPolar):
    """An H10 that also has the standard Battery Service (0x180F) at 72 %."""

    def build_services(self) -> list[Service]:
        level = Characteristic(
            "2A19", Characteristic.Properties.READ, Characteristic.READABLE, bytes([72])
        )
        return [*super().build_services(), Service("180F", [level])]


async def _collect(
    tmp_path: Path, config: Path, source: np.ndarray, transport: Any, battery: bool = False
) -> int:
    async with EmulatedRadio() as radio:
        kind = PolarWithBattery if battery else EmulatedPolar
        dev = await radio.add(kind(recording=Recording(source, 50)))
        backends = collect_cmds.Backends(
            client=radio.client_backend,
            scanner=radio.scanner_backend,
            clock=dev.host_clock,
            upload_transport=transport,
        )
        argv = ["collect", "--config", str(config), "--device", dev.address.lower()]
        run = asyncio.get_running_loop().create_task(
            collect_cmds.run_async(build_parser().parse_args(argv), backends)
        )
        await asyncio.wait_for(dev.exhausted.wait(), 10)
        _ctrl_c()
        return await asyncio.wait_for(run, 30)


async def test_collect_with_config_goes_through_the_outbox_to_the_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, token = make_service(tmp_path)
    config = write(
        tmp_path / "collector.toml",
        f"""
server = "http://otmon.test"
token = "{token}"
profile = "polar_pmd"
outbox = "outbox.sqlite3"
""",
    )
    rng = np.random.default_rng(5)
    source = np.round(rng.normal(0, 0.3, (600, 3)) + [0, 0, 1], 3)
    # The first two requests fail: the blocks wait in the outbox and go after the back-off.
    transport = FaultyTransport(app, script=["503", "cut"])
    assert await _collect(tmp_path, config, source, transport, battery=True) == 0
    out = capsys.readouterr().out
    assert (
        "uploaded to http://otmon.test: 600 samples" in out and "0 samples (0 blocks) wait" in out
    )
    got = np.concatenate(stored_samples(app))
    np.testing.assert_array_equal(got, (np.round(source * 1000) / 1000).astype(np.float32))
    assert transport.seen[:2] == ["503", "cut"]
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        status = box.status()
    assert status["device_state"] == "stopped" and "last_upload_ns" in status
    assert status["battery_pct"] == 72
    assert "collector_pid" not in status
    assert (
        await collect_cmds.run_async(build_parser().parse_args(["status", "--config", str(config)]))
        == 0
    )
    assert "backlog           0 blocks, 0 samples" in capsys.readouterr().out
    assert len(stored(app)) == len({r.seq for r in stored(app)})


async def test_collect_with_a_full_outbox_refuses_loudly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    app, token = make_service(tmp_path)
    config = write(
        tmp_path / "collector.toml",
        f"""
server = "http://otmon.test"
token = "{token}"
outbox = "outbox.sqlite3"
outbox_limit_mb = 0.004
drain_timeout_s = 0.2
""",
    )
    rng = np.random.default_rng(5)
    source = np.round(rng.normal(0, 0.3, (600, 3)) + [0, 0, 1], 3)
    transport = FaultyTransport(app, p_5xx=1.0)  # the service is down the whole time
    assert await _collect(tmp_path, config, source, transport) == 0
    with Outbox(tmp_path / "outbox.sqlite3") as box:
        backlog, status = box.backlog(), box.status()
    # The 600 samples arrive as one 7200-byte block: over the 4194-byte limit, so refused, counted.
    kept = backlog.n_samples
    assert kept == 0 and status["refused_samples"] == 600
    assert "battery_pct" not in status  # this H10 has no Battery Service
    assert "600 samples REFUSED (outbox full)" in capsys.readouterr().out
    assert any("is full" in r.message and r.levelname == "ERROR" for r in caplog.records)
    assert (
        await collect_cmds.run_async(build_parser().parse_args(["status", "--config", str(config)]))
        == 0
    )
    out = capsys.readouterr().out
    assert "FULL: outbox full: new samples are refused since" in out
    assert f"refused (full)    {600 - kept}" in out
    assert stored(app) == []
