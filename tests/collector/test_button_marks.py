"""Button presses on the wearable toggle the patient's task, through the unmodified BleakClient.

MetaWear (switch module on the data characteristic) and micro:bit (Button A characteristic)
emulated with bumble; the sink of `otmon collect` (OutboxSink) writes the marks to the outbox.
Only a press edge toggles: releases and a long press do not.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector import ble
from collector.devices import metawear as mw
from collector.devices import microbit as mb
from collector.devices.base import DeviceProfile
from collector.outbox import Outbox, StoredEvent
from collector.outbox_sink import OutboxSink
from collector.reconnect import CollectionControl, run_collection
from tests.collector.emulation.harness import EmulatedRadio
from tests.collector.emulation.metawear import EmulatedMetaWear
from tests.collector.emulation.microbit import EmulatedMicrobit
from tests.collector.emulation.scenario import FAST
from tests.collector.emulation.wearable import EmulatedWearable, Recording

RATE_HZ = 50
SOURCE_G = np.random.default_rng(3).normal(0, 0.5, size=(1500, 3)).round(3)


def metawear() -> tuple[EmulatedWearable, DeviceProfile, dict[str, Any]]:
    dev = EmulatedMetaWear(recording=Recording(SOURCE_G, RATE_HZ), packed=False)
    return dev, mw.PROFILE, {"chip": "BMI270", "sample_rate_hz": 50, "range_g": 8}


def microbit() -> tuple[EmulatedWearable, DeviceProfile, dict[str, Any]]:
    return EmulatedMicrobit(recording=Recording(SOURCE_G, RATE_HZ)), mb.PROFILE, {}


async def _until(box: Outbox, n: int) -> list[StoredEvent]:
    for _ in range(500):
        events = box.pending_events(10)
        if len(events) >= n:
            return events
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {n} events, got {box.pending_events(10)}")


@pytest.mark.parametrize("make", [metawear, microbit], ids=["metawear", "microbit"])
async def test_press_starts_and_press_again_stops_the_task(tmp_path: Path, make: Any) -> None:
    dev, profile, requested = make()
    with Outbox(tmp_path / "o.sqlite3") as box:
        sink = OutboxSink(box, task_label="cooking")
        async with EmulatedRadio() as radio:
            await radio.add(dev)
            found = await ble.find_device(
                profile, timeout_s=5, scanner_backend=radio.scanner_backend
            )
            control = CollectionControl()
            task = asyncio.get_running_loop().create_task(
                run_collection(
                    found,
                    profile,
                    requested,
                    sink,
                    backoff=FAST,
                    control=control,
                    clock=dev.host_clock,
                    backend=radio.client_backend,
                    events=sink,
                )
            )
            await dev.wait_sent(200)
            t_press = dev.host_clock()
            await dev.set_button(1)
            (start,) = await _until(box, 1)
            await dev.set_button(2)  # long press (micro:bit): not another press
            await dev.set_button(0)  # release: nothing
            await dev.wait_sent(400)
            assert len(box.pending_events(10)) == 1
            await dev.set_button(1)
            _, stop = await _until(box, 2)
            await dev.set_button(0)
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            result = await asyncio.wait_for(task, 10)
        assert box.open_task() is None
        n_stored = box.backlog().n_samples
    assert start.kind == "task_start" and stop.kind == "task_stop"
    assert start.fields == {"at_ns": start.fields["at_ns"], "label": "cooking", "source": "button"}
    assert stop.fields == {
        "at_ns": stop.fields["at_ns"],
        "borg": None,
        "note": None,
        "source": "button",
    }
    # the press time is the host time of its notification: during the stream, in order
    assert t_press <= start.fields["at_ns"] < stop.fields["at_ns"] <= dev.host_clock()
    assert len(dev.button_notified) == 5  # MetaWear: a hold repeats "pushed": no press
    # the samples are untouched by the button notifications (MetaWear: same characteristic)
    assert result.n_decode_errors == 0 and n_stored == result.n_samples == dev.n_sent


async def test_without_events_the_button_is_not_enabled(tmp_path: Path) -> None:
    dev, profile, requested = metawear()
    async with EmulatedRadio() as radio:
        await radio.add(dev)
        found = await ble.find_device(profile, timeout_s=5, scanner_backend=radio.scanner_backend)
        blocks: list[Any] = []

        async def keep(block: Any) -> None:
            blocks.append(block)

        control = CollectionControl()
        task = asyncio.get_running_loop().create_task(
            run_collection(
                found,
                profile,
                requested,
                keep,
                backoff=FAST,
                control=control,
                clock=dev.host_clock,
                backend=radio.client_backend,
            )
        )
        await dev.wait_sent(100)
        assert isinstance(dev, EmulatedMetaWear) and not dev.switch_subscribed
        control.request_stop()
        await asyncio.wait_for(task, 10)
    assert mw.SWITCH_SUBSCRIBE not in [c[1] for c in dev.commands]


async def test_microbit_without_the_button_service_still_streams(tmp_path: Path) -> None:
    dev = EmulatedMicrobit(recording=Recording(SOURCE_G[:300], RATE_HZ), button_service=False)
    with Outbox(tmp_path / "o.sqlite3") as box:
        sink = OutboxSink(box)
        async with EmulatedRadio() as radio:
            await radio.add(dev)
            found = await ble.find_device(
                mb.PROFILE, timeout_s=5, scanner_backend=radio.scanner_backend
            )
            control = CollectionControl()
            task = asyncio.get_running_loop().create_task(
                run_collection(
                    found,
                    mb.PROFILE,
                    {},
                    sink,
                    backoff=FAST,
                    control=control,
                    clock=dev.host_clock,
                    backend=radio.client_backend,
                    events=sink,
                )
            )
            await asyncio.wait_for(dev.exhausted.wait(), 10)
            control.request_stop()
            result = await asyncio.wait_for(task, 10)
        assert box.backlog().n_samples == result.n_samples == 300
        assert box.pending_events(10) == []
