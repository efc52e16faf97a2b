"""Compendium MET values for known activities of daily living (methods.md §1.10).

When the task is known (a labelled session), the Compendium of Physical Activities
gives a better MET estimate for arm-dominant household tasks than any wrist equation
(methods.md §1.10 "For ADLs (recommended)"). Values and their provenance are those of
methods.md §1.10: entries marked ``verified=True`` are 2011 Compendium values quoted in
a published table (Ainsworth et al. 2011, MSSE 43(8):1575); the others are from
memory in methods.md and must be checked against the 2024 Adult Compendium (Herrmann
et al. 2024, J Sport Health Sci 13(1):6) before clinical use — the `source` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["COMPENDIUM", "CompendiumEntry", "compendium_met", "normalise_activity"]


@dataclass(frozen=True, slots=True)
class CompendiumEntry:
    """One Compendium activity.

    Attributes
    ----------
    activity : str
        Registry key (lower case, underscores).
    met : float
        Metabolic equivalent (1 MET = 3.5 ml O₂·kg⁻¹·min⁻¹).
    description : str
        The Compendium's wording.
    source : str
        Where the value comes from.
    verified : bool
        True when methods.md quotes it from a published table, False when from memory.
    """

    activity: str
    met: float
    description: str
    source: str
    verified: bool


_C2011 = "2011 Compendium (Ainsworth et al. 2011 MSSE 43(8):1575) via a BMJ table, methods.md §1.10"
_MEMORY = "methods.md §1.10 [memory]; check against the 2024 Adult Compendium (Herrmann et al. 2024)"

_ALL = (
    CompendiumEntry("kitchen_general", 3.3, "general kitchen activity (cooking, washing dishes, cleaning up), moderate effort", _C2011, True),
    CompendiumEntry("vacuuming", 3.3, "vacuuming, moderate", _C2011, True),
    CompendiumEntry("scrubbing_floors", 3.5, "scrubbing floors on hands and knees", _C2011, True),
    CompendiumEntry("making_bed", 3.3, "making bed, changing linen", _C2011, True),
    CompendiumEntry("walking_household", 2.0, "walking, household", _C2011, True),
    CompendiumEntry("stair_climbing_slow", 4.0, "stair climbing, slow", _C2011, True),
    CompendiumEntry("dressing", 2.5, "dressing/undressing", _MEMORY, False),
    CompendiumEntry("grooming", 2.0, "grooming", _MEMORY, False),
    CompendiumEntry("showering", 2.0, "showering", _MEMORY, False),
    CompendiumEntry("eating", 1.5, "eating, sitting", _MEMORY, False),
    CompendiumEntry("washing_dishes", 1.8, "washing dishes", _MEMORY, False),
    CompendiumEntry("cooking", 2.0, "cooking / food preparation", _MEMORY, False),
    CompendiumEntry("laundry_folding", 2.0, "laundry folding", _MEMORY, False),
    CompendiumEntry("ironing", 1.8, "ironing", _MEMORY, False),
)

#: Activities by key (read-only).
COMPENDIUM: Mapping[str, CompendiumEntry] = MappingProxyType({e.activity: e for e in _ALL})

# Common labels a therapist or the app may use for the same task.
_ALIASES = MappingProxyType(
    {
        "undressing": "dressing",
        "dressing_undressing": "dressing",
        "shower": "showering",
        "food_preparation": "cooking",
        "meal_preparation": "cooking",
        "dishes": "washing_dishes",
        "dishwashing": "washing_dishes",
        "kitchen": "kitchen_general",
        "vacuum": "vacuuming",
        "folding_laundry": "laundry_folding",
        "bed_making": "making_bed",
    }
)


def normalise_activity(label: str) -> str:
    """Lower-case a label and join its words with underscores.

    Examples
    --------
    >>> normalise_activity("  Dressing / Undressing ")
    'dressing_undressing'
    """
    words = "".join(ch if ch.isalnum() else " " for ch in label.lower()).split()
    return "_".join(words)


def compendium_met(activity: str | None) -> CompendiumEntry | None:
    """The Compendium entry of an activity label, or None when the task is unknown.

    Examples
    --------
    >>> compendium_met("Cooking").met
    2.0
    >>> compendium_met("juggling") is None
    True
    """
    if activity is None:
        return None
    if not isinstance(activity, str):
        raise TypeError(f"activity must be a string or None, got {activity!r}")
    key = normalise_activity(activity)
    return COMPENDIUM.get(_ALIASES.get(key, key))
