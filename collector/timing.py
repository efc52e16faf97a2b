"""Sample times for devices without a device clock: sample counting with a robust clock fit.

MetaWear, micro:bit, PineTime, Thingy:52 and WitMotion notify samples without a timestamp
(ble-protocols.md §0). Their samples are counted at the nominal rate, and the device clock
(the line "sample index -> UTC time") is re-estimated from the host arrival times. Arrivals
are delayed by the BLE connection interval and by host scheduling, never early, so the clock
is the **lower envelope** of (sample index, arrival time):

- slope: the chord between the lowest bucket minima (the earliest arrival relative to the
  current line in each `bucket_s` bucket) of the first and the last third of a sliding
  `window_s` window: two points of the lower envelope at least a third of the window apart,
  clamped to nominal ± `max_drift_ppm`, so ±100 ppm crystal drift does not accumulate. The
  nominal rate stands until the chord spans `min_fit_s`: the earliest arrival of a bucket is
  only known to ~1 period, so a short chord would give a rate hundreds of ppm off, and a
  rate is what `BlockAssembler` extends over a whole upload block. A
  median of slopes between neighbouring buckets is not enough: connection-event quantisation makes the earliest delay a sawtooth that
  follows the host's clock between the moments a sample lands on a connection event;
- intercept: the lowest arrival relative to that slope (running minimum; refreshed over the
  window whenever a bucket completes).

When a refit moves the line, the reported times follow it by at most `SLEW_PERIODS` of a
period per notification, so consecutive blocks stay contiguous for `BlockAssembler` (a step of
half a period would be taken for a gap or an overlap).

Losses and duplicates (docs/architecture.md, "Timestamps"):

- a notification arriving more than `gap_tolerance_s` later than its predicted time (or a
  sequence-counter jump, when the device has one) means samples were lost: the sample index
  jumps by the missing count and a `ClockGap` (start, length) is reported at once;
- a shorter loss cannot be told from jitter on arrival; it is found when the earliest arrival
  over the last `confirm_s` stays 1.5 periods late (`ClockGap.detected="floor"`);
  the samples in between carry that error. A single lost sample may go unreported: it moves
  the clock by one period until the envelope re-forms (at most `window_s`);
- a notification with the same payload (or sequence number) as the previous one that arrives
  within `dup_window_s` of it (two BLE packets are >= ~0.7 ms apart on air: 1M PHY, 27-byte
  PDU + IFS + ack), or that counted as new would arrive half a period before its own sample
  time (impossible for a new sample, once a first `bucket_s` has settled the envelope), is a
  duplicate delivery (e.g. the double callbacks some bleak versions deliver after
  a reconnect): it is dropped and counted.

Usage (in a decoder; pure, no I/O)::

    clock = SampleClock(nominal_fs_hz=50.0)
    timing = clock.push(n_samples=1, received_ns=t_ns, payload=payload)  # or seq=counter
    if timing is None:
        return []  # duplicate delivery, already counted in clock.n_duplicates
    block = SampleBlock(t0_ns=timing.t0_ns, fs_hz=timing.fs_hz, accel_g=accel)
    # timing.gap is not None when samples were lost before this block (also in clock.gaps)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

NS_PER_S = 1_000_000_000
# The earliest arrival over `confirm_s` must be this many periods late to mean lost samples:
# connection-event quantisation alone lifts it by up to gcd(connection interval, period) <= 1
# period (while a sample never lands on a connection event), so 1.5 periods cannot be jitter;
# with n samples per notification a loss is n periods, and n - 0.5 periods is the threshold.
FLOOR_LATE_PERIODS = 1.5
# Reported times follow a moved fit line by at most this many periods per notification: well
# inside the half period within which `BlockAssembler` takes consecutive blocks as contiguous.
SLEW_PERIODS = 0.25


@dataclass(frozen=True, slots=True)
class ClockGap:
    """Samples lost before a block: UTC time of the first missing sample and the gap length."""

    start_ns: int
    length_ns: int
    n_samples: int
    detected: Literal["arrival", "floor", "sequence"]


@dataclass(frozen=True, slots=True)
class BlockTiming:
    """Timing of one notification's samples: first sample time, rate, and a gap before it."""

    t0_ns: int
    fs_hz: float
    first_index: int  # index of the first sample since the first sample of the stream
    gap: ClockGap | None = None


class SampleClock:
    """Sample counting with a lower-envelope fit of arrival time vs sample index (see module)."""

    def __init__(
        self,
        nominal_fs_hz: float,
        *,
        gap_tolerance_s: float = 0.5,
        confirm_s: float = 1.0,
        bucket_s: float = 10.0,
        window_s: float = 600.0,
        max_drift_ppm: float = 1000.0,
        dup_window_s: float = 0.0003,
        min_fit_s: float = 120.0,
        seq_modulo: int | None = None,
    ) -> None:
        if not (math.isfinite(nominal_fs_hz) and nominal_fs_hz > 0):
            raise ValueError(f"nominal_fs_hz must be positive, got {nominal_fs_hz!r}")
        for name, value in (
            ("gap_tolerance_s", gap_tolerance_s),
            ("confirm_s", confirm_s),
            ("bucket_s", bucket_s),
            ("window_s", window_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.nominal_fs_hz = float(nominal_fs_hz)
        self._p_nom = NS_PER_S / self.nominal_fs_hz  # nominal period, ns
        self._p = self._p_nom  # estimated period, ns
        self._p_lo = self._p_nom * (1 - max_drift_ppm * 1e-6)
        self._p_hi = self._p_nom * (1 + max_drift_ppm * 1e-6)
        self._gap_tol = gap_tolerance_s * NS_PER_S
        self._confirm_ns = confirm_s * NS_PER_S
        self._bucket_samples = max(1, round(bucket_s * self.nominal_fs_hz))
        self._n_buckets = max(3, math.ceil(window_s / bucket_s))
        self._dup_ns = dup_window_s * NS_PER_S
        self._min_fit_samples = min_fit_s * self.nominal_fs_hz
        self._seq_modulo = seq_modulo
        self._base: int | None = None  # arrival of the first notification (int ns); y is relative
        self._c = 0.0  # intercept: time of sample 0 relative to _base, ns
        self._k = 0  # index of the next sample
        self._buckets: deque[tuple[float, float]] = deque(maxlen=self._n_buckets)
        self._bucket = -1
        self._bucket_min: tuple[float, float] | None = None  # (x, y) earliest in open bucket
        self._floor: deque[tuple[float, float]] = deque()  # (y, r): monotonic min of residuals
        self._floor_since = 0.0  # arrival (relative) since which the floor window is valid
        self._last_payload: bytes | None = None
        self._last_seq: int | None = None
        self._last_y = -math.inf
        self._offset = 0.0  # reported minus fitted time, slewed to 0 (ns)
        self._r_typ = 0.0  # typical residual (EMA), ns: a gap length excludes the usual delay
        self.gaps: list[ClockGap] = []
        self.n_notifications = 0
        self.n_duplicates = 0
        self.n_samples = 0

    @property
    def fs_hz(self) -> float:
        """Current rate estimate in Hz."""
        return NS_PER_S / self._p

    @property
    def n_gaps(self) -> int:
        """Number of gaps reported."""
        return len(self.gaps)

    @property
    def n_missing_samples(self) -> int:
        """Total samples lost in reported gaps."""
        return sum(g.n_samples for g in self.gaps)

    def sample_time_ns(self, index: int) -> int:
        """UTC time (ns) of sample `index` on the current clock estimate."""
        if self._base is None:
            raise ValueError("sample_time_ns: no notification pushed yet")
        return self._base + round(self._c + self._p * index)

    def push(
        self,
        n_samples: int,
        received_ns: int,
        payload: bytes | None = None,
        seq: int | None = None,
    ) -> BlockTiming | None:
        """Time one notification of `n_samples` samples; None for a duplicate delivery."""
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.n_notifications += 1
        if self._base is None:
            self._base = int(received_ns)
            self._c = -self._p * (n_samples - 1)  # the last sample was sent at arrival
        y = float(received_ns - self._base)
        x_last = self._k + n_samples - 1
        same = (seq is not None and seq == self._last_seq) or (
            seq is None and payload is not None and payload == self._last_payload
        )
        early = bool(self._buckets) and y - (self._c + self._p * x_last) < -self._p / 2
        if same and self.n_samples and (y - self._last_y <= self._dup_ns or early):
            self.n_duplicates += 1
            return None
        gap: ClockGap | None = None
        if seq is not None and self._last_seq is not None and self._seq_modulo:
            missing = ((seq - self._last_seq - 1) % self._seq_modulo) * n_samples
            if missing:
                gap = self._skip(missing, "sequence", y)
        r = y - (self._c + self._p * (self._k + n_samples - 1))
        per_note = self._p * n_samples  # BLE loses whole notifications
        if gap is None and r > self._gap_tol and self.n_samples:
            # Rounded down a little: an undercount is caught by the floor check later, an
            # overcount would move the clock a period early.
            missing = n_samples * max(1, math.floor((r - self._r_typ) / per_note + 0.3))
            gap = self._skip(missing, "arrival", y)
            r -= missing * self._p
        if gap is None and self._floor_late(y, r, max(FLOOR_LATE_PERIODS, n_samples - 0.5)):
            missing = n_samples * max(1, math.floor(self._floor[0][1] / per_note + 0.3))
            gap = self._skip(missing, "floor", y)
            r -= missing * self._p
        x_last = self._k + n_samples - 1
        before = self._c + self._p * self._k  # fitted time of this block's first sample
        self._track(x_last, y, r)
        if r < 0:
            self._c += r  # earliest arrival so far: the envelope moves down
        self._r_typ += 0.01 * (min(max(r, 0.0), self._gap_tol) - self._r_typ)
        after = self._c + self._p * self._k
        # A refit moves the line; the reported times follow it by at most SLEW_PERIODS per
        # notification, so consecutive blocks stay contiguous (no jump the assembler would
        # take for a gap or an overlap). A gap is a jump anyway: no slewing across it.
        offset = 0.0 if gap is not None else self._offset + before - after
        slew = SLEW_PERIODS * self._p
        self._offset = max(offset - slew, 0.0) if offset > 0 else min(offset + slew, 0.0)
        timing = BlockTiming(
            t0_ns=self._base + round(after + self._offset),
            fs_hz=NS_PER_S / self._p,
            first_index=self._k,
            gap=gap,
        )
        self._k += n_samples
        self.n_samples += n_samples
        self._last_payload, self._last_seq, self._last_y = payload, seq, y
        return timing

    def _skip(
        self, missing: int, detected: Literal["arrival", "floor", "sequence"], y: float
    ) -> ClockGap:
        """Advance the sample index over `missing` lost samples and record the gap."""
        assert self._base is not None
        gap = ClockGap(
            start_ns=self._base + round(self._c + self._p * self._k),
            length_ns=round(self._p * missing),
            n_samples=missing,
            detected=detected,
        )
        self._k += missing
        self._floor.clear()
        self._floor_since = y
        self.gaps.append(gap)
        return gap

    def _floor_late(self, y: float, r: float, late_periods: float) -> bool:
        """Add residual `r`; True when the earliest arrival over `confirm_s` is too late."""
        floor = self._floor
        while floor and floor[-1][1] >= r:
            floor.pop()
        floor.append((y, r))
        if y - self._confirm_ns > self._floor_since:
            while floor and floor[0][0] < y - self._confirm_ns:
                floor.popleft()
            return bool(floor) and floor[0][1] >= late_periods * self._p
        return False

    def _track(self, x: float, y: float, r: float) -> None:
        """Bucket minima and, when a bucket completes, a fresh slope and intercept."""
        bucket = int(x) // self._bucket_samples
        if bucket != self._bucket:
            if self._bucket_min is not None:
                self._buckets.append(self._bucket_min)
                self._refit()
            self._bucket, self._bucket_min = bucket, (x, y)
        elif y - self._p_nom * x < self._bucket_min[1] - self._p_nom * self._bucket_min[0]:  # type: ignore[index]
            self._bucket_min = (x, y)

    def _refit(self) -> None:
        """Chord slope between the lowest bucket minima of the window's first and last thirds."""
        pts = list(self._buckets)
        if len(pts) >= 3:
            third = len(pts) // 3
            p = self._p
            for _ in range(2):  # the lowest points depend on the slope: refine once
                x0, y0 = min(pts[:third], key=lambda q: q[1] - p * q[0])
                x1, y1 = min(pts[-third:], key=lambda q: q[1] - p * q[0])
                p = min(max((y1 - y0) / (x1 - x0), self._p_lo), self._p_hi)
            if x1 - x0 >= self._min_fit_samples:
                self._p = p
        cands = [y - self._p * x for x, y in pts]
        if self._bucket_min is not None:
            cands.append(self._bucket_min[1] - self._p * self._bucket_min[0])
        self._c = min(cands)


__all__ = ["NS_PER_S", "BlockTiming", "ClockGap", "SampleClock"]
