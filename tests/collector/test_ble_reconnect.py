"""Reconnect policy, link state log, and live blocks == offline decode of a capture with a drop."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from analysis.samples import SampleBlock
from collector.capture import CaptureWriter
from collector.devices import polar_pmd as pmd
from collector.reconnect import Backoff, CollectionControl, LinkLog, LinkState, run_collection
from collector.session import decode_capture
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.polar import EmulatedPolar
from tests.collector.emulation.wearable import Recording


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    b = Backoff(initial_s=1.0, factor=2.0, max_s=60.0, jitter=0.0)
    rng = random.Random(0)
    assert [b.delay_s(n, rng) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_jitter_stays_within_its_band_and_spreads() -> None:
    b = Backoff(initial_s=2.0, factor=3.0, max_s=30.0, jitter=0.2)
    rng = random.Random(42)
    for attempt, base in ((1, 2.0), (2, 6.0), (3, 18.0), (4, 30.0)):
        delays = [b.delay_s(attempt, rng) for _ in range(500)]
        assert min(delays) >= 0.8 * base and max(delays) <= 1.2 * base
        assert np.std(delays) > 0.08 * base  # really jittered (uniform ±20 % has sd 11.5 %)
    assert Backoff(jitter=0.2).delay_s(3, random.Random(7)) == Backoff(jitter=0.2).delay_s(
        3, random.Random(7)
    )


def test_backoff_gives_up_after_max_attempts() -> None:
    assert [Backoff(max_attempts=2).gives_up(n) for n in (1, 2, 3)] == [False, False, True]
    assert not Backoff().gives_up(10_000)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial_s": -1.0}, "initial_s"),
        ({"initial_s": 5.0, "max_s": 1.0}, "initial_s"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.0}, "jitter"),
        ({"max_attempts": -1}, "max_attempts"),
    ],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_link_log_logs_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collector.link")
    seen: list[LinkState] = []
    link = LinkLog(name="Polar H10 1", on_change=lambda s, _d: seen.append(s))
    link.set(LinkState.CONNECTING)
    link.set(LinkState.CONNECTING)  # repeat: not logged again
    link.set(LinkState.STREAMING, "50 Hz")
    link.set(LinkState.GAVE_UP, "after 3 reconnect attempts")
    assert [r.getMessage() for r in caplog.records] == [
        "Polar H10 1: connecting",
        "Polar H10 1: streaming (50 Hz)",
        "Polar H10 1: gave up (after 3 reconnect attempts)",
    ]
    assert [r.levelno for r in caplog.records][-1] == logging.ERROR
    assert seen == [LinkState.CONNECTING, LinkState.STREAMING, LinkState.GAVE_UP]


async def test_live_blocks_equal_offline_decode_of_a_capture_with_a_drop(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    source = np.round(rng.normal(0, 0.4, (1500, 3)), 3)
    path = tmp_path / "drop.capture.jsonl.gz"
    live: list[SampleBlock] = []

    async def sink(block: SampleBlock) -> None:
        live.append(block)

    async with EmulatedRadio() as radio:
        dev = await radio.add(EmulatedPolar(recording=Recording(source, 50), frame_type=0x81))
        control = CollectionControl()
        with CaptureWriter(path) as capture:
            task = asyncio.get_running_loop().create_task(
                run_collection(
                    dev.address,
                    pmd.PROFILE,
                    {"sample_rate_hz": 50},
                    sink,
                    backoff=Backoff(initial_s=0.02, jitter=0.0),
                    control=control,
                    clock=dev.host_clock,
                    capture=capture,
                    backend=radio.client_backend,
                    max_samples=250,
                )
            )
            await dev.wait_sent(300)
            await dev.force_disconnect()
            dev.device_clock_origin_ns -= 86_400 * 10**9  # device clock reset while away
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            result = await asyncio.wait_for(task, 10)

    offline = decode_capture(path, max_samples=250)
    assert offline.blocks == live  # same decoder, same anchors, same cuts
    assert offline.n_notifications == result.n_notifications
    assert len(result.sessions) == 2 and len(result.link_gaps) == 1
    # no block straddles the drop, and the in-session gaps are none
    end_first = result.sessions[0].end_ns
    assert any(b.end_ns == end_first for b in live)
    assert offline.gaps == [] and all(not s.gaps for s in result.sessions)
