"""1-s grid, active threshold, per-day effort, recording summary and Compendium METs."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.effort import (
    active_threshold_mg,
    iso_utc,
    recording_summary,
    second_grid,
    summarise_effort_days,
    summarise_session,
)
from analysis.intensity import personal_peak_mg
from analysis.met import COMPENDIUM, compendium_met
from analysis.pipeline import epoch_table, summarise_days
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.task_signals import ENMO_OF_AMPLITUDE_MG, T0_NS, blocks_of, tables, task_signal


def test_active_threshold_follows_methods_rule() -> None:
    assert active_threshold_mg() == 44.8
    assert active_threshold_mg("migueles2021_wrist_older") == 18.0
    # θ_act = max(population light, rest P95 + 10 mg).
    assert active_threshold_mg("migueles2021_wrist_older", rest_p95_mg=12.5) == 22.5
    assert active_threshold_mg(rest_p95_mg=12.5) == 44.8
    # MAD and count sets have no ENMO light boundary: the adult wrist default applies.
    assert active_threshold_mg("vahaypya2015_hip_mad") == 44.8


def test_grid_is_dense_with_gaps_and_agrees_with_day_summaries() -> None:
    accel = task_signal([("still", 300), ("move08", 400), ("still", 300)])
    ones, fives = tables(blocks_of(accel, drop=(100.0, 130.0)))
    grid = second_grid(ones, class_epochs=fives)
    assert len(grid) == 1000 and grid.t0_ns == T0_NS and grid.end_ns == T0_NS + 1000 * NS_PER_S
    assert np.isnan(grid.enmo_mg[100:130]).all() and (grid.n_samples[100:130] == 0).all()
    assert grid.worn.sum() == 970 and grid.active.sum() == 400
    assert (grid.klass[300:700] == 2).all()  # 144.6 mg ≥ 100.6: moderate
    (day,) = summarise_days(fives, tz="UTC")
    (eday,) = summarise_effort_days(grid, [(T0_NS + 300 * NS_PER_S, T0_NS + 700 * NS_PER_S)], tz="UTC")
    assert eday["date"] == day["date"] == "2023-03-25"
    assert eday["wear_min"] == day["wear_min"] == pytest.approx(970 / 60, abs=0.01)
    for name in ("sedentary", "light", "moderate", "vigorous"):
        assert eday["minutes_by_class"][name] == day[f"{name}_min"]
    assert eday["active_min"] == pytest.approx(400 / 60, abs=0.01)
    assert (eday["sessions"], eday["session_min"]) == (1, pytest.approx(400 / 60, abs=0.01))


def test_mvpa_bouts_of_one_five_and_ten_minutes() -> None:
    accel = task_signal([("still", 60), ("move08", 400), ("still", 60)])
    ones, fives = tables(blocks_of(accel))
    grid = second_grid(ones, class_epochs=fives)
    s = summarise_session(grid, start_ns=T0_NS, end_ns=grid.end_ns)
    assert s["mvpa_bouts"] == {"1_min": 1, "5_min": 1, "10_min": 0}
    assert s["minutes_by_class"]["moderate"] == pytest.approx(400 / 60, abs=0.01)
    assert s["mean_enmo_mg"] == pytest.approx(ENMO_OF_AMPLITUDE_MG[0.8], abs=0.5)


def test_personal_peak_from_the_grid_seconds() -> None:
    accel = task_signal([("still", 600), ("move", 120), ("move08", 60)])
    ones, _ = tables(blocks_of(accel))
    # Minutes: 10 still (~1 mg), 2 at 59.8 mg, 1 at 144.6 mg → P95 lies between the top two.
    peak = personal_peak_mg(ones.start_ns, ones.enmo_mg, ones.n_samples, ones.covered_s)
    minutes = np.sort(np.concatenate([np.full(10, 0.0), [59.84, 59.84, 144.63]]))
    expected = minutes[-2] + 0.4 * (minutes[-1] - minutes[-2])  # numpy linear rank 11.4 of 0..12
    assert peak == pytest.approx(expected, abs=1.5)


def test_count_cutpoints_need_counts() -> None:
    ones, fives = tables(blocks_of(task_signal([("move", 30)])))
    with pytest.raises(ValueError, match="counts_vm"):
        second_grid(ones, class_epochs=fives, cutpoints="montoye2020_wrist_counts_vm")
    with pytest.raises(ValueError, match="1-s epoch table"):
        second_grid(fives)
    grid = second_grid(ones, class_epochs=fives, cutpoints="vahaypya2015_hip_mad")
    s = summarise_session(grid, start_ns=T0_NS, end_ns=grid.end_ns)
    assert set(s["minutes_by_class"]) == {"sedentary_or_light", "moderate", "vigorous"}
    with pytest.raises(ValueError, match="end_ns must be after start_ns"):
        summarise_session(grid, start_ns=T0_NS, end_ns=T0_NS)


def test_recording_summary_reports_gaps() -> None:
    blocks = blocks_of(task_signal([("still", 180)]), drop=(100.0, 130.0))
    info = recording_summary(blocks)
    assert info["start"] == "2023-03-25T00:00:00Z" and info["end"] == "2023-03-25T00:03:00Z"
    assert info["n_samples"] == 150 * 50 and info["fs_hz"] == 50.0 and info["blocks"] == len(blocks)
    assert info["gaps"] == [{"start": "2023-03-25T00:01:40Z", "end": "2023-03-25T00:02:10Z", "duration_s": 30.0}]
    contiguous = [SampleBlock(T0_NS, 50.0, np.zeros((50, 3))), SampleBlock(T0_NS + NS_PER_S, 50.0, np.zeros((50, 3)))]
    assert recording_summary(contiguous)["gaps"] == []
    with pytest.raises(ValueError, match="at least one sample"):
        recording_summary([])
    assert iso_utc(T0_NS + 1500) == "2023-03-25T00:00:00.000001Z"


def test_compendium_values_and_aliases() -> None:
    # methods.md §1.10 tables.
    assert compendium_met("kitchen")
    assert {k: e.met for k, e in COMPENDIUM.items() if e.verified} == {
        "kitchen_general": 3.3,
        "vacuuming": 3.3,
        "scrubbing_floors": 3.5,
        "making_bed": 3.3,
        "walking_household": 2.0,
        "stair_climbing_slow": 4.0,
    }
    assert compendium_met("Dressing/Undressing").met == 2.5  # type: ignore[union-attr]
    assert compendium_met("washing dishes").met == 1.8  # type: ignore[union-attr]
    assert compendium_met(None) is None and compendium_met("") is None
    with pytest.raises(TypeError, match="activity"):
        compendium_met(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk", [1 << 20, 100])
def test_enmo_by_second_equals_the_one_second_epoch_table(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.seconds
    from analysis.seconds import enmo_by_second

    monkeypatch.setattr(analysis.seconds, "_CHUNK_SAMPLES", chunk)
    rng = np.random.default_rng(5)
    accel = task_signal([("still", 50), ("move08", 70)]) + rng.normal(0, 0.05, (6000, 3))
    # Blocks starting off the second, cut at odd places, given out of order.
    blocks = [
        SampleBlock(T0_NS + 7_000_000 + i * NS_PER_S // 50, 50.0, accel[i : i + 777]) for i in range(0, 6000, 777)
    ][::-1]
    ones, fives = epoch_table(blocks, epoch_s=1), epoch_table(blocks, epoch_s=5)
    light = enmo_by_second(blocks)
    np.testing.assert_array_equal(light.start_ns, ones.start_ns)
    np.testing.assert_array_equal(light.n_samples, ones.n_samples)
    np.testing.assert_allclose(light.covered_s, ones.covered_s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(light.enmo_mg, ones.enmo_mg, rtol=0, atol=1e-9)
    a, b = second_grid(light, class_epochs=fives), second_grid(ones, class_epochs=fives)
    assert np.array_equal(a.active, b.active) and np.array_equal(a.klass, b.klass) and np.array_equal(a.worn, b.worn)
    with pytest.raises(ValueError, match="class_epochs must be given"):
        second_grid(light)
    bad = [SampleBlock(T0_NS, 50.0, np.full((10, 3), np.nan))]
    with pytest.raises(ValueError, match="NaN"):
        enmo_by_second(bad)
    assert len(enmo_by_second([])) == 0
