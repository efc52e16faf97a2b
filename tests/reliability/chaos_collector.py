"""`otmon collect` in its own process with one fake: the wearable (a `LiveWearable` on a timeline).

Usage: python -m tests.reliability.chaos_collector TIMELINE.npz ORIGIN_NS ANCHOR_WALL_NS SPEED
           SERVER TOKEN OUTBOX JOINS_LOG
The command line, the config handling, the outbox, the uploader and the reconnect loop are
those of `otmon collect` (`otmon.collect_cmds.run_async`); only the bleak backends and the
clock are injected. Each time the collector joins the stream, the virtual join time is
appended to JOINS_LOG (the test uses it to tell samples sent to nobody from samples lost).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from collector.reconnect import Backoff
from collector.replay_live import LiveWearable, Timeline, WarpedClock
from otmon.cli import build_parser
from otmon.collect_cmds import Backends, run_async

# Reconnect back-off in wall seconds: the defaults (1 s doubling to 60 s) divided by about
# the speed factor, so a reconnect costs the same stretch of the recording as at home.
BACKOFF = Backoff(initial_s=0.01, factor=2.0, max_s=0.5)


def main(argv: list[str]) -> int:
    timeline_path, origin, anchor, speed, server, token, outbox, joins = argv
    logging.basicConfig(level=logging.INFO, format="%(created).3f %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    timeline = Timeline.load(Path(timeline_path))
    wearable = LiveWearable(timeline, WarpedClock(int(origin), int(anchor), float(speed)))

    def joined(t_ns: int) -> None:
        with open(joins, "a") as fh:
            fh.write(f"{t_ns}\n")

    wearable.on_join = joined
    args = build_parser().parse_args(
        ["collect", "--server", server, "--token", token, "--device", timeline.address,
         "--profile", timeline.profile, "--outbox", outbox]
    )  # fmt: skip
    backends = Backends(
        client=wearable.client_backend,
        scanner=wearable.scanner_backend,
        clock=wearable.clock,
        backoff=BACKOFF,
        scan_timeout_s=60.0,
    )
    return asyncio.run(run_async(args, backends))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
