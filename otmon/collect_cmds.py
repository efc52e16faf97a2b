"""`otmon scan`, `otmon record`, `otmon collect`: live collection from a wearable (wiring only).

The bleak backends are injectable only from Python (`Backends`, used by tests with emulated
devices); the command line always uses the platform's Bluetooth stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

    from collector.reconnect import Backoff, CollectionControl, CollectionResult
    from collector.session import Clock, Sink
    from collector.upload import Uploader

COMMANDS = ("scan", "record", "collect")
# A scan for `otmon scan`: most wearables advertise every 0.1–1 s; 10 s also catches slow ones.
DEFAULT_SCAN_S = 10.0


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


def add_parsers(sub: Any) -> None:
    """Add the scan, record and collect subcommands to the `otmon` subparsers."""
    scan = sub.add_parser("scan", help="list nearby supported wearables")
    scan.add_argument("--timeout", type=_positive_s, default=DEFAULT_SCAN_S, metavar="S")
    for name, text in (
        ("record", "capture a wearable's notifications to a file"),
        ("collect", "stream a wearable's samples to the service"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--device", required=True, metavar="ADDRESS|auto")
        cmd.add_argument("--profile", metavar="NAME", help="device profile (default: detect)")
        cmd.add_argument("--duration", type=_positive_s, metavar="S", help="stop after S seconds")
        if name == "record":
            cmd.add_argument("--out", required=True, type=Path, metavar="FILE")
        else:
            cmd.add_argument("--server", required=True, metavar="URL")
            cmd.add_argument("--token", required=True, help="the device token")


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
    args: argparse.Namespace, backends: Backends, sink: Sink, capture: Any = None
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


def upload_sink(uploader: Uploader) -> Sink:
    """The sink of `otmon collect`: blocks go to the uploader.

    Seam for the durable outbox (a later issue): it replaces this function, storing each block
    before the uploader posts it, so nothing is lost when the service is unreachable.
    """
    return uploader.send


async def _collect(args: argparse.Namespace, backends: Backends) -> int:
    from collector.upload import Uploader

    async with Uploader(args.server, args.token, transport=backends.upload_transport) as uploader:
        result = await _run(args, backends, upload_sink(uploader))
    print(f"uploaded to {args.server}: {_summary(result)}")
    return 0 if result.stopped_by != "gave up" else 1
