"""Shared paths and helpers for collector tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CAPTURE = REPO / "fixtures" / "captures" / "polar_h10_wrist_1h.capture.jsonl.gz"
VECTORS_PATH = Path("/work/shared/data/ble-vectors.json")


def load_vectors(prefix: str = "polar_") -> list[dict[str, Any]]:
    """Return the ble-vectors.json entries whose kind starts with `prefix`."""
    if not VECTORS_PATH.exists():
        pytest.skip(f"{VECTORS_PATH} not available", allow_module_level=True)
    vectors = json.loads(VECTORS_PATH.read_text())
    return [v for v in vectors if v["kind"].startswith(prefix)]


@pytest.fixture
def fixture_capture() -> Path:
    """Path of the committed Polar H10 capture."""
    return FIXTURE_CAPTURE
