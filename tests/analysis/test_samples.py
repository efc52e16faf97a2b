"""SampleBlock and Recording: the core contract shared by every layer."""

import numpy as np
import pytest

from analysis.samples import NS_PER_S, Recording, SampleBlock, concatenate


def _block(t0_s: float, n: int, fs_hz: float = 50.0, value: float = 0.0) -> SampleBlock:
    accel = np.full((n, 3), value, dtype=np.float32)
    return SampleBlock(t0_ns=int(t0_s * NS_PER_S), fs_hz=fs_hz, accel_g=accel)


def test_block_times_and_end() -> None:
    block = _block(10.0, 4, fs_hz=50.0)
    assert block.times_ns().tolist() == [10_000_000_000 + k * 20_000_000 for k in range(4)]
    assert block.end_ns == 10_080_000_000
    assert block.n_samples == 4


def test_block_times_at_a_non_integer_period_do_not_drift() -> None:
    block = _block(0.0, 5201, fs_hz=52.0)  # period 19 230 769.23 ns
    assert block.times_ns()[-1] == 100 * NS_PER_S  # 5200 periods = exactly 100 s


@pytest.mark.parametrize(
    ("accel", "fs_hz", "message"),
    [
        (np.zeros((4, 2), dtype=np.float32), 50.0, "shape"),
        (np.zeros(4, dtype=np.float32), 50.0, "shape"),
        (np.zeros((4, 3), dtype=np.int16), 50.0, "float32 or float64"),
        (np.zeros((4, 3), dtype=np.float32), 0.0, "fs_hz"),
        (np.zeros((4, 3), dtype=np.float32), float("nan"), "fs_hz"),
    ],
)
def test_block_rejects_bad_input(accel: np.ndarray, fs_hz: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SampleBlock(t0_ns=0, fs_hz=fs_hz, accel_g=accel)


def test_recording_orders_blocks_and_marks_gaps_in_the_grid() -> None:
    late = _block(2.0, 50, value=2.0)  # 1 s gap after the first block
    early = _block(0.0, 50, value=1.0)
    grid = Recording([late, early]).to_uniform()
    assert grid.t0_ns == 0 and grid.fs_hz == 50.0
    assert grid.accel_g.shape == (150, 3)
    assert grid.mask.sum() == 100
    assert np.all(grid.accel_g[:50] == 1.0)
    assert np.all(np.isnan(grid.accel_g[50:100]))
    assert not grid.mask[50:100].any()
    assert np.all(grid.accel_g[100:] == 2.0)


def test_recording_rate_is_the_rate_of_most_samples() -> None:
    recording = Recording([_block(0.0, 10, fs_hz=25.0), _block(1.0, 100, fs_hz=50.0)])
    assert recording.fs_hz == 50.0
    assert recording.n_samples == 110


def test_empty_recording_has_no_grid() -> None:
    with pytest.raises(ValueError, match="no blocks"):
        Recording([]).to_uniform()


def test_concatenate_keeps_time_order_and_values() -> None:
    times, accel = concatenate([_block(0.0, 2, value=1.0), _block(1.0, 2, value=3.0)])
    assert times.tolist() == [0, 20_000_000, 1_000_000_000, 1_020_000_000]
    assert accel[:, 0].tolist() == [1.0, 1.0, 3.0, 3.0]
    assert accel.dtype == np.float64
