"""The BLE path: replay captures through the unmodified BleakClient/BleakScanner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from analysis.samples import SampleBlock
from collector import ble, devices
from collector.capture import Capture, CaptureEvent, CaptureWriter, read_capture
from collector.devices import polar_pmd as pmd
from collector.errors import BluetoothUnavailableError, ProtocolError
from collector.replay import ReplayClient, ReplayScanner, ReplayScript, replay_capture
from collector.session import decode_capture

PERIOD_NS = 20_000_000


def data_samples(capture: Capture) -> int:
    """Samples in the capture's raw data frames, counted from the bytes."""
    return sum(
        (len(e.data) - pmd.HEADER_BYTES) // 6
        for e in capture.events
        if e.kind == "notify" and e.char == pmd.DATA_UUID
    )


def write_capture(path: Path, header: dict, events: list[CaptureEvent]) -> Path:
    with CaptureWriter(path, header) as cap:
        for e in events:
            cap.write_event(e.t_ns, e.kind, e.char, e.data)
    return path


class Collect:
    """Async sink collecting blocks."""

    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []

    async def __call__(self, block: SampleBlock) -> None:
        self.blocks.append(block)


async def test_replay_fixture_through_bleak_equals_offline_decode(
    fixture_capture: Path, tmp_path: Path
) -> None:
    capture = read_capture(fixture_capture)
    sink = Collect()
    recapture = tmp_path / "again.capture.jsonl"
    with CaptureWriter(recapture) as writer:
        result = await replay_capture(fixture_capture, sink, capture_writer=writer)
    offline = decode_capture(fixture_capture)

    assert result.backend_id == "ReplayClient"  # bleak really drove our backend
    assert result.n_samples == data_samples(capture) == offline.n_samples == 180_000
    assert result.n_blocks == len(sink.blocks) == len(offline.blocks) == 60
    assert sink.blocks == offline.blocks  # exactly: t0, rate, float32 values
    assert result.n_decode_errors == offline.n_decode_errors == 0
    assert result.gaps == offline.gaps == []
    assert all(b.accel_g.dtype == np.float32 and b.n_samples <= 3000 for b in sink.blocks)
    # UTC anchoring: the first frame's last sample is at its recorded host receive time.
    first_rx = next(e.t_ns for e in capture.events if e.char == pmd.DATA_UUID)
    assert sink.blocks[0].t0_ns + 35 * PERIOD_NS == first_rx

    # The session recorded the replay into a new capture: same header settings, same event
    # sequence, and notifications at their recorded times (host-side connect/write times
    # are the replay clock's approximation).
    again = read_capture(recapture)
    assert again.header["settings"] == capture.header["settings"]
    assert again.header["profile"] == "polar_pmd"
    assert [(e.kind, e.char, e.hex) for e in again.events] == [
        (e.kind, e.char, e.hex) for e in capture.events
    ]
    notifies = [dataclasses.astuple(e) for e in capture.events if e.kind == "notify"]
    assert [dataclasses.astuple(e) for e in again.events if e.kind == "notify"] == notifies
    assert decode_capture(recapture).blocks == offline.blocks


def _small(fixture: Path, n_frames: int) -> tuple[dict, list[CaptureEvent], list[CaptureEvent]]:
    """Header, events up to the first n data frames, and the remaining tail events."""
    capture = read_capture(fixture)
    head: list[CaptureEvent] = []
    seen = 0
    for i, e in enumerate(capture.events):
        if e.kind == "notify" and e.char == pmd.DATA_UUID:
            if seen == n_frames:
                tail = [t for t in capture.events[i:] if t.char != pmd.DATA_UUID]
                return capture.header, head, tail
            seen += 1
        head.append(e)
    raise AssertionError("fixture too short")


async def test_corrupted_frame_is_counted_and_skipped(
    fixture_capture: Path, tmp_path: Path
) -> None:
    header, head, tail = _small(fixture_capture, 200)
    data_idx = [i for i, e in enumerate(head) if e.char == pmd.DATA_UUID]
    bad = head[data_idx[100]]
    head[data_idx[100]] = dataclasses.replace(bad, hex=bad.hex[:40])  # cut to 20 bytes (MTU 23)
    path = write_capture(tmp_path / "corrupt.capture.jsonl", header, head + tail)

    offline = decode_capture(path)
    sink = Collect()
    result = await replay_capture(path, sink)
    assert offline.n_decode_errors == result.n_decode_errors == 1
    assert offline.n_notifications == result.n_notifications == 200
    assert result.n_samples == offline.n_samples == 199 * 36
    assert sink.blocks == offline.blocks
    # The lost frame is a gap of 36 samples, never papered over.
    assert result.gaps == offline.gaps and len(result.gaps) == 1
    assert result.gaps[0].length_ns == 36 * PERIOD_NS


async def test_device_disconnect_ends_session(fixture_capture: Path, tmp_path: Path) -> None:
    header, head, _ = _small(fixture_capture, 50)
    drop = CaptureEvent(head[-1].t_ns + 1_000_000_000, "disconnect", pmd.SERVICE_UUID, "")
    path = write_capture(tmp_path / "drop.capture.jsonl", header, [*head, drop])
    recapture = tmp_path / "re.capture.jsonl"
    with CaptureWriter(recapture) as writer:
        result = await replay_capture(path, Collect(), capture_writer=writer)
    assert result.n_samples == 50 * 36
    writes = [e.hex for e in read_capture(recapture).events if e.kind == "write"]
    assert pmd.STOP_ACC.hex() not in writes  # nothing to stop on a dropped link


async def test_device_initiated_stop_ends_session(fixture_capture: Path, tmp_path: Path) -> None:
    header, head, tail = _small(fixture_capture, 30)
    stopped = CaptureEvent(head[-1].t_ns + 1, "notify", pmd.CP_UUID, "0102")
    path = write_capture(tmp_path / "stopped.capture.jsonl", header, [*head, stopped, tail[-1]])
    sink = Collect()
    result = await replay_capture(path, sink)
    assert result.n_samples == 30 * 36 == sum(b.n_samples for b in sink.blocks)


async def test_cp_error_status_raises_protocol_error(fixture_capture: Path, tmp_path: Path) -> None:
    header, head, tail = _small(fixture_capture, 0)
    start_resp = head[-1]
    assert start_resp.hex.startswith("f00202")
    head[-1] = dataclasses.replace(start_resp, hex="f002020800")  # INVALID_SAMPLE_RATE
    path = write_capture(tmp_path / "refused.capture.jsonl", header, head + tail)
    with pytest.raises(ProtocolError, match="INVALID_SAMPLE_RATE"):
        await replay_capture(path, Collect())


async def test_both_backends_instantiate_through_bleak(fixture_capture: Path) -> None:
    """Fails loudly if a bleak upgrade changes the backend contract."""
    script = ReplayScript(read_capture(fixture_capture))
    scanner = BleakScanner(backend=ReplayScanner, script=script)
    assert scanner.backend_id == "ReplayScanner"
    device = await BleakScanner.find_device_by_name(
        "Polar H10 0000SYN1", timeout=2.0, backend=ReplayScanner, script=script
    )
    assert device is not None and device.address == "A0:9E:1A:00:00:01"
    client = BleakClient(device, backend=ReplayClient)
    assert client.backend_id == "ReplayClient"
    async with client:
        assert client.is_connected and client.mtu_size == 512
        cp = client.services.get_characteristic(pmd.CP_UUID)
        data = client.services.get_characteristic(pmd.DATA_UUID)
        assert cp is not None and set(cp.properties) == {"read", "write", "indicate"}
        assert data is not None and data.properties == ["notify"]
        assert client.name == "Polar H10 0000SYN1"


async def test_find_device_by_profile_with_replay_scanner(fixture_capture: Path) -> None:
    script = ReplayScript(read_capture(fixture_capture))
    device = await ble.find_device(
        devices.get("polar_pmd"), timeout_s=2.0, scanner_backend=ReplayScanner, script=script
    )
    assert device.name == "Polar H10 0000SYN1"


async def test_no_bluetooth_gives_one_line_error(fixture_capture: Path) -> None:
    script = ReplayScript(read_capture(fixture_capture))

    class Broken(ReplayScanner):
        async def start(self) -> None:
            raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(BluetoothUnavailableError) as info:
        await ble.find_device(
            devices.get("polar_pmd"), timeout_s=1.0, scanner_backend=Broken, script=script
        )
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_fixture_header_is_contract(fixture_capture: Path) -> None:
    capture = read_capture(fixture_capture)
    assert set(capture.header) == {
        "format",
        "version",
        "profile",
        "settings",
        "device",
        "started_at",
    }
    assert json.dumps(capture.header)  # plain JSON
    assert capture.settings["sample_rate_hz"] == 50


def test_duplicate_polar_frames_are_dropped_and_counted(tmp_path: Path) -> None:
    """A frame delivered twice (bleak repeats callbacks after a reconnect on some versions)."""
    import gzip

    from otmon.demo import demo_capture

    with gzip.open(demo_capture(), "rt") as fh:
        lines = fh.read().splitlines()
    data = [i for i, line in enumerate(lines) if '"fb005c82' in line and '"notify"' in line]
    doubled = list(lines)
    for i in sorted(data[100:105], reverse=True):
        doubled.insert(i + 1, lines[i])  # same event again, right after the first
    path = tmp_path / "doubled.capture.jsonl"
    path.write_text("\n".join(doubled) + "\n")
    original, again = decode_capture(demo_capture()), decode_capture(path)
    assert again.n_duplicates == 5 and original.n_duplicates == 0
    assert again.n_decode_errors == 0 and again.gaps == []
    assert again.blocks == original.blocks
