"""The sink of `otmon collect`: blocks, gaps and button presses into the durable outbox."""

from __future__ import annotations

import logging

from analysis.samples import NS_PER_S, SampleBlock
from collector.outbox import DEFAULT_STREAM, Outbox, OutboxFull

log = logging.getLogger(__name__)

# A restart is reported as `collector_down` only when the new run's first sample comes more than
# 1.5 sample periods after the last committed one: the same tolerance the gap classification
# uses (architecture.md, issue 4, `fs_tolerance_periods=1.5`), so a sample-clock re-anchor of
# less than a period is not called a gap.
DOWN_TOLERANCE_PERIODS = 1.5
DEFAULT_TASK_LABEL = "task"


class OutboxSink:
    """Commit each block (and its events) to `outbox` before it counts; record gaps and marks.

    Created at start-up: a draft a killed run left is stored as a block first, then the end
    of the last block the outbox ever committed for `stream` is read, and the first block of
    this run reports the time in between as a ``collector_down`` gap (committed in the same
    transaction as that block).
    """

    def __init__(
        self, outbox: Outbox, *, stream: str = DEFAULT_STREAM, task_label: str = DEFAULT_TASK_LABEL
    ) -> None:
        self.outbox = outbox
        self.stream = stream
        self.task_label = task_label
        draft = outbox.draft(stream)
        try:
            outbox.promote_draft(stream)
        except OutboxFull as exc:
            assert draft is not None
            outbox.record_refused(draft, str(exc))
            outbox.drop_draft(stream)
        self._resume_from_ns = outbox.last_end_ns(stream)
        self._first = True
        self.gap_events: list[tuple[int, int, str]] = []  # (start_ns, end_ns, cause) recorded

    def _downtime(self, block: SampleBlock) -> list[tuple[str, dict[str, object]]]:
        last = self._resume_from_ns
        if last is None or block.t0_ns - last <= DOWN_TOLERANCE_PERIODS * NS_PER_S / block.fs_hz:
            return []
        self.gap_events.append((last, block.t0_ns, "collector_down"))
        log.info("collector was down for %.1f s before this run", (block.t0_ns - last) / 1e9)
        fields = {"stream": self.stream, "start_ns": last, "end_ns": block.t0_ns}
        return [("gap", {**fields, "cause": "collector_down"})]

    async def __call__(self, block: SampleBlock) -> None:
        """Store one upload block; when the outbox is full, refuse it loudly (counted)."""
        events = self._downtime(block) if self._first else []
        self._first = False
        try:
            self.outbox.put(block, self.stream, events=events)
        except OutboxFull as exc:
            self.outbox.record_refused(block, str(exc))
            self.outbox.drop_draft(self.stream)  # a prefix of `block`: refused with it
            for kind, fields in events:  # the refused samples are a gap the server must see
                self.outbox.put_event(kind, **fields)

    async def gap(self, start_ns: int, end_ns: int, cause: str) -> None:
        """Record a gap `[start_ns, end_ns)` of the stream (nothing when the span is empty)."""
        if end_ns <= start_ns:
            return
        self.outbox.put_event(
            "gap", stream=self.stream, start_ns=start_ns, end_ns=end_ns, cause=cause
        )
        self.gap_events.append((start_ns, end_ns, cause))
        log.info("gap of %.2f s (%s)", (end_ns - start_ns) / 1e9, cause)

    async def draft(self, block: SampleBlock) -> None:
        """Commit the block still being filled (SIGKILL then loses only what came after).

        The run's first draft carries the ``collector_down`` gap: its start is the run's first
        sample, and a run killed before its first full block would otherwise lose the gap (the
        next run promotes the draft, which moves the stream's end past the downtime).
        """
        if self._first:
            self._first = False
            for kind, fields in self._downtime(block):
                self.outbox.put_event(kind, **fields)
        self.outbox.put_draft(block, self.stream)

    async def press(self, at_ns: int) -> None:
        """A button press on the wearable: toggle the patient's task."""
        kind, _ = self.outbox.toggle_task(self.task_label, source="button", at_ns=at_ns)
        log.info("button: %s %r", kind, self.task_label)
