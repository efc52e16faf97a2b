"""Registry of device profiles: `PROFILES` (name -> profile) and `get(name)`."""

from __future__ import annotations

from collector.devices.base import ControlLink, DeviceProfile, FrameDecoder
from collector.devices.infinitime import PROFILE as _INFINITIME
from collector.devices.metawear import PROFILE as _METAWEAR
from collector.devices.microbit import PROFILE as _MICROBIT
from collector.devices.polar_pmd import PROFILE as _POLAR_PMD
from collector.devices.thingy52 import PROFILE as _THINGY52
from collector.devices.witmotion import PROFILE as _WITMOTION

PROFILES: dict[str, DeviceProfile] = {_POLAR_PMD.name: _POLAR_PMD}
PROFILES[_METAWEAR.name] = _METAWEAR
PROFILES[_MICROBIT.name] = _MICROBIT
PROFILES[_INFINITIME.name] = _INFINITIME
PROFILES[_THINGY52.name] = _THINGY52
PROFILES[_WITMOTION.name] = _WITMOTION


class UnknownProfileError(KeyError):
    """No profile of that name is registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown profile"


def get(name: str) -> DeviceProfile:
    """Return the profile called `name`.

    Raises:
        UnknownProfileError (a KeyError) listing the known names.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(f"unknown device profile {name!r}; known: {known}") from None


__all__ = ["PROFILES", "ControlLink", "DeviceProfile", "FrameDecoder", "UnknownProfileError", "get"]
