"""GENEActiv .bin reader against scikit-digital-health's decoded arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import ReaderError
from analysis.read_geneactiv import read_geneactiv
from analysis.samples import NS_PER_S, concatenate

REC = Path(__file__).parents[2] / "fixtures" / "recordings"


def test_equals_skdh_after_its_4_decimal_rounding_and_times_with_the_zone() -> None:
    rec = read_geneactiv(REC / "gnactv_sample.bin")
    truth = np.load(REC / "gnactv_truth_skdh.npz")
    t_ns, accel = concatenate(rec.blocks)
    assert accel.shape == (900, 3) and rec.fs_hz == 50.0
    assert np.array_equal(np.round(accel, 4), truth["accel"])
    # skdh keeps the device's local clock; the header says "Time Zone:GMT -04:00".
    assert rec.device["tz_offset_s"] == -4 * 3600
    assert np.abs(t_ns / NS_PER_S - (truth["time"] + 4 * 3600)).max() < 1e-6
    # Page 1 ends at 16:16:49.48, page 2 starts 16:16:50.000: two blocks.
    assert [b.n_samples for b in rec.blocks] == [300, 600]


def test_calibration_formula_on_the_first_sample() -> None:
    # First sample hex F22027 00B000: x = 0xF22 = -222, y = 0x027 = 39, z = 0x00B = 11.
    rec = read_geneactiv(REC / "gnactv_sample.bin")
    first = rec.blocks[0].accel_g[0]
    expected = (np.array([-222, 39, 11]) * 100 - np.array([272, -1129, 101])) / np.array([25522, 25457, 24829])
    assert np.array_equal(first, expected)


def test_truncated_page_and_bad_hex(tmp_path: Path) -> None:
    text = (REC / "gnactv_sample.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(text[: text.rindex(b"Page Time") + 5])
    with pytest.raises(ReaderError, match=r"cut\.bin: line \d+: truncated page"):
        read_geneactiv(cut)
    lines = text.decode("latin-1").splitlines()
    data_line = next(i for i, ln in enumerate(lines) if len(ln) > 1000)
    lines[data_line] = lines[data_line][:-5]
    odd = tmp_path / "odd.bin"
    odd.write_text("\n".join(lines), encoding="latin-1")
    with pytest.raises(ReaderError, match=rf"odd\.bin: line {data_line + 1}: data line is not whole"):
        read_geneactiv(odd)


def test_not_geneactiv(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_text("hello\nworld\n")
    with pytest.raises(ReaderError, match=r"x\.bin: line 1: not a GENEActiv \.bin file"):
        read_geneactiv(bad)
