"""`otmon scan|record|collect|status`: live collection from a wearable (wiring only).

`collect` decodes → commits each block to the durable outbox → a background OutboxUploader
posts it; settings come from `--config FILE` (TOML) with flags overriding. `status` reads the
outbox file: backlog, last upload, device state.

The bleak backends are injectable only from Python (`Backends`, used by tests with emulated
devices); the command line always uses the platform's Bluetooth stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

    from collector.config import CollectorConfig
    from collector.outbox import Outbox
    from collector.outbox_sink import OutboxSink
    from collector.reconnect import Backoff, CollectionControl, CollectionResult
    from collector.session import Clock, Sink

log = logging.getLogger(__name__)

COMMANDS = ("scan", "record", "collect", "status")
# A scan for `otmon scan`: most wearables advertise every 0.1–1 s; 10 s also catches slow ones.
DEFAULT_SCAN_S = 10.0
# Battery Level characteristic of the standard Battery Service 0x180F (Bluetooth SIG GATT
# assigned numbers): one byte, 0-100 %; most wearables expose it (Polar H10, InfiniTime, Thingy).
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
BATTERY_READ_TIMEOUT_S = 5.0
# The uploader looks for new blocks every 0.5 s when idle (a block is ~60 s of samples).
UPLOAD_IDLE_S = 0.5


@dataclass(frozen=True, slots=True)
class Backends:
    """What tests inject instead of the platform's Bluetooth stack."""

    client: type[BaseBleakClient] | None = None
    scanner: type[BaseBleakScanner] | None = None
    clock: Clock | None = None
    backoff: Backoff | None = None
    scan_timeout_s: float | None = None
    upload_transport: httpx.AsyncBaseTransport | None = None


def _positive_s(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 s, got {text}")
    return value


def _positive_mb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MiB, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 MiB, got {text}")
    return value


def _config_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--config", type=Path, metavar="FILE", help="collector config (TOML)")
    cmd.add_argument("--outbox", type=Path, metavar="FILE", help="outbox file (SQLite)")


def add_parsers(sub: Any) -> None:
    """Add the scan, record, collect and status subcommands to the `otmon` subparsers."""
    scan = sub.add_parser("scan", help="list nearby supported wearables")
    scan.add_argument("--timeout", type=_positive_s, default=DEFAULT_SCAN_S, metavar="S")
    for name, text in (
        ("record", "capture a wearable's notifications to a file"),
        ("collect", "stream a wearable's samples to the service"),
    ):
        cmd = sub.add_parser(name, help=text)
        # collect may take the device from its config file
        cmd.add_argument("--device", required=name == "record", metavar="ADDRESS|auto")
        cmd.add_argument("--profile", metavar="NAME", help="device profile (default: detect)")
        cmd.add_argument("--duration", type=_positive_s, metavar="S", help="stop after S seconds")
        if name == "record":
            cmd.add_argument("--out", required=True, type=Path, metavar="FILE")
        else:
            cmd.add_argument(
                "--server", metavar="URL", help="the service (or `server` in --config)"
            )
            cmd.add_argument("--token", help="the device token (or `token` in --config)")
            _config_flags(cmd)
            cmd.add_argument(
                "--outbox-limit-mb",
                type=_positive_mb,
                metavar="MB",
                help="outbox disk limit in MiB",
            )
    status = sub.add_parser("status", help="show the collector's backlog, uploads and device")
    _config_flags(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")


def dispatch(args: argparse.Namespace) -> int:
    """Run `otmon scan|record|collect` on the platform's Bluetooth stack."""
    return asyncio.run(run_async(args))


async def run_async(args: argparse.Namespace, backends: Backends | None = None) -> int:
    """Run `otmon scan|record|collect` in the running event loop (tests inject `backends`)."""
    backends = backends or Backends()
    if args.command == "scan":
        return await _scan(args, backends)
    if args.command == "record":
        return await _record(args, backends)
    if args.command == "status":
        return _status(args)
    return await _collect(args, backends)


async def _scan(args: argparse.Namespace, backends: Backends) -> int:
    from collector.ble import scan_supported

    found = await scan_supported(args.timeout, scanner_backend=backends.scanner)
    if not found:
        print(f"no supported devices found within {args.timeout:g} s")
        return 0
    print(f"{'name':<24}{'address':<20}{'profile':<14}{'RSSI':>5}")
    for f in found:
        rssi = "" if f.rssi is None else str(f.rssi)
        print(f"{(f.name or '?'):<24}{f.address:<20}{f.profile:<14}{rssi:>5}")
    return 0


async def _find(args: argparse.Namespace, backends: Backends) -> tuple[Any, Any]:
    from collector import devices
    from collector.ble import SCAN_TIMEOUT_S, find_supported_device
    from otmon.cli import CliError

    if args.profile is not None and args.profile not in devices.PROFILES:
        known = ", ".join(sorted(devices.PROFILES))
        raise CliError(f"unknown profile {args.profile!r}; known: {known}")
    address = None if args.device == "auto" else args.device
    return await find_supported_device(
        address,
        args.profile,
        timeout_s=backends.scan_timeout_s or SCAN_TIMEOUT_S,
        scanner_backend=backends.scanner,
    )


@contextlib.contextmanager
def _stop_on_signals(control: CollectionControl, duration_s: float | None) -> Iterator[None]:
    """Ctrl-C / SIGTERM / --duration end the collection gracefully (stop command, flush)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, control.request_stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / not supported
            pass
    timer = loop.call_later(duration_s, control.request_stop) if duration_s else None
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _run(
    args: argparse.Namespace,
    backends: Backends,
    sink: Sink,
    capture: Any = None,
    link_log: Any = None,
    on_session: Any = None,
    events: Any = None,
) -> CollectionResult:
    from collector.reconnect import CollectionControl, run_collection

    device, profile = await _find(args, backends)
    control = CollectionControl()
    extra: dict[str, Any] = {}
    if backends.clock is not None:
        extra["clock"] = backends.clock
    with _stop_on_signals(control, args.duration):
        return await run_collection(
            device,
            profile,
            {},
            sink,
            backoff=backends.backoff,
            control=control,
            capture=capture(profile) if capture is not None else None,
            backend=backends.client,
            link_log=link_log,
            on_session=on_session,
            events=events,
            **extra,
        )


def _summary(result: CollectionResult) -> str:
    gaps = ", ".join(f"{g.length_ns / 1e9:.1f} s" for g in result.link_gaps) or "none"
    return (
        f"{result.n_samples} samples in {result.n_blocks} blocks over {len(result.sessions)} "
        f"connection(s); {result.n_decode_errors} undecodable notifications; "
        f"gaps from drops: {gaps}; stopped by {result.stopped_by}"
    )


async def _record(args: argparse.Namespace, backends: Backends) -> int:
    from collector.capture import CaptureWriter

    writers: list[CaptureWriter] = []

    def open_capture(_profile: Any) -> CaptureWriter:
        writers.append(CaptureWriter(args.out))  # created only once a device was found
        return writers[0]

    async def discard(_block: Any) -> None:
        """`record` keeps the notifications only; decoding just feeds the counts."""

    try:
        result = await _run(args, backends, discard, open_capture)
    finally:
        for writer in writers:
            writer.close()
    print(f"recorded to {args.out}: {_summary(result)}")
    return 0 if result.stopped_by != "gave up" else 1


def _config(args: argparse.Namespace) -> CollectorConfig:
    """The config file (if any) with the command-line flags applied over it."""
    from collector.config import CollectorConfig, load_config, merge

    config = load_config(args.config) if args.config is not None else CollectorConfig()
    return merge(
        config,
        server=getattr(args, "server", None),
        token=getattr(args, "token", None),
        device=getattr(args, "device", None),
        profile=getattr(args, "profile", None),
        outbox=args.outbox,
        outbox_limit_mb=getattr(args, "outbox_limit_mb", None),
    )


def outbox_sink(outbox: Outbox, task_label: str = "task") -> OutboxSink:
    """The sink of `otmon collect`: blocks, gaps and button presses into the outbox."""
    from collector.outbox_sink import OutboxSink

    return OutboxSink(outbox, task_label=task_label)


async def _collect(args: argparse.Namespace, backends: Backends) -> int:
    from collector.outbox import Outbox
    from collector.reconnect import LinkLog, LinkState
    from collector.outbox_upload import OutboxUploader
    from otmon.cli import CliError

    config = _config(args)
    where = f" in {args.config}" if args.config is not None else ""
    for key in ("server", "token", "device"):
        if getattr(config, key) is None:
            raise CliError(f"otmon collect needs --{key} (or `{key}` in the config file{where})")
    server, token, device = str(config.server), str(config.token), str(config.device)
    args.device, args.profile = device, config.profile
    outbox = Outbox(
        config.outbox_path, limit_bytes=config.limit_bytes, warn_fraction=config.warn_fraction
    )
    refused_before = outbox.status().get("refused_samples", 0)
    outbox.set_status(
        device=config.device,
        server=config.server,
        collector_pid=os.getpid(),
        started_ns=time.time_ns(),
        device_state="searching",
    )

    clients: list[Any] = []
    reads: list[asyncio.Task[None]] = []

    def on_link(state: LinkState, detail: str) -> None:
        outbox.set_status(
            device_state=state.value, device_detail=detail or None, device_state_ns=time.time_ns()
        )
        if state is LinkState.STREAMING and clients:
            reads.append(asyncio.get_running_loop().create_task(_read_battery(clients[-1], outbox)))

    from collector.outbox_sink import OutboxSink

    sink = OutboxSink(outbox, task_label=config.task_label)  # first: where the last run ended
    uploader = OutboxUploader(outbox, server, token, transport=backends.upload_transport)
    stop = asyncio.Event()
    upload_task = asyncio.create_task(uploader.run(stop, idle_s=UPLOAD_IDLE_S))
    try:
        result = await _run(
            args,
            backends,
            sink,
            link_log=LinkLog(name=device, on_change=on_link),
            on_session=lambda _session, client: clients.append(client),
            events=sink,
        )
        deadline = time.monotonic() + config.drain_timeout_s
        while _waiting(outbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*reads, return_exceptions=True)
        await upload_task
        await uploader.aclose()
        outbox.set_status(device_state="stopped", collector_pid=None)
        backlog = outbox.backlog()
        refused = outbox.status().get("refused_samples", 0) - refused_before
        outbox.close()
    print(
        f"uploaded to {config.server}: {_summary(result)}; "
        f"{backlog.n_samples} samples ({backlog.n_blocks} blocks) wait in {config.outbox_path}"
        + (f"; {refused} samples REFUSED (outbox full)" if refused else "")
    )
    return 0 if result.stopped_by != "gave up" else 1


def _waiting(outbox: Outbox) -> bool:
    backlog = outbox.backlog()
    return bool(backlog.n_blocks or backlog.n_events)


async def _read_battery(client: Any, outbox: Outbox) -> None:
    """Record the standard Battery Level (0-100 %) in the status, if the device has it."""
    from bleak.exc import BleakError

    char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
    if char is None:
        return
    try:
        value = await asyncio.wait_for(client.read_gatt_char(char), BATTERY_READ_TIMEOUT_S)
    except (BleakError, TimeoutError, OSError, EOFError) as exc:
        log.info("battery level not read: %s", exc)
        return
    if len(value) >= 1 and value[0] <= 100:
        outbox.set_status(battery_pct=int(value[0]), battery_ns=time.time_ns())


def _status(args: argparse.Namespace) -> int:
    """Print the collector's status from its outbox file (never creates one)."""
    import json

    from collector.outbox import Outbox
    from collector.outbox_status import status_report
    from otmon.cli import CliError

    config = _config(args)
    if not config.outbox_path.exists():
        raise CliError(f"no outbox at {config.outbox_path}: the collector has not run yet")
    with Outbox(
        config.outbox_path, limit_bytes=config.limit_bytes, warn_fraction=config.warn_fraction
    ) as outbox:
        report = status_report(outbox)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    for label, key in STATUS_LINES:
        value = report.get(key)
        print(f"{label:<18}{('none' if key == 'task' else 'unknown') if value is None else value}")
    for key in ("warning", "full", "last_error", "last_refusal"):
        if report.get(key):
            print(f"{key.replace('_', ' ').upper()}: {report[key]}")
    return 0


# (label, status_report key) of the lines `otmon status` prints.
STATUS_LINES = (
    ("outbox", "outbox"),
    ("backlog", "backlog"),
    ("oldest waiting", "backlog_age"),
    ("last upload", "last_upload"),
    ("device", "device"),
    ("connection", "device_state"),
    ("battery", "battery"),
    ("collector", "collector"),
    ("events waiting", "backlog_events"),
    ("task", "task"),
    ("refused by server", "refused_blocks"),
    ("refused events", "refused_events"),
    ("refused (full)", "refused_samples"),
)
