"""The registry of sensor families: kind name -> family object, and the integer codes used in batches.

The built-in families are listed in ``BUILTIN`` (module names under :mod:`skytrace.sensors.families`, each
defining ``FAMILY``); their codes follow that order, so ``acoustic`` = 0, ``radar`` = 1, ``optical`` = 2,
``position`` = 3 as in every batch written so far. Another family is added by writing one module with a
:class:`~skytrace.sensors.family.SensorFamily` subclass and either listing it in ``BUILTIN`` or calling
:func:`register` before reading sensors.json (docs/tracking.md, "Adding a sensor kind").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import numpy as np

from skytrace.sensors.family import SensorFamily

BUILTIN: tuple[str, ...] = ("acoustic", "radar", "optical", "position")

_BY_NAME: dict[str, SensorFamily] = {}
_BY_CODE: list[SensorFamily] = []


def register(family: SensorFamily) -> SensorFamily:
    """Register a family under ``family.name`` and give it the next integer code; returns it."""
    if not family.name:
        raise ValueError("a sensor family needs a non-empty `name`")
    if family.name in _BY_NAME:
        if _BY_NAME[family.name] is family:
            return family
        raise ValueError(f"sensor kind {family.name!r} is already registered")
    if family.initiation not in ("plot", "bearing", "none"):
        raise ValueError(f"sensor kind {family.name!r}: initiation must be 'plot', 'bearing' or 'none'")
    family.code = len(_BY_CODE)
    _BY_NAME[family.name] = family
    _BY_CODE.append(family)
    return family


for _module in BUILTIN:
    register(importlib.import_module(f"skytrace.sensors.families.{_module}").FAMILY)


def names() -> tuple[str, ...]:
    """Registered kind names, in code order."""
    return tuple(f.name for f in _BY_CODE)


def get(name: str) -> SensorFamily:
    fam = _BY_NAME.get(name)
    if fam is None:
        raise ValueError(f"unknown sensor kind {name!r} (known: {', '.join(names())})")
    return fam


def by_code(code: int) -> SensorFamily:
    return _BY_CODE[int(code)]


def code(name: str) -> int:
    return get(name).code


def groups(kind_codes: np.ndarray) -> Iterator[tuple[SensorFamily, np.ndarray]]:
    """(family, row indices) for each family present in an array of kind codes: the one place where batched work
    is dispatched per kind (each family then handles all its rows at once)."""
    if kind_codes.size == 0:
        return
    present = np.flatnonzero(np.bincount(kind_codes.astype(np.int64), minlength=len(_BY_CODE)))
    if present.size == 1:
        yield _BY_CODE[int(present[0])], np.arange(kind_codes.size)
        return
    for c in present:
        yield _BY_CODE[int(c)], np.flatnonzero(kind_codes == c)


def codes_where(attribute: str, value=True) -> np.ndarray:
    """Boolean lookup table over codes: which families have ``attribute == value`` (index it with kind codes)."""
    return np.array([getattr(f, attribute) == value for f in _BY_CODE], dtype=bool)
