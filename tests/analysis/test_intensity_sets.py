"""Cut-point sets by location/population/metric, count scaling, and the personal peak."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.intensity import (
    CUTPOINTS,
    CutPoints,
    classify,
    percent_of_peak,
    personal_peak_mg,
    select_cutpoints,
)


def test_every_set_carries_metric_location_population_epoch_and_source() -> None:
    for cp in CUTPOINTS.values():
        assert cp.source and cp.metric and cp.location and cp.population
        assert cp.epoch_s == (60.0 if cp.metric.startswith("counts") else 5.0)
        assert cp.unit == ("counts/60s" if cp.metric.startswith("counts") else "mg")


def test_registry_values_match_methods_tables() -> None:
    # methods.md §1.9: older adults, MAD (hip) and counts tables.
    assert CUTPOINTS["sanders2019_wrist_older_weighted"].thresholds_mg == (57.0, 104.0)
    assert CUTPOINTS["migueles2021_hip_older"].thresholds_mg == (7.0, 14.0)
    assert CUTPOINTS["mielke2023_wrist_actigraph"].thresholds_mg == (25.0, 78.0, 249.0)
    assert CUTPOINTS["vahaypya2015_hip_mad"].thresholds_mg == (91.0, 414.0)
    assert CUTPOINTS["montoye2020_wrist_counts_vm"].thresholds_mg == (2860.0, 3941.0)
    assert CUTPOINTS["freedson1998_hip_counts_axis1"].thresholds_mg == (100.0, 1952.0, 5725.0)
    assert CUTPOINTS["sasaki2011_hip_counts_vm"].thresholds_mg == (2690.0, 6167.0)


def test_select_by_location_and_population() -> None:
    older_wrist = {c.name for c in select_cutpoints(location="wrist_nd", population="older_adults")}
    assert older_wrist == {
        "migueles2021_wrist_older",
        "sanders2019_wrist_older_youden",
        "sanders2019_wrist_older_weighted",
    }
    hip_counts = {c.name for c in select_cutpoints(location="hip", metric="counts_vm", population="adults")}
    assert hip_counts == {"sasaki2011_hip_counts_vm", "santoslozano2013_hip_counts_vm"}
    assert [c.name for c in select_cutpoints(metric="mad")] == ["vahaypya2015_hip_mad"]
    with pytest.raises(ValueError, match="location .* got 'ankle'"):
        select_cutpoints(location="ankle")
    with pytest.raises(ValueError, match="population"):
        select_cutpoints(population="children")


def test_metric_must_match_the_set() -> None:
    with pytest.raises(ValueError, match="metric 'mad'.*'enmo'"):
        classify(np.array([100.0]), "vahaypya2015_hip_mad")
    assert classify(np.array([90.9, 91.0, 414.0]), "vahaypya2015_hip_mad", metric="mad").tolist() == [1, 2, 3]
    assert CUTPOINTS["vahaypya2015_hip_mad"].class_names == {1: "sedentary_or_light", 2: "moderate", 3: "vigorous"}


def test_count_thresholds_scale_with_epoch_length() -> None:
    # 100 cpm → 100 × 5/60 per 5-s epoch (methods.md §1.1, GGIR CutPoints.md).
    fr = CUTPOINTS["freedson1998_hip_counts_axis1"]
    assert fr.thresholds_at(5.0) == pytest.approx((100 / 12, 1952 / 12, 5725 / 12))
    per_minute = np.array([99.0, 100.0, 1951.0, 1952.0, 5725.0])
    assert classify(per_minute, fr, metric="counts_axis1").tolist() == [0, 1, 1, 2, 3]
    assert classify(per_minute / 12, fr, metric="counts_axis1", epoch_s=5).tolist() == [0, 1, 1, 2, 3]
    # ENMO averages do not scale.
    assert CUTPOINTS["hildebrand2014_wrist_actigraph"].thresholds_at(1.0) == (44.8, 100.6, 428.8)
    mont = CUTPOINTS["montoye2020_wrist_counts_vm"]
    assert classify(np.array([2859.0, 2860.0, 3941.0, 1e5]), mont, metric="counts_vm").tolist() == [0, 1, 2, 2]
    assert mont.class_names == {0: "sedentary", 1: "light", 2: "moderate_or_vigorous"}


def test_custom_set_validation() -> None:
    with pytest.raises(ValueError, match="metric"):
        CutPoints("x", 1.0, 2.0, 3.0, "t", metric="steps")
    with pytest.raises(ValueError, match="increasing"):
        CutPoints("x", None, 5.0, 4.0, "t")


def _minutes(values_mg: list[float], *, seconds: int = 60) -> tuple[np.ndarray, ...]:
    """1-s epochs: minute k holds `seconds` epochs of ENMO values_mg[k]."""
    start = np.concatenate([k * 60 + np.arange(seconds) for k in range(len(values_mg))]) * 1_000_000_000
    enmo = np.repeat(values_mg, seconds).astype(float)
    return start.astype(np.int64), enmo, np.full(enmo.size, 50), np.ones(enmo.size)


def test_personal_peak_is_p95_of_one_minute_enmo() -> None:
    values = [float(v) for v in range(1, 101)]  # 100 minutes of 1..100 mg
    start, enmo, n, cov = _minutes(values)
    # numpy's linear percentile of 1..100 at 95 % is 95.05.
    assert personal_peak_mg(start, enmo, n, cov) == pytest.approx(95.05)
    assert personal_peak_mg(start, enmo, n, cov, percentile=50) == pytest.approx(50.5)
    # Non-wear minutes are excluded: keep minutes 1..50 only.
    wear = enmo <= 50
    assert personal_peak_mg(start, enmo, n, cov, wear=wear) == pytest.approx(np.percentile(np.arange(1, 51), 95))


def test_personal_peak_skips_minutes_with_under_30_s() -> None:
    start, enmo, n, cov = _minutes([10.0, 20.0], seconds=29)
    assert personal_peak_mg(start, enmo, n, cov) is None
    start, enmo, n, cov = _minutes([10.0, 20.0], seconds=30)
    assert personal_peak_mg(start, enmo, n, cov, percentile=100) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="equal length"):
        personal_peak_mg(start, enmo[:-1], n, cov)


def test_percent_of_peak() -> None:
    assert percent_of_peak(62.0, 88.0) == pytest.approx(70.4545, abs=1e-4)
    assert percent_of_peak(np.array([0.0, 44.0]), 88.0).tolist() == [0.0, 50.0]
    with pytest.raises(ValueError, match="peak_mg"):
        percent_of_peak(1.0, 0.0)
