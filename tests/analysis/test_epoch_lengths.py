"""Epoch metrics at 1 s, 5 s and 60 s (methods.md §1.11): ENMO/MAD in mg vs direct NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.metrics import enmo_per_epoch_g, mad_per_epoch_g
from analysis.pipeline import epoch_table, summarise_days
from analysis.samples import NS_PER_S, SampleBlock
from tests.analysis.conftest import T0_NS, moving, still

REAL_NPZ = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "agcounts_R_example_gt3x"
    / "calibration_raw_30hz_mg_int16.npz"
)
REAL_T0_NS = 1_682_348_520 * NS_PER_S  # 2023-04-24 15:02:00 UTC, a whole minute
EPOCHS_S = (1.0, 5.0, 60.0)


def _direct_mg(accel_g: np.ndarray, per: int) -> tuple[np.ndarray, np.ndarray]:
    """ENMO and MAD in mg per consecutive run of `per` samples, the textbook way."""
    n = accel_g.shape[0] // per
    en = np.sqrt((accel_g[: n * per] ** 2).sum(axis=1)).reshape(n, per)
    enmo = np.maximum(en - 1.0, 0.0).mean(axis=1) * 1000.0
    mad = np.abs(en - en.mean(axis=1, keepdims=True)).mean(axis=1) * 1000.0
    return enmo, mad


@pytest.fixture(scope="module")
def real_g() -> np.ndarray:
    if not REAL_NPZ.exists():
        pytest.skip(
            f"reference recording not found at {REAL_NPZ} (../shared/data is not in the repo)"
        )
    with np.load(REAL_NPZ, allow_pickle=False) as d:
        return d["xyz_mg"][: 6 * 3600 * 30].astype(np.float64) / 1000.0  # first 6 h


@pytest.mark.parametrize("epoch_s", EPOCHS_S)
def test_real_recording_enmo_mad_mg_equal_direct_numpy(real_g: np.ndarray, epoch_s: float) -> None:
    per = int(epoch_s * 30)
    table = epoch_table([SampleBlock(REAL_T0_NS, 30.0, real_g)], epoch_s=epoch_s)
    enmo, mad = _direct_mg(real_g, per)
    assert len(table) == enmo.size == int(6 * 3600 / epoch_s)
    assert np.array_equal(
        table.start_ns, REAL_T0_NS + np.arange(enmo.size) * round(epoch_s * NS_PER_S)
    )
    assert (table.n_samples == per).all() and np.allclose(table.covered_s, epoch_s, rtol=1e-12)
    assert np.allclose(table.enmo_mg, enmo, rtol=1e-12, atol=1e-9)
    assert np.allclose(table.mad_mg, mad, rtol=1e-12, atol=1e-9)
    # The array helpers agree (g → mg).
    assert np.allclose(
        enmo_per_epoch_g(real_g, fs_hz=30.0, epoch_s=epoch_s) * 1000, enmo, rtol=1e-12, atol=1e-9
    )
    assert np.allclose(
        mad_per_epoch_g(real_g, fs_hz=30.0, epoch_s=epoch_s) * 1000, mad, rtol=1e-12, atol=1e-9
    )
    # Sanity on real wrist data (uncalibrated): mean ENMO tens of mg, MAD above ENMO.
    assert 5.0 < table.enmo_mg.mean() < 100.0 and table.mad_mg.mean() > table.enmo_mg.mean()


def test_coarser_epochs_are_sample_weighted_means_of_finer(real_g: np.ndarray) -> None:
    tables = {e: epoch_table([SampleBlock(REAL_T0_NS, 30.0, real_g)], epoch_s=e) for e in EPOCHS_S}
    for fine, coarse in ((1.0, 5.0), (5.0, 60.0), (1.0, 60.0)):
        k = int(coarse / fine)
        f, c = tables[fine], tables[coarse]
        assert np.allclose(f.enmo_mg.reshape(-1, k).mean(axis=1), c.enmo_mg, rtol=1e-12, atol=1e-9)
        assert np.array_equal(f.min_g.reshape(-1, k, 3).min(axis=1), c.min_g)
        assert np.allclose(f.sum_g.reshape(-1, k, 3).sum(axis=1), c.sum_g, rtol=1e-12)


def test_one_second_epochs_at_a_fractional_rate(rng: np.random.Generator) -> None:
    # 12.5 Hz: 1-s epochs alternate 13 and 12 samples (by sample time), 5-s epochs hold 62/63.
    accel = moving(12_500, rng).astype(np.float64)
    block = SampleBlock(T0_NS, 12.5, accel)
    t = block.times_ns()
    for epoch_s in EPOCHS_S:
        table = epoch_table([block], epoch_s=epoch_s)
        epoch_no = (t - T0_NS) // round(epoch_s * NS_PER_S)
        en = np.sqrt((accel**2).sum(axis=1))
        for i in (0, 1, len(table) - 1):
            e = en[epoch_no == i]
            assert table.n_samples[i] == e.size
            assert table.enmo_mg[i] == pytest.approx(np.maximum(e - 1, 0).mean() * 1000, rel=1e-12)
            assert table.mad_mg[i] == pytest.approx(np.abs(e - e.mean()).mean() * 1000, rel=1e-12)
    assert epoch_table([block], epoch_s=1.0).n_samples[:2].tolist() == [13, 12]


@pytest.mark.parametrize("epoch_s", EPOCHS_S)
def test_summarise_days_at_each_epoch_length(rng: np.random.Generator, epoch_s: float) -> None:
    # 10 Hz: 2 h moving, 2 h still (non-wear), 1 h moving, starting 7 min past a quarter
    # hour; a 10-min gap in the first hour.
    per_min = 600
    accel = np.concatenate(
        [moving(120 * per_min, rng), still(120 * per_min, rng), moving(60 * per_min, rng)]
    )
    t0 = T0_NS + 7 * 60 * NS_PER_S + 250_000_000  # not on an epoch boundary
    a = SampleBlock(t0, 10.0, accel[: 30 * per_min])
    b = SampleBlock(t0 + 40 * 60 * NS_PER_S, 10.0, accel[40 * per_min :])
    days = summarise_days(epoch_table([a, b], epoch_s=epoch_s), tz="UTC")
    assert len(days) == 1
    d = days[0]
    assert d["samples"] == accel.shape[0] - 10 * per_min
    assert d["recorded_min"] == pytest.approx(290.0, abs=0.01)
    # The still 2 h run from 2:07:00.25 to 4:07:00.25: the whole minutes inside it
    # (2:08 … 4:06, 119 min) are non-wear (windows start at every UTC minute).
    assert d["nonwear_min"] == pytest.approx(119.0, abs=0.01)
    assert d["wear_min"] + d["nonwear_min"] == pytest.approx(d["recorded_min"], abs=0.02)
    classes = d["sedentary_min"] + d["light_min"] + d["moderate_min"] + d["vigorous_min"]
    assert classes == pytest.approx(d["wear_min"], abs=0.05)
    # Mean ENMO over wear = the mean over the samples outside the non-wear quarter hours.
    kept = np.r_[0 : 30 * per_min, 40 * per_min : accel.shape[0]]
    t_s = (t0 - T0_NS) / NS_PER_S + kept / 10.0
    wear = (t_s < (2 * 60 + 8) * 60) | (t_s >= (4 * 60 + 7) * 60)
    en = np.sqrt((accel[kept[wear]].astype(np.float64) ** 2).sum(axis=1))
    assert d["mean_enmo_mg"] == pytest.approx(np.maximum(en - 1, 0).mean() * 1000, abs=0.006)


def test_day_summaries_agree_across_epoch_lengths(rng: np.random.Generator) -> None:
    accel = np.concatenate([moving(60 * 600, rng), still(90 * 600, rng), moving(30 * 600, rng)])
    block = SampleBlock(T0_NS + 3 * NS_PER_S, 10.0, accel)
    days = {
        e: summarise_days(epoch_table([block], epoch_s=e), tz="Europe/Berlin")[0] for e in EPOCHS_S
    }
    for key in ("samples", "recorded_min", "wear_min", "nonwear_min", "mean_enmo_mg"):
        values = {days[e][key] for e in EPOCHS_S}
        assert max(values) - min(values) <= 0.011, (key, values)
