"""The `otmon` command: wires the collector, the analysis and the service; computes nothing."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("otmon")


class CliError(Exception):
    """A problem to report to the user in one line, without a traceback."""


def _positive_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {text}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otmon",
        description="Wearable-assisted activity monitor for occupational therapy.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the service with a replayed home session")
    demo.add_argument("--port", type=_positive_port, default=8000, help="HTTP port (default 8000)")
    demo.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    demo.add_argument("--data-dir", type=Path, help="keep the demo database here (default: temporary)")
    demo.add_argument("--json", action="store_true", help="print one JSON line with url, email, password")

    serve = sub.add_parser("serve", help="run the therapist service")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=_positive_port, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--database-url", help="SQLAlchemy URL (default: OTMON_DATABASE_URL or SQLite)")

    user = sub.add_parser("user", help="manage therapist and admin accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="create a therapist or admin")
    add.add_argument("--email", required=True)
    add.add_argument("--role", choices=["therapist", "admin"], default="therapist")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--database-url", help="SQLAlchemy URL (default: OTMON_DATABASE_URL or SQLite)")

    replay = sub.add_parser("replay", help="decode a capture and upload it like a live collector")
    replay.add_argument("capture", type=Path, metavar="CAPTURE")
    replay.add_argument("--server", required=True, metavar="URL")
    replay.add_argument("--token", required=True, help="the device token")

    analyze = sub.add_parser("analyze", help="analyse a capture or a CSV recording offline")
    analyze.add_argument("file", type=Path, metavar="FILE")
    analyze.add_argument("--json", action="store_true", help="print the summary as JSON")
    analyze.add_argument("--tz", default="UTC", help="IANA time zone for calendar days (default UTC)")
    analyze.add_argument("--cutpoints", default=None, help="intensity cut-point set")
    analyze.add_argument("--epochs", type=Path, metavar="OUT.csv", help="write the epoch table")
    analyze.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of a .npy array (Hz)")
    analyze.add_argument("--start", metavar="ISO-8601", help="UTC time of a .npy array's first sample")
    analyze.add_argument("--session", action="store_true", help="treat the whole file as one session")
    analyze.add_argument("--activity", metavar="LABEL", help="task of the --session session (e.g. cooking)")

    from otmon import collect_cmds

    collect_cmds.add_parsers(sub)  # scan, record, collect, status
    from otmon import task_cmd

    task_cmd.add_parsers(sub)  # task start|stop
    from otmon import fatigue_refresh_cmd

    fatigue_refresh_cmd.add_parsers(sub)  # fatigue-refresh
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own state changes at INFO; libraries (alembic, uvicorn, httpx) only when they warn.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for name in ("otmon", "collector", "api"):
            logging.getLogger(name).setLevel(logging.INFO)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"otmon: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - known domain errors become one line, bugs do not
        message = _known_error_message(exc)
        if message is None:
            raise
        print(f"otmon: error: {message}", file=sys.stderr)
        return 2


def _known_error_message(exc: Exception) -> str | None:
    """One-line text for errors a user can cause (bad file, no server, no adapter)."""
    from collector.errors import CollectorError

    from analysis.errors import ReaderError

    if isinstance(exc, CollectorError | ReaderError):
        return str(exc)
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        return f"{exc.strerror}: {exc.filename}"
    database_message = _database_error_message(exc)
    if database_message is not None:
        return database_message
    return None


def _database_error_message(exc: Exception) -> str | None:
    """One line for a database that cannot be reached or a URL that cannot be used."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        return f"cannot use the database: {reason}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return f"bad database URL: {exc}"
    return None


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from otmon.demo import run_demo

        return run_demo(host=args.host, port=args.port, data_dir=args.data_dir, as_json=args.json)
    if args.command == "serve":
        return _serve(args)
    if args.command == "user":
        return _user_add(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "analyze":
        return _analyze(args)
    if args.command in ("scan", "record", "collect", "status"):
        from otmon import collect_cmds

        return collect_cmds.dispatch(args)
    if args.command == "task":
        from otmon import task_cmd

        return task_cmd.dispatch(args)
    if args.command == "fatigue-refresh":
        from otmon import fatigue_refresh_cmd

        return fatigue_refresh_cmd.run(args, settings=_settings(args.database_url), error=CliError)
    raise CliError(f"unknown command {args.command}")


def _settings(database_url: str | None):  # type: ignore[no-untyped-def]
    from api.settings import Settings

    return Settings(database_url=database_url) if database_url else Settings()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.db import upgrade

    settings = _settings(args.database_url)
    upgrade(settings.database_url)
    app = create_app(settings)
    log.info("otmon service on http://%s:%d/", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from api.db import make_engine, session_factory, upgrade
    from api.errors import Conflict
    from api.services import users

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CliError("the two passwords differ")
    if len(password) < 8:
        raise CliError("the password must have at least 8 characters")
    settings = _settings(args.database_url)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as db:
            try:
                user = users.create(db, email=args.email, password=password, role=args.role)
            except Conflict as exc:
                raise CliError(str(exc)) from exc
            db.commit()
            print(f"created {user.role} {user.email} (id {user.id})")
    finally:
        engine.dispose()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from collector.replay import replay_capture
    from collector.upload import Uploader

    async def run() -> int:
        async with Uploader(args.server, args.token) as uploader:
            result = await replay_capture(args.capture, uploader.send)
        print(
            f"replayed {args.capture.name}: {result.n_samples} samples in {result.n_blocks} blocks "
            f"uploaded to {args.server} ({result.n_decode_errors} undecodable notifications, "
            f"{len(result.gaps)} gaps)"
        )
        return 0

    return asyncio.run(run())


def _load_blocks(path: Path, **options: object) -> tuple[list, dict]:  # type: ignore[type-arg]
    """Blocks of a capture (decoded like the collector does) or of a recording file."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        from collector.session import decode_capture

        decoded = decode_capture(path)
        info = {
            "format": "otmon-capture",
            "profile": decoded.header.get("profile"),
            "notifications": decoded.n_notifications,
            "decode_errors": decoded.n_decode_errors,
        }
        return list(decoded.blocks), info
    from analysis.readers import read_recording

    try:
        recording = read_recording(path, **options)
    except ValueError as exc:
        if type(exc) is not ValueError:
            raise  # ReaderError: one line via _known_error_message
        raise CliError(str(exc)) from exc
    return list(recording.blocks), {"format": recording.device.get("format", "unknown")}


def _analyze(args: argparse.Namespace) -> int:
    from otmon.analyze_cmd import run_analyze

    return run_analyze(args, load_blocks=_load_blocks, write_epochs=_write_epochs_csv, error=CliError)


def _write_epochs_csv(path: Path, epochs) -> None:  # type: ignore[no-untyped-def]
    import csv

    rows = epochs.to_rows()
    with path.open("w", newline="") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
