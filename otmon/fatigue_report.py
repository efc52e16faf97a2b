"""`fatigue` of the sessions of `otmon analyze`: wires `api.services.fatigue_windows`, as the service does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.fatigue_features import FatigueWindows
from analysis.samples import SampleBlock
from analysis.seconds import SecondGrid
from analysis.sessions import SessionSpan
from api.services import fatigue_windows


def add_fatigue(
    blocks: Sequence[SampleBlock],
    grid: SecondGrid,
    spans: Sequence[SessionSpan],
    sessions: Sequence[dict[str, Any]],
) -> None:
    """Set ``fatigue`` of each session object (``sessions[i]`` summarises ``spans[i]``).

    Windows are computed only around the sessions, from the same blocks and in the same way
    as the service computes them on ingest, so the objects equal the service's.
    """
    parts = [
        fatigue_windows.windows_for_starts(blocks, first_start_ns=first, last_start_ns=last).windows
        for first, last in fatigue_windows.session_start_ranges(spans)
    ]
    windows = FatigueWindows.concat(parts)
    block_spans = [(b.t0_ns, b.end_ns, b.fs_hz) for b in blocks]  # the rate gate's rates
    for session, fatigue in zip(
        sessions,
        fatigue_windows.sessions_fatigue(windows, spans, grid=grid, block_spans=block_spans),
        strict=True,
    ):
        session["fatigue"] = fatigue
