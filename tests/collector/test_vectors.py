"""Every vector of ble-vectors.json against the registered profiles (vendor and derived).

A vector whose profile is not registered yet is skipped, naming the profile, so this file
picks each profile up as soon as it lands in `collector.devices.PROFILES`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from collector import devices
from tests.collector.conftest import load_vectors

VECTORS = load_vectors("")
RECEIVED_NS = 1_700_000_000_000_000_000
STANDARD_GRAVITY = 9.80665  # m/s^2 per g (CGPM 1901), for Movesense's m/s^2
# Kinds that are not one data notification; checked by their own builders/parsers below.
NOT_NOTIFICATIONS = {
    "polar_delta_content",
    "polar_pmd_settings",
    "polar_cp_command",
    "metawear_command",
}
PROFILE_OF_PREFIX = {"polar": "polar_pmd"}


def _profile_name(v: dict[str, Any]) -> str:
    prefix = v["kind"].split("_")[0]
    return str(PROFILE_OF_PREFIX.get(prefix, prefix))


def _profile(v: dict[str, Any]) -> Any:
    name = _profile_name(v)
    if name not in devices.PROFILES:
        pytest.skip(f"profile {name!r} is not registered (yet)")
    return devices.PROFILES[name]


def _ids(v: dict[str, Any]) -> str:
    chip = v["settings"].get("chip", "")
    return (
        f"{v['kind']}-{chip}-{'derived' if v.get('derived') else 'vendor'}-{v['payload_hex'][:12]}"
    )


def _is_close(a: float, b: float) -> bool:
    """MetaWear SDK test helper (test/common.py): |a-b| <= max(0.001*max(|a|,|b|), 0.001)."""
    return abs(a - b) <= max(0.001 * max(abs(a), abs(b)), 0.001)


SAMPLE_VECTORS = [v for v in VECTORS if v["kind"] not in NOT_NOTIFICATIONS]


@pytest.mark.parametrize("v", SAMPLE_VECTORS, ids=_ids)
def test_notification_vector_decodes_to_expected_values(v: dict[str, Any]) -> None:
    """The profile's decoder turns the payload into exactly the listed samples."""
    decoder = _profile(v).decoder(v["settings"])
    blocks = decoder.decode(bytes.fromhex(v["payload_hex"]), RECEIVED_NS)
    assert blocks, "no samples decoded"
    accel = np.concatenate([b.accel_g for b in blocks]).astype(np.float64)
    assert all(b.accel_g.dtype == np.float32 for b in blocks)
    expected = np.asarray(
        v.get("expected_scaled_mG") or v.get("expected_scaled_mG_derived") or v["expected"],
        dtype=np.float64,
    )
    if "expected_sample_count" in v:
        assert len(accel) == v["expected_sample_count"]
    if v.get("expected_is_prefix"):
        accel = accel[: len(expected)]
    assert accel.shape == expected.shape
    unit = (v.get("unit") or "").lower()
    if "mg" in unit or "milli-g" in unit or "raw counts" in unit:
        assert np.rint(accel * 1000).astype(int).tolist() == expected.astype(int).tolist()
    elif unit.startswith("m/s"):
        np.testing.assert_allclose(accel * STANDARD_GRAVITY, expected, rtol=1e-6, atol=1e-6)
    elif "tolerance" in v:  # MetaWear: the vendor tests' own tolerance
        bad = [
            (a, e)
            for a, e in zip(accel.ravel(), expected.ravel(), strict=True)
            if not _is_close(a, e)
        ]
        assert not bad, f"outside the vendor tolerance: {bad}"
    else:  # g, exact to float32
        np.testing.assert_array_equal(accel.astype(np.float32), expected.astype(np.float32))
    times = getattr(decoder, "last_sample_times_ns", None)
    if times is not None:  # device timestamps where the vector gives them (Polar)
        if "expected_last_sample_timestamp_ns" in v:
            assert times[-1] == v["expected_last_sample_timestamp_ns"]
        if "expected_first_sample_timestamp_ns" in v:
            assert times[0] == v["expected_first_sample_timestamp_ns"]
        if "expected_sample_timestamps_ns" in v:
            assert times == v["expected_sample_timestamps_ns"]


def _metawear_command(v: dict[str, Any]) -> bytes:
    """Build the bytes the vector's SDK call sequence writes, with the profile's builders."""
    from collector.devices import metawear as mw

    api = v["expected"]["api"]
    chip = v["settings"]["chip"].split("/")[0]
    if "set_odr" in api:
        rate = float(re.search(r"set_odr\((\d+)Hz\)", api).group(1))  # type: ignore[union-attr]
        ranged = re.search(r"set_range\((\d+)G\)", api)
        # Without set_range the SDK writes the range it assumes (§2.3: BMI160 ±2 g = 0x03).
        range_g = int(ranged.group(1)) if ranged else mw.SDK_DEFAULT_RANGE_G[chip]
        return mw.config_command(chip, rate, range_g)
    if api == "subscribe acceleration data signal":
        return mw.subscribe_command(chip, packed=False)
    if api == "subscribe packed acceleration signal":
        return mw.subscribe_command(chip, packed=True)
    if api == "enable acceleration sampling":
        return mw.sampling_command(True)
    if api == "disable acceleration sampling":
        return mw.sampling_command(False)
    if api.startswith("start accelerometer"):
        return mw.power_command(chip, True)
    raise AssertionError(f"no builder for {api!r}")


def _polar_command(v: dict[str, Any]) -> bytes:
    from collector.devices import polar_pmd as pmd

    meaning = v["expected"]["meaning"]
    if meaning.startswith("GET_MEASUREMENT_SETTINGS"):
        return pmd.GET_ACC_SETTINGS
    if meaning.startswith("STOP_MEASUREMENT"):
        return pmd.STOP_ACC
    values = dict(re.findall(r"(\w+)=(\d+)", meaning))
    return pmd.start_command(
        int(values["SAMPLE_RATE"]), int(values["RESOLUTION"]), int(values["RANGE"]), 3
    )


COMMAND_VECTORS = [v for v in VECTORS if v["kind"] in ("metawear_command", "polar_cp_command")]


@pytest.mark.parametrize("v", COMMAND_VECTORS, ids=_ids)
def test_command_vector_bytes_come_from_the_builders(v: dict[str, Any]) -> None:
    """The command builders produce exactly the bytes the vendor SDK writes."""
    _profile(v)
    build = _metawear_command if v["kind"] == "metawear_command" else _polar_command
    assert build(v).hex() == v["payload_hex"]


@pytest.mark.parametrize("v", [v for v in VECTORS if v["kind"] == "polar_delta_content"], ids=_ids)
def test_polar_delta_content_vector(v: dict[str, Any]) -> None:
    """Delta-compressed content decodes to the listed raw counts."""
    _profile(v)
    from collector.devices import polar_pmd as pmd

    s = v["settings"]
    counts = pmd.parse_delta_content(
        bytes.fromhex(v["payload_hex"]), s["resolution_bits"], s["channels"]
    ).tolist()
    assert len(counts) == v.get("expected_sample_count", len(v["expected"]))
    assert counts[: len(v["expected"])] == v["expected"]


@pytest.mark.parametrize("v", [v for v in VECTORS if v["kind"] == "polar_pmd_settings"], ids=_ids)
def test_polar_settings_vector(v: dict[str, Any]) -> None:
    """The settings TLV list parses to the listed values."""
    _profile(v)
    from collector.devices import polar_pmd as pmd

    assert pmd.parse_settings(bytes.fromhex(v["payload_hex"])) == v["expected"]


def test_every_vector_kind_is_covered_by_a_test_above() -> None:
    """No vector kind falls through: a new kind in the file must get a check here."""
    covered = {v["kind"] for v in SAMPLE_VECTORS + COMMAND_VECTORS} | {
        "polar_delta_content",
        "polar_pmd_settings",
    }
    assert {v["kind"] for v in VECTORS} <= covered
    assert len(VECTORS) >= 36
