"""Bounded loss on SIGKILL: the open upload block is committed as a draft every 10 s.

A run killed mid-block loses only the samples decoded after its last draft; the next start
stores the draft as an ordinary block and reports the rest of the downtime as collector_down.
Block boundaries stay those of the assembler (drafts never cut a block).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector import ble
from collector.devices import polar_pmd as pmd
from collector.outbox import Outbox
from collector.outbox_sink import OutboxSink
from collector.reconnect import CollectionControl, run_collection
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.scenario import FAST, utc_of
from tests.collector.emulation.wearable import Recording

REPO = Path(__file__).resolve().parents[2]
RATE_HZ = 50
PERIOD_NS = 1_000_000_000 // RATE_HZ
DRAFT_SAMPLES = 10 * RATE_HZ  # session.DRAFT_AFTER_NS at 50 Hz


def source(n: int) -> NDArray[np.float64]:
    """Deterministic wrist-like samples on the Polar's mG grid (exact through its 0x01 frames)."""
    rng = np.random.default_rng(7)
    return np.round(rng.normal(0, 0.4, size=(n, 3)) * 1000) / 1000


async def test_open_block_is_drafted_while_streaming_and_blocks_are_unchanged(
    tmp_path: Path,
) -> None:
    samples_g = source(1500)  # 30 s: one 3000-sample block would hold it all
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box, Outbox(path) as reader:
        sink = OutboxSink(box)
        async with EmulatedRadio() as radio:
            dev = await radio.add(EmulatedPolar(recording=Recording(samples_g, RATE_HZ)))
            found = await ble.find_device(
                pmd.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
            )
            control = CollectionControl()
            task = asyncio.get_running_loop().create_task(
                run_collection(
                    found,
                    pmd.PROFILE,
                    {"sample_rate_hz": 50, "range_g": 8},
                    sink,
                    backoff=FAST,
                    control=control,
                    clock=dev.host_clock,
                    backend=radio.client_backend,
                    events=sink,
                )
            )
            await dev.wait_sent(1300)
            n_sent = dev.n_sent
            draft = reader.draft()  # what a SIGKILL now would leave
            assert reader.pending(10) == []  # no block yet: the open block is 26 s long
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            await asyncio.wait_for(task, 10)
        assert box.draft() is None  # the final block replaced it
        blocks = box.pending(10)
    assert draft is not None
    assert n_sent - DRAFT_SAMPLES - 2 * dev.frame_samples <= draft.n_samples <= n_sent
    np.testing.assert_array_equal(draft.accel_g, samples_g[: draft.n_samples].astype(np.float32))
    assert abs(draft.t0_ns - utc_of(dev, 0)) < 1_000
    assert [b.n_samples for b in blocks] == [1500]


def test_a_killed_runs_draft_is_stored_first_then_the_downtime_gap(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    t0 = 1_767_600_000_000_000_000
    accel = source(700).astype(np.float32)
    with Outbox(path) as box:
        box.put(SampleBlock(t0, 50.0, accel[:300]))
        box.put_draft(SampleBlock(t0 + 300 * PERIOD_NS, 50.0, accel[300:650]))
    resumed = t0 + 900 * PERIOD_NS
    with Outbox(path) as box:
        sink = OutboxSink(box)  # start-up: the draft becomes a block
        asyncio.run(sink(SampleBlock(resumed, 50.0, accel[650:])))
        blocks = box.pending(10)
        (gap,) = box.pending_events(10)
        assert box.draft() is None
    assert [(b.t0_ns, b.n_samples) for b in blocks] == [
        (t0, 300),
        (t0 + 300 * PERIOD_NS, 350),
        (resumed, 50),
    ]
    assert [b.seq for b in blocks] == sorted(b.seq for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.accel_g() for b in blocks]), accel)
    assert (gap.fields["start_ns"], gap.fields["end_ns"]) == (t0 + 650 * PERIOD_NS, resumed)


CHILD = r"""
import asyncio, sys
import numpy as np
from collector import ble
from collector.devices import polar_pmd as pmd
from collector.outbox import Outbox
from collector.outbox_sink import OutboxSink
from collector.reconnect import run_collection
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.scenario import FAST
from tests.collector.emulation.wearable import Recording
from tests.collector.test_draft import source

async def main() -> None:
    box = Outbox(sys.argv[1])
    sink = OutboxSink(box)
    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source(3000), 50), speedup=10))
        found = await ble.find_device(pmd.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend)
        asyncio.get_running_loop().create_task(run_collection(
            found, pmd.PROFILE, {"sample_rate_hz": 50, "range_g": 8}, sink, backoff=FAST,
            clock=dev.host_clock, backend=radio.client_backend, events=sink))
        await dev.wait_sent(int(sys.argv[2]))
        print(dev.n_sent, flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.parametrize("kill_after", [700, 1300])
def test_sigkill_mid_block_loses_at_most_the_draft_interval(
    tmp_path: Path, kill_after: int
) -> None:
    path = tmp_path / "o.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(kill_after)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    with child.stdout:
        n_sent = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    with Outbox(path) as box:
        OutboxSink(box)  # the restart
        blocks = box.pending(10)
    stored = np.concatenate([b.accel_g() for b in blocks])
    # every sample committed once, in order (a prefix of the source), and at most ~10 s lost
    np.testing.assert_array_equal(stored, source(3000)[: len(stored)].astype(np.float32))
    print(f"SIGKILL after {n_sent} samples sent: {len(stored)} stored, {n_sent - len(stored)} lost")
    assert len(stored) >= n_sent - DRAFT_SAMPLES - 2 * 10
    assert [b.seq for b in blocks] == sorted(b.seq for b in blocks)
