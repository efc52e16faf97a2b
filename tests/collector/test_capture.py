"""Capture files: round trip, gz, malformed lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from collector.capture import CaptureWriter, make_header, read_capture
from collector.errors import CaptureFormatError

CHAR = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"


@pytest.mark.parametrize("name", ["x.capture.jsonl", "x.capture.jsonl.gz"])
def test_capture_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    header = make_header(
        "polar_pmd", {"sample_rate_hz": 50}, {"address": "AA"}, "2024-01-01T00:00:00+00:00"
    )
    with CaptureWriter(path) as cap:
        cap.write_event(1, "connect", CHAR)  # before the header: buffered
        cap.write_header(header)
        cap.write_event(2, "write", CHAR, b"\x01\x02")
        cap.write_event(3, "notify", CHAR, bytes(range(10)))
        cap.write_event(4, "disconnect", CHAR)
    got = read_capture(path)
    assert got.header == header
    assert [(e.t_ns, e.kind, e.char, e.data) for e in got.events] == [
        (1, "connect", CHAR, b""),
        (2, "write", CHAR, b"\x01\x02"),
        (3, "notify", CHAR, bytes(range(10))),
        (4, "disconnect", CHAR, b""),
    ]


def test_writer_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "live.capture.jsonl"
    cap = CaptureWriter(path, make_header("polar_pmd", {}, {}))
    cap.write_event(5, "notify", CHAR, b"\xff")
    assert len(path.read_text().splitlines()) == 2  # visible before close
    cap.close()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


GOOD_HEADER = json.dumps(make_header("polar_pmd", {}, {}, "2024-01-01T00:00:00+00:00"))
GOOD_EVENT = json.dumps({"t_ns": 1, "kind": "notify", "char": CHAR, "hex": "00"})


@pytest.mark.parametrize(
    ("lines", "line_no", "reason"),
    [
        ([GOOD_HEADER, GOOD_EVENT, "{not json"], 3, "not JSON"),
        (
            [GOOD_HEADER, json.dumps({"t_ns": -1, "kind": "notify", "char": CHAR, "hex": ""})],
            2,
            "t_ns",
        ),
        (
            [GOOD_HEADER, json.dumps({"t_ns": 1, "kind": "read", "char": CHAR, "hex": ""})],
            2,
            "kind",
        ),
        (
            [GOOD_HEADER, json.dumps({"t_ns": 1, "kind": "notify", "char": CHAR, "hex": "zz"})],
            2,
            "hex",
        ),
        ([GOOD_HEADER, GOOD_EVENT, json.dumps([1, 2])], 3, "object"),
        ([GOOD_EVENT], 1, "header"),
        ([json.dumps({"format": "otmon-capture", "version": 2})], 1, "version"),
    ],
)
def test_malformed_line_names_file_and_line(
    tmp_path: Path, lines: list[str], line_no: int, reason: str
) -> None:
    path = tmp_path / "bad.capture.jsonl"
    _write_lines(path, lines)
    with pytest.raises(CaptureFormatError, match=reason) as info:
        read_capture(path)
    assert info.value.line_no == line_no
    assert f"{path}:{line_no}:" in str(info.value)


def test_corrupt_gzip_is_capture_format_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.capture.jsonl.gz"
    path.write_bytes(gzip.compress(b"x" * 100)[:30])
    with pytest.raises(CaptureFormatError, match="bad.capture.jsonl.gz"):
        read_capture(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.capture.jsonl"
    path.write_text("")
    with pytest.raises(CaptureFormatError, match="empty"):
        read_capture(path)
