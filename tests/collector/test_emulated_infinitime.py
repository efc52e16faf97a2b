"""InfiniTime end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → subscribe (the whole start) → stream on change → forced drop → reconnect →
stream → stop, checked poll by poll against the source (real wrist samples of the committed
capture, with still moments where the watch sends nothing).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.samples import SampleBlock
from collector import ble, reconnect
from collector.capture import read_capture
from collector.devices import infinitime as it
from collector.reconnect import Backoff, LinkLog, LinkState
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.infinitime import EmulatedInfiniTime
from tests.collector.emulation.wearable import Recording

RATE_HZ = 10
PERIOD_NS = 100_000_000
FAST = Backoff(initial_s=0.02, max_s=0.1, jitter=0.0)
# Still moments inserted into the source: (poll index, extra polls with the same value).
STILL = ((40, 1), (90, 7), (150, 2), (260, 25), (330, 1), (600, 12))


class Collect:
    """Async sink keeping the blocks."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []

    async def __call__(self, block: SampleBlock) -> None:
        self.blocks.append(block)

    def samples(self) -> NDArray[np.float32]:
        return np.concatenate([b.accel_g for b in self.blocks])


@pytest.fixture(scope="module")
def source_g(request: pytest.FixtureRequest) -> NDArray[np.float64]:
    """About 84 s of 10 Hz polls (g): the committed capture's first values, with still moments."""
    path = (
        Path(request.config.rootpath) / "fixtures/captures/infinitime_wrist_20min.capture.jsonl.gz"
    )
    events = [e for e in read_capture(path).events if e.kind == "notify"][:800]
    counts = [it.parse_motion(e.data) for e in events]
    for index, extra in reversed(STILL):
        counts[index + 1 : index + 1] = [counts[index]] * extra
    return np.asarray(counts, dtype=np.float64) / it.LSB_PER_G


def utc_of(dev: EmulatedInfiniTime, index: int) -> int:
    """True UTC of recording sample `index` (the emulator's host time base)."""
    assert dev._origin_k is not None
    return dev.utc_base_ns + dev.device_time_ns(dev._origin_k + index)


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every poll the host can know arrives once, on its grid slot; the drop is one gap."""
    async with EmulatedRadio() as radio:
        dev = EmulatedInfiniTime(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        found = await ble.find_device(
            it.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
        )
        assert found.address == dev.address
        control, sink, link = reconnect.CollectionControl(), Collect(), LinkLog(name=dev.name)
        task = asyncio.get_running_loop().create_task(
            reconnect.run_collection(
                found,
                it.PROFILE,
                {},
                sink,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
                link_log=link,
            )
        )
        await dev.wait_sent(200)  # the drop falls between the still moments at 150 and 260
        await dev.force_disconnect()
        await asyncio.wait_for(dev.exhausted.wait(), 15)
        control.request_stop()
        result = await asyncio.wait_for(task, 10)

    assert dev.commands == []  # nothing is written to an InfiniTime
    assert dev.n_unchanged >= sum(extra for _, extra in STILL) - 10
    assert [s.stopped_by for s in result.sessions] == ["disconnect", "request"]
    assert result.stopped_by == "request" and result.n_decode_errors == 0
    assert result.n_notifications == sum(len(v) for v in dev.notified.values())

    # The host knows a poll once a later change arrived on the same connection: from the
    # first notified poll to the last notified one of each connection.
    (c1, n1), (c2, n2) = sorted(dev.notified.items())
    assert (c1, c2) == (1, 2)
    want = np.concatenate([source_g[n1[0] : n1[-1] + 1], source_g[n2[0] : n2[-1] + 1]])
    np.testing.assert_array_equal(sink.samples(), want.astype(np.float32))
    assert n1[0] == 0 and n2[-1] == len(source_g) - 1

    assert abs(sink.blocks[0].t0_ns - utc_of(dev, 0)) < 1_000
    second_t0 = result.sessions[1].first_sample_ns
    assert second_t0 is not None and abs(second_t0 - utc_of(dev, n2[0])) < 1_000
    for block in sink.blocks:  # every block on the poll grid of the source
        index = (block.t0_ns - utc_of(dev, 0)) / PERIOD_NS
        assert abs(index - round(index)) < 0.01
    (gap,) = result.link_gaps
    assert abs(gap.start_ns - utc_of(dev, n1[-1] + 1)) < PERIOD_NS / 100
    assert abs(gap.length_ns - (n2[0] - n1[-1] - 1) * PERIOD_NS) < PERIOD_NS / 100
    states = [s for s, _ in link.history]
    assert states.count(LinkState.STREAMING) == 2 and states[-1] is LinkState.STOPPED
