"""A BLE capture with a reconnect and dropped frames, cut from the Polar fixture (for gap tests).

The fixture's recorded notifications are kept byte for byte; a stretch of them is replaced
by a `disconnect` and a later `connect` event (the link lost and re-established, as a live
capture records it), and a shorter stretch is simply missing (frames the device's clock shows
lost inside the connection).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "fixtures" / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
# Notification indices (≈ 0.72 s each): a ~72-s link loss and ~7 s of lost frames.
RECONNECT = (1000, 1100)
DROPPED = (3000, 3010)


def write_gapped_capture(path: Path) -> Path:
    """Write the gapped capture to ``path`` (.jsonl.gz) and return it."""
    with gzip.open(SOURCE, "rt") as fh:
        header, *lines = fh.read().splitlines()
    events = [json.loads(line) for line in lines]
    notify = [i for i, e in enumerate(events) if e["kind"] == "notify"]
    first, last = notify[RECONNECT[0]], notify[RECONNECT[1]]
    cut = set(range(first, last)) | set(notify[DROPPED[0] : DROPPED[1]])
    out: list[dict] = []  # type: ignore[type-arg]
    for i, e in enumerate(events):
        if i == first:
            out.append({"t_ns": e["t_ns"], "kind": "disconnect", "char": events[0]["char"], "hex": ""})
            out.append({"t_ns": events[last]["t_ns"] - 1_000_000, "kind": "connect", "char": events[0]["char"], "hex": ""})
        if i not in cut:
            out.append(e)
    with gzip.open(path, "wt") as fh:
        fh.write(header + "\n" + "".join(json.dumps(e) + "\n" for e in out))
    return path
