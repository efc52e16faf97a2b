"""The bumble harness through the unmodified bleak API: scan, connect, GATT, notify/indicate, drops."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner
from bumble.gatt import Characteristic, Service
from numpy.typing import NDArray

from tests.collector.emulation.harness import (
    ATT_DEFAULT_MTU,
    DEFAULT_MTU,
    BumbleBleakClient,
    BumbleBleakScanner,
    EmulatedRadio,
)
from tests.collector.emulation.wearable import EmulatedWearable, Recording

SVC = "0000fe00-1111-2222-3333-444455556666"
CTRL = "0000fe01-1111-2222-3333-444455556666"
DATA = "0000fe02-1111-2222-3333-444455556666"
INFO = "0000fe03-1111-2222-3333-444455556666"


class EmulatedCounter(EmulatedWearable):
    """Minimal emulator: write 'go' -> indicate 'ok' and stream int16 mG frames; 'halt' stops."""

    service_uuids = (SVC,)

    def build_services(self) -> list[Service]:
        self.ctrl = Characteristic(
            CTRL,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE,
            self.command_value(CTRL),
        )
        self.data_characteristic = Characteristic(
            DATA, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        info = Characteristic(
            INFO, Characteristic.Properties.READ, Characteristic.READABLE, b"v1.2"
        )
        return [Service(SVC, [self.ctrl, self.data_characteristic, info])]

    async def on_command(self, char_uuid: str, data: bytes) -> None:
        if data == b"go":
            await self.indicate(self.ctrl, b"ok")
            self.start_streaming()
        elif data == b"halt":
            self.stop_streaming()
            await self.indicate(self.ctrl, b"halted")

    def encode_frame(self, first_k: int, samples_g: NDArray[np.float64]) -> bytes:
        return first_k.to_bytes(4, "little") + np.round(samples_g * 1000).astype("<i2").tobytes()


def _recording(n: int = 400) -> Recording:
    rng = np.random.default_rng(7)
    return Recording(np.round(rng.normal(0, 0.5, (n, 3)), 3), 50.0)


def _decode(frames: list[bytes]) -> tuple[list[int], NDArray[np.float64]]:
    firsts = [int.from_bytes(f[:4], "little") for f in frames]
    data = np.concatenate([np.frombuffer(f[4:], "<i2").reshape(-1, 3) for f in frames]) / 1000
    return firsts, data


def test_both_backends_instantiate_with_pinned_bleak() -> None:
    """A bleak upgrade that changes the backend contract must break here, loudly."""
    radio = EmulatedRadio()
    client = BleakClient("AA:BB:CC:DD:EE:FF", backend=radio.client_backend)
    scanner = BleakScanner(backend=radio.scanner_backend)
    assert client.backend_id == "BumbleBleakClient"
    assert scanner.backend_id == "BumbleBleakScanner"
    for cls, base in ((BumbleBleakClient, BaseBleakClient), (BumbleBleakScanner, BaseBleakScanner)):
        assert not inspect.isabstract(cls), f"{cls.__name__} misses abstract members of {base}"


async def test_scan_connect_gatt_stream_and_forced_drop() -> None:
    async with EmulatedRadio() as radio:
        dev = await radio.add(
            EmulatedCounter(
                name="Counter 1", address="F0:0D:00:00:00:01", recording=_recording(20_000)
            )
        )
        found = await BleakScanner.find_device_by_filter(
            lambda d, adv: SVC in adv.service_uuids, timeout=5, backend=radio.scanner_backend
        )
        assert found is not None and found.address == dev.address and found.name == "Counter 1"

        drops: list[BleakClient] = []
        client = BleakClient(
            found, disconnected_callback=drops.append, backend=radio.client_backend
        )
        await client.connect()
        assert client.mtu_size == DEFAULT_MTU
        assert client.name == "Counter 1"
        assert await client.read_gatt_char(INFO) == b"v1.2"
        assert client.services.get_characteristic(CTRL).properties == ["write", "indicate"]
        ctrl_rx: list[bytes] = []
        frames: list[bytes] = []
        await client.start_notify(CTRL, lambda _c, d: ctrl_rx.append(bytes(d)))
        await client.start_notify(DATA, lambda _c, d: frames.append(bytes(d)))
        await client.write_gatt_char(CTRL, b"go", response=True)
        await dev.wait_sent(100)
        await dev.force_disconnect()
        await asyncio.sleep(0.05)
        assert drops == [client] and not client.is_connected
        assert ctrl_rx == [b"ok"]

        # the central reconnects; the device advertises again and streaming resumes on request
        await client.connect()
        await client.start_notify(DATA, lambda _c, d: frames.append(bytes(d)))
        await client.start_notify(CTRL, lambda _c, d: ctrl_rx.append(bytes(d)))
        await client.write_gatt_char(CTRL, b"go", response=True)
        await dev.wait_sent(dev.n_sent + 50)  # well before the recording ends, even under load
        await client.write_gatt_char(CTRL, b"halt", response=True)
        await asyncio.sleep(0.02)
        await client.disconnect()
        assert ctrl_rx == [b"ok", b"ok", b"halted"]
        assert radio.n_connects == 2

    firsts, got = _decode(frames)
    assert [r.connection for r in dev.sent] == [1, 2]
    first, second = dev.sent
    assert first.start == 0 and second.start > first.stop  # samples were lost while down
    src = dev.recording.samples_g
    np.testing.assert_array_equal(
        got, np.concatenate([src[first.start : first.stop], src[second.start : second.stop]])
    )
    assert firsts == sorted(firsts)


async def test_default_mtu_cuts_long_notifications() -> None:
    async with EmulatedRadio(mtu=ATT_DEFAULT_MTU) as radio:
        dev = await radio.add(
            EmulatedCounter(name="Counter 2", address="F0:0D:00:00:00:02", recording=_recording(60))
        )
        frames: list[bytes] = []
        async with BleakClient(dev.address, backend=radio.client_backend) as client:
            assert client.mtu_size == ATT_DEFAULT_MTU
            await client.start_notify(DATA, lambda _c, d: frames.append(bytes(d)))
            await client.start_notify(CTRL, lambda _c, d: None)
            await client.write_gatt_char(CTRL, b"go", response=True)
            await dev.exhausted.wait()
            await asyncio.sleep(0.02)
    # 10 samples = 4 + 60 bytes per frame; an MTU of 23 carries 20
    assert frames and all(len(f) == ATT_DEFAULT_MTU - 3 for f in frames)


async def test_unknown_address_fails_like_bleak() -> None:
    async with EmulatedRadio() as radio:
        with pytest.raises(Exception, match="not found"):
            await BleakClient("F0:0D:00:00:00:99", backend=radio.client_backend).connect()
