"""GENEActiv .bin reader against scikit-digital-health's decoded arrays."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _geneactiv_file(path: Path, counts: np.ndarray, *, tz: str = "GMT +01:00") -> Path:
    """A minimal GENEActiv file: calibration header and one page of 48-bit hex samples."""
    words = [
        (int(x) & 0xFFF) << 36 | (int(y) & 0xFFF) << 24 | (int(z) & 0xFFF) << 12 | 0x3FF << 2
        for x, y, z in counts
    ]
    hexline = "".join(f"{w:012X}" for w in words)
    text = "\n".join([
        "Device Identity", "Device Unique Serial Code:000001", "", "Configuration Info",
        "Measurement Frequency:20 Hz", f"Time Zone:{tz}", "", "Calibration Data",
        "x gain:25000", "x offset:100", "y gain:26000", "y offset:-200", "z gain:24000", "z offset:0",
        "", "Memory Status", "Number of Pages:1", "", "Recorded Data",
        "Device Unique Serial Code:000001", "Sequence Number:0", "Page Time:2024-03-04 09:00:00:250",
        "Unassigned:", "Temperature:25.0", "Battery voltage:4.0", "Device Status:Recording",
        "Measurement Frequency:20.0", hexline, "",
    ])
    path.write_text(text, encoding="latin-1")
    return path


@given(st.lists(st.tuples(*[st.integers(-2048, 2047)] * 3), min_size=2, max_size=60))
@settings(max_examples=100, deadline=None)
def test_page_decoding_round_trip(rows: list[tuple[int, int, int]]) -> None:
    counts = np.array(rows)
    with tempfile.TemporaryDirectory() as tmp:
        rec = read_geneactiv(_geneactiv_file(Path(tmp) / "g.bin", counts))
    expected = (counts * 100.0 - np.array([100, -200, 0])) / np.array([25000, 26000, 24000])
    assert np.array_equal(rec.blocks[0].accel_g, expected)
    # 09:00:00.250 at GMT+01:00 is 08:00:00.250 UTC.
    assert rec.blocks[0].t0_ns == np.datetime64("2024-03-04T08:00:00.250", "ns").astype(np.int64)
    assert rec.fs_hz == 20.0
