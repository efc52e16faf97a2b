"""`otmon collect --config` end to end with marks and gaps: the service stores the events.

An emulated MetaWear (bumble, through the unmodified bleak API) streams into `otmon collect`;
its button starts the config's `task_label`, `otmon task stop --borg` (another process, while
the collector runs) stops it; a second `otmon collect` on the same outbox reports the time
between the runs as `collector_down`. Everything reaches the real service exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import DeviceEvent
from otmon import collect_cmds
from otmon.cli import build_parser
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.metawear import EmulatedMetaWear
from tests.collector.emulation.scenario import utc_of
from tests.collector.emulation.wearable import DEFAULT_UTC_BASE_NS, Recording
from tests.collector.test_outbox_service import FaultyTransport, make_service, stored

REPO = Path(__file__).resolve().parents[2]
RATE_HZ = 100
PERIOD_NS = 1_000_000_000 // RATE_HZ
SOURCE_G = np.random.default_rng(11).normal(0, 0.5, size=(900, 3)).round(3)


async def _run(
    config: Path, transport: FaultyTransport, utc_base_ns: int, during: object
) -> EmulatedMetaWear:
    async with EmulatedRadio() as radio:
        # 100 Hz: what `otmon collect` asks a MetaWear for (the profile's default rate)
        dev = EmulatedMetaWear(recording=Recording(SOURCE_G, RATE_HZ), packed=False)
        dev.utc_base_ns = utc_base_ns
        await radio.add(dev)
        backends = collect_cmds.Backends(
            client=radio.client_backend,
            scanner=radio.scanner_backend,
            clock=dev.host_clock,
            upload_transport=transport,
        )
        argv = ["collect", "--config", str(config), "--device", dev.address.lower()]
        argv += ["--profile", "metawear"]
        run = asyncio.get_running_loop().create_task(
            collect_cmds.run_async(build_parser().parse_args(argv), backends)
        )
        if during is not None:
            await during(dev)  # type: ignore[operator]
        await asyncio.wait_for(dev.exhausted.wait(), 15)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: stop, drain, exit
        assert await asyncio.wait_for(run, 30) == 0
    return dev


async def test_button_cli_stop_and_restart_reach_the_service(tmp_path: Path) -> None:
    app, token = make_service(tmp_path)
    config = tmp_path / "collector.toml"
    config.write_text(
        f'server = "http://otmon.test"\ntoken = "{token}"\n'
        'outbox = "outbox.sqlite3"\ntask_label = "laundry"\nprofile = "metawear"\n'
    )
    transport = FaultyTransport(app, script=["503", "cut_after"])

    async def press_then_stop_from_the_cli(dev: EmulatedMetaWear) -> None:
        await dev.wait_sent(200)
        await dev.set_button(1)
        await dev.set_button(0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "otmon",
            "task",
            "stop",
            "--borg",
            "12",
            "--config",
            str(config),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0 and b"stopped 'laundry'" in out

    first = await _run(config, transport, DEFAULT_UTC_BASE_NS, press_then_stop_from_the_cli)
    # the collector was down for about an hour
    second = await _run(config, transport, DEFAULT_UTC_BASE_NS + 3600 * 10**9, None)

    with Session(app.state.engine) as db:
        events = list(db.scalars(select(DeviceEvent).order_by(DeviceEvent.id)))
    kinds = [(e.kind, e.fields.get("source"), e.fields.get("cause")) for e in events]
    assert kinds == [
        ("task_start", "button", None),
        ("task_stop", "cli", None),
        ("gap", None, "collector_down"),
    ]
    start, stop, gap = events
    assert start.fields["label"] == "laundry" and stop.fields["borg"] == 12
    assert start.at_ns is not None and stop.at_ns is not None and start.at_ns < stop.at_ns
    assert gap.end_ns is not None and gap.start_ns is not None
    # from the end of the first run's samples to the second run's first, within a period
    assert abs(gap.start_ns - utc_of(first, 900)) < PERIOD_NS
    assert abs(gap.end_ns - utc_of(second, 0)) < PERIOD_NS
    rows = stored(app)
    assert sum(r.n_samples for r in rows) == 2 * 900 and len({r.seq for r in rows}) == len(rows)
