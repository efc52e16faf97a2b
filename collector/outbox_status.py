"""What `otmon status` shows, read from an outbox file (backlog, uploads, device, task)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.outbox import Outbox


def _alive(pid: int) -> bool:
    """True when process `pid` exists on this machine (a SIGKILLed collector leaves its pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ago(now_ns: int, then_ns: int | None) -> str | None:
    if then_ns is None:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(then_ns / 1e9))
    return f"{when} ({(now_ns - then_ns) / 1e9:.0f} s ago)"


def status_report(outbox: Outbox, now_ns: int | None = None) -> dict[str, Any]:
    """What `otmon status` shows: backlog size/age, uploads, device state (JSON-able)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    backlog = outbox.backlog()
    status = outbox.status()
    pid = status.get("collector_pid")
    state = status.get("device_state")
    if state and status.get("device_state_ns"):
        state = f"{state} since {_ago(now_ns, status['device_state_ns'])}"
    battery = status.get("battery_pct")
    task = status.get("open_task")
    return {
        "outbox": str(outbox.path),
        "backlog": f"{backlog.n_blocks} blocks, {backlog.n_samples} samples, "
        f"{backlog.used_bytes / 2**20:.1f} of {backlog.limit_bytes / 2**20:.0f} MiB "
        f"({backlog.used_fraction:.0%})",
        "backlog_blocks": backlog.n_blocks,
        "backlog_samples": backlog.n_samples,
        "backlog_bytes": backlog.used_bytes,
        "limit_bytes": backlog.limit_bytes,
        "backlog_age_s": None
        if backlog.oldest_stored_ns is None
        else (now_ns - backlog.oldest_stored_ns) / 1e9,
        "backlog_age": _ago(now_ns, backlog.oldest_stored_ns),
        "last_upload_ns": status.get("last_upload_ns"),
        "last_upload": _ago(now_ns, status.get("last_upload_ns")) or "never",
        "device": status.get("device"),
        "device_state": state,
        "battery": None if battery is None else f"{battery} %",
        "collector": f"running (pid {pid})" if pid and _alive(pid) else "not running",
        "refused_blocks": backlog.n_refused_blocks,
        "refused_samples": status.get("refused_samples", 0),
        "warning": status.get("warning"),
        "full": None
        if "refused_since_ns" not in status
        else "outbox full: new samples are "
        f"refused since {_ago(now_ns, status['refused_since_ns'])}",
        "task": None
        if task is None
        else f"{task['label']!r} since {_ago(now_ns, task['at_ns'])} ({task['source']})",
        "open_task": task,
        "backlog_events": backlog.n_events,
        "refused_events": backlog.n_refused_events,
        "last_error": status.get("last_error"),
        "last_refusal": status.get("last_refusal"),
    }


# Link states of the collector (collector.reconnect.LinkState values, plus "searching" before
# the first scan and "stopped") mapped to the three of the ingest status (architecture.md, #4).
LINK_OF_STATE = {
    "connected": "connected",
    "streaming": "connected",
    "searching": "connecting",
    "connecting": "connecting",
    "retrying": "connecting",
}


def heartbeat(
    outbox: Outbox, sending: Sequence[tuple[str, int]] = (), now_ns: int | None = None
) -> dict[str, Any]:
    """The `status` object of an ingest request that carries the blocks `sending`.

    The backlog figures count what still waits once this request is stored (the blocks it
    carries excluded), so the service never calls data it just stored "not uploaded".
    """
    status = outbox.status()
    battery = status.get("battery_pct")
    blocks, samples, oldest_t0 = outbox.backlog_excluding(sending)
    return {
        "at_ns": time.time_ns() if now_ns is None else now_ns,
        "link": LINK_OF_STATE.get(status.get("device_state") or "", "disconnected"),
        "battery_pct": battery if isinstance(battery, int) and 0 <= battery <= 100 else None,
        "backlog_blocks": blocks,
        "backlog_samples": samples,
        "backlog_oldest_t0_ns": oldest_t0,
        "decoded_until_ns": outbox.last_end_ns(),
    }
