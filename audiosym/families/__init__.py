"""Model families (SPS, V3, ...) by name: what each one's latents are and how MIDI pitch maps onto them.

``get(name)`` is the :class:`audiosym.families.base.Family` of a preset's ``kind``; SPS and V3 are
registered here, and a new family registers itself with :func:`register` (the tests do, with a
tiny one of their own).
"""

from __future__ import annotations

from audiosym.errors import ParameterError
from audiosym.families.base import Family
from audiosym.families.sps import SPS
from audiosym.families.v3 import V3

_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make ``family`` known by its ``name`` (to load its presets, export, evaluate and train it);
    registering the same object again is a no-op, another one under a taken name an error."""
    known = _FAMILIES.get(family.name)
    if known is not None and known is not family:
        raise ParameterError(f"a model family named {family.name!r} is already registered; choose another name")
    _FAMILIES[family.name] = family
    return family


def get(name: str) -> Family:
    """The family called ``name``; ParameterError listing the registered ones otherwise."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ParameterError(f"model family {name!r} is unknown; registered families: {', '.join(names())}") from None


def names() -> list[str]:
    """The registered families' names, sorted."""
    return sorted(_FAMILIES)


register(SPS)
register(V3)
