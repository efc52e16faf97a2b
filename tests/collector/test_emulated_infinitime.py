"""InfiniTime end to end through the unmodified BleakClient/BleakScanner and the bumble emulator.

scan → connect → subscribe (the whole start) → stream on change → forced drop → reconnect →
stream → stop, checked poll by poll against the source (real wrist samples of the committed
capture, with still moments where the watch sends nothing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from collector.capture import read_capture
from collector.devices import infinitime as it
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.infinitime import EmulatedInfiniTime
from tests.collector.emulation.scenario import assert_equal_except_gap, drop_and_reconnect, utc_of
from tests.collector.emulation.wearable import Recording

RATE_HZ = 10
PERIOD_NS = 100_000_000
# Still moments inserted into the source: (poll index, extra polls with the same value).
STILL = ((40, 1), (90, 7), (150, 2), (260, 25), (330, 1), (600, 12))


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


async def test_stream_drop_reconnect_stop_equals_source_except_gap(
    source_g: NDArray[np.float64],
) -> None:
    """Every poll the host can know arrives once, on its grid slot; the drop is one gap."""
    async with EmulatedRadio() as radio:
        dev = EmulatedInfiniTime(recording=Recording(source_g, RATE_HZ))
        await radio.add(dev)
        run = await drop_and_reconnect(
            radio,
            dev,
            it.PROFILE,
            {},
            drop_after=200,  # the drop falls between the still moments at 150 and 260
            exhausted_timeout_s=15,
        )
    result = run.result

    assert dev.commands == []  # nothing is written to an InfiniTime
    assert dev.n_unchanged >= sum(extra for _, extra in STILL) - 10
    assert result.n_notifications == sum(len(v) for v in dev.notified.values())

    # The host knows a poll once a later change arrived on the same connection: from the
    # first notified poll to the last notified one of each connection.
    (c1, n1), (c2, n2) = sorted(dev.notified.items())
    assert (c1, c2) == (1, 2)
    assert n1[0] == 0 and n2[-1] == len(source_g) - 1
    kept = ((n1[0], n1[-1] + 1), (n2[0], n2[-1] + 1))
    assert_equal_except_gap(run, dev, source_g, kept, PERIOD_NS, gap_tol_ns=PERIOD_NS / 100)
    for block in run.sink.blocks:  # every block on the poll grid of the source
        index = (block.t0_ns - utc_of(dev, 0)) / PERIOD_NS
        assert abs(index - round(index)) < 0.01
