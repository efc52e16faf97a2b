"""`otmon task start LABEL` / `otmon task stop`: the patient's task marks, into the outbox.

The marks are events in the outbox file that `otmon collect` uploads (architecture.md, issue 4:
"Command line"); the running collector need not be touched: the file is WAL with a busy
timeout, so a mark waits for the collector's write transaction and never fails because of it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from collector.outbox_events import BORG_MAX, BORG_MIN, MAX_LABEL_CHARS, MAX_NOTE_CHARS


def add_parsers(sub: Any) -> None:
    """Add `task start` and `task stop` to the `otmon` subparsers."""
    task = sub.add_parser("task", help="mark the start or the end of a task (e.g. cooking)")
    actions = task.add_subparsers(dest="task_action", required=True, metavar="start|stop")
    start = actions.add_parser("start", help="start a task (stops the open one first)")
    start.add_argument("label", metavar="LABEL", help=f"the task, 1-{MAX_LABEL_CHARS} characters")
    stop = actions.add_parser("stop", help="stop the open task, with an optional effort rating")
    stop.add_argument("--borg", metavar="N", help=f"effort, Borg scale {BORG_MIN}-{BORG_MAX}")
    stop.add_argument("--note", metavar="TEXT", help=f"a short note (<= {MAX_NOTE_CHARS} chars)")
    for cmd in (start, stop):
        where = cmd.add_mutually_exclusive_group()
        where.add_argument("--config", type=_path, metavar="FILE", help="collector config (TOML)")
        where.add_argument("--outbox", type=_path, metavar="FILE", help="outbox file (SQLite)")


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text).expanduser()


def parse_borg(text: str) -> int:
    """The Borg rating in `text`; CliError (one line) unless it is an integer 6-20."""
    from otmon.cli import CliError

    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not BORG_MIN <= value <= BORG_MAX:
        raise CliError(
            f"--borg must be an integer from {BORG_MIN} (no effort) to {BORG_MAX} "
            f"(maximal effort), got {text!r}"
        )
    return value


def ask_borg() -> int | None:
    """Ask on the terminal for the Borg rating until it is valid; Enter (or EOF) skips."""
    from otmon.cli import CliError

    while True:
        try:
            answer = input(f"Effort {BORG_MIN}-{BORG_MAX} (Borg scale; Enter to skip): ")
        except EOFError:
            return None
        if not answer.strip():
            return None
        try:
            return parse_borg(answer)
        except CliError:
            print(f"please type a whole number from {BORG_MIN} to {BORG_MAX}, or just Enter")


def dispatch(args: argparse.Namespace) -> int:
    """Write the task_start / task_stop event(s) to the outbox and say what was done."""
    from collector.outbox import Outbox
    from otmon.cli import CliError
    from otmon.collect_cmds import _config

    config = _config(args)
    if args.task_action == "start":
        label = args.label.strip()
        if not label or len(label) > MAX_LABEL_CHARS:
            raise CliError(f"LABEL must be 1-{MAX_LABEL_CHARS} characters, got {args.label!r}")
        borg = note = None
    else:
        borg = parse_borg(args.borg) if args.borg is not None else None
        note = args.note.strip() or None if args.note is not None else None
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise CliError(f"--note must be at most {MAX_NOTE_CHARS} characters, got {len(note)}")
        if args.borg is None and sys.stdin.isatty():
            borg = ask_borg()
    with Outbox(config.outbox_path) as outbox:
        before = outbox.open_task()
        at = time.strftime("%H:%M", time.localtime())
        if args.task_action == "start":
            outbox.start_task(label, source="cli")
            if before is not None:
                print(f"stopped {before['label']!r}")
            print(f"started {label!r} at {at}")
        else:
            outbox.stop_task(source="cli", borg=borg, note=note)
            what = repr(before["label"]) if before is not None else "(no task was open)"
            extra = "".join(
                [f", effort {borg}" if borg is not None else "", f", note {note!r}" if note else ""]
            )
            print(f"stopped {what} at {at}{extra}")
    print(f"(saved in {config.outbox_path}; `otmon collect` uploads it)")
    return 0
