"""Cut-point registry and classification (methods.md §1.9, GGIR threshold convention)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.intensity import CUTPOINTS, DEFAULT_CUTPOINTS, CutPoints, classify, get_cutpoints


def test_registry_values_match_methods_table() -> None:
    assert DEFAULT_CUTPOINTS == "hildebrand2014_wrist_actigraph"
    assert CUTPOINTS["hildebrand2014_wrist_actigraph"].thresholds_mg == (44.8, 100.6, 428.8)
    assert CUTPOINTS["hildebrand2014_wrist_geneactiv"].thresholds_mg == (45.8, 93.2, 418.3)
    assert CUTPOINTS["hildebrand2014_hip_actigraph"].thresholds_mg == (47.4, 69.1, 258.7)
    assert CUTPOINTS["migueles2021_wrist_older"].thresholds_mg == (18.0, 60.0)
    for name, cp in CUTPOINTS.items():
        assert cp.name == name and cp.source


def test_cutpoints_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CUTPOINTS[DEFAULT_CUTPOINTS].light_mg = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        CUTPOINTS["x"] = CUTPOINTS[DEFAULT_CUTPOINTS]  # type: ignore[index]


def test_threshold_belongs_to_the_higher_class() -> None:
    x = np.array([0.0, 44.79, 44.8, 100.59, 100.6, 428.79, 428.8, 5000.0])
    assert classify(x).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert classify(x).dtype == np.int8


def test_without_vigorous_threshold_nothing_is_vigorous() -> None:
    x = np.array([17.99, 18.0, 59.99, 60.0, 1e6])
    assert classify(x, "migueles2021_wrist_older").tolist() == [0, 1, 1, 2, 2]


def test_custom_set_and_errors() -> None:
    cp = CutPoints("mine", 10.0, 20.0, 30.0, "test")
    assert classify(np.array([5.0, 25.0, 35.0]), cp).tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="nope"):
        get_cutpoints("nope")
    with pytest.raises(ValueError, match="increasing"):
        CutPoints("bad", 20.0, 10.0, None, "test")
    with pytest.raises(ValueError, match="NaN"):
        classify(np.array([np.nan]))
    assert classify(np.array([])).shape == (0,)
