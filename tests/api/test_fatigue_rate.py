"""The rate gate: a session recorded below 20 Hz reports `rate_lt_20hz`, in the service as in the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from analysis.samples import NS_PER_S
from analysis.sessions import SessionSpan
from api.services import fatigue_windows as fw
from otmon.cli import main
from tests.api.conftest import ApiClient
from tests.api.factories import block_json, make_device, make_patient, make_therapist
from tests.fatigue_signals import FS_HZ, arm_task, still

START = "2024-03-04T09:00:00Z"
T0_NS = 1_709_542_800 * NS_PER_S  # START
MIN_NS = 60 * NS_PER_S


def _recording(step: int) -> np.ndarray:
    """2 min at rest, 10 min of a stirring task, 2 min at rest; every ``step``-th sample of 25 Hz."""
    accel = np.concatenate([still(120, seed=1), arm_task(600, seed=2), still(120, seed=3)])
    return accel[::step].astype(np.float32)


def _cli_sessions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, accel: np.ndarray, fs_hz: float
) -> Any:
    path = tmp_path / "rec.npy"
    np.save(path, accel)
    assert main(["analyze", str(path), "--fs", str(fs_hz), "--start", START, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["sessions"]


def _api_sessions(
    client: ApiClient, db: Session, app: FastAPI, accel: np.ndarray, fs_hz: float
) -> Any:
    """Ingest the recording as the collector uploads it (60-s blocks), then read the sessions."""
    t = make_therapist(db, app)
    patient = make_patient(db, t)
    _device, headers = make_device(db, patient)
    n = round(60 * fs_hz)
    payload = [
        block_json(accel[i : i + n], seq=k, t0_ns=T0_NS + round(i * NS_PER_S / fs_hz), fs_hz=fs_hz)
        for k, i in enumerate(range(0, accel.shape[0], n))
    ]
    r = client.post("/api/v1/ingest", headers=headers, json={"blocks": payload})
    assert r.status_code == 200, r.text
    r = client.get(f"/api/v1/patients/{patient.id}/sessions", headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("step", "quality"), [(2, "rate_lt_20hz"), (1, "ok")])
def test_cli_and_service_apply_the_rate_gate_alike(
    client: ApiClient,
    db: Session,
    app: FastAPI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    step: int,
    quality: str,
) -> None:
    fs_hz = FS_HZ / step  # 12.5 Hz: below MIN_FS_HZ; 25 Hz: above
    accel = _recording(step)
    cli = _cli_sessions(capsys, tmp_path, accel, fs_hz)
    api = _api_sessions(client, db, app, accel, fs_hz)
    assert len(cli) == 1 and cli[0]["active_s"] > 500  # the 10-min task, detected on both sides
    assert api[0]["fatigue"] == cli[0]["fatigue"]
    assert api == cli  # the whole session objects, value for value
    f = cli[0]["fatigue"]
    assert f["quality"] == quality
    if quality == "rate_lt_20hz":
        # No windows at 12.5 Hz: formerly reported as "wear_lt_90pct".
        assert f["quality_failed"] == ["rate_lt_20hz", "wear_lt_90pct", "active_lt_5min"]
        assert f["n_windows"] == 0 and f["alarm"] is False and f["contributions"] == {}
        assert (f["index"], f["delta"], f["ci95"], f["onset_s"]) == (None, None, None, None)
    else:
        assert f["n_windows"] == 18 and f["index"] is not None and f["quality_failed"] == []


def _span(a_min: float, b_min: float) -> SessionSpan:
    return SessionSpan(T0_NS + round(a_min * MIN_NS), T0_NS + round(b_min * MIN_NS), None)


def test_a_session_takes_the_rate_of_most_of_its_samples() -> None:
    # 0-10 min: 12.5 Hz (the collector's estimate wanders in the first two minutes); 10-14 min:
    # 25 Hz; 20-21 min: 50 Hz.
    blocks = [(T0_NS + k * MIN_NS, T0_NS + (k + 1) * MIN_NS, 12.5) for k in range(2, 10)]
    blocks += [(T0_NS, T0_NS + MIN_NS, 12.504), (T0_NS + MIN_NS, T0_NS + 2 * MIN_NS, 12.496)]
    blocks += [(T0_NS + k * MIN_NS, T0_NS + (k + 1) * MIN_NS, 25.0) for k in range(10, 14)]
    blocks += [(T0_NS + 20 * MIN_NS, T0_NS + 21 * MIN_NS, 50.0)]
    spans = [
        _span(0, 10),  # 12.5 Hz only
        _span(2, 14),  # 8 min × 12.5 Hz = 6000 samples against 4 min × 25 Hz = 6000: a tie
        _span(3, 14),  # 5250 against 6000 samples
        _span(1, 12),  # 9 min at ~12.5 Hz (one grid rate) = 6750 against 3000 samples
        _span(15, 19),  # no block: unknown
        _span(12, 30),  # 2 min × 25 Hz = 3000 against 1 min × 50 Hz = 3000: a tie
    ]
    assert fw.session_rates_hz(blocks, spans) == [12.5, 25.0, 25.0, 12.5, None, 50.0]
    assert fw.session_rates_hz([], spans) == [None] * len(spans)
