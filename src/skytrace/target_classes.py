"""Target classes: the motion limits a track must respect to be confirmed (and kept), per kind of flying object.

One speed window for every track (12-120 m/s) rejected a hovering multirotor — the airport and border case an
acoustic node or a drone radar reports — and every airliner, while it is exactly right for a Shahed-class drone
(it cannot hover: a still "track" is a confuser; it does not fly at jet speed: a faster one is a ghost sliding
along crossing bearings). The limits are therefore a property of the target's class, taken from the reports:
the ``class`` a sensor gives a detection (a node's classifier, a drone radar's micro-Doppler class, ``manned``
for ADS-B, ``cooperative-uav`` for Remote ID: docs/formats.md, docs/interop.md). A track takes the class of the
latest classified report that updated it; a track no report has classified keeps the tracker's own settings
(``TrackerConfig.confirm_min_speed_mps`` / ``confirm_max_speed_mps`` / ``max_speed_mps``: the threat window).

A class is one :class:`TargetClass` in the registry; a new one is one registration::

    from skytrace import target_classes
    target_classes.register(target_classes.TargetClass("balloon", 0.0, 40.0, 60.0, aliases=("sonde",)))

Limits (sources: manufacturer and open-source figures; they are plausibility bounds, not models):

| class | also reported as | may hover | confirm speed window | deleted above | new-track velocity sigma |
|---|---|---|---|---|---|
| ``owa-uav`` (Shahed class) | shahed, geran, uav-engine, decoy, hostile-uav | no | 12-120 m/s | 150 m/s | default |
| ``jet-uav`` (jet-powered one-way drone) | jet | no | 30-250 m/s | 300 m/s | 150 m/s |
| ``multirotor`` | uav-multirotor, quadcopter | yes | 0-40 m/s | 60 m/s | 20 m/s |
| ``cooperative-uav`` (Remote ID) | | yes | 0-60 m/s | 90 m/s | 30 m/s |
| ``manned`` (ADS-B, helicopters to airliners) | aircraft | yes | 0-350 m/s | 400 m/s | 250 m/s |

``manned`` also lifts the altitude ceiling (``max_agl_m`` 16 km: airliners cruise at 10-12 km).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TargetClass:
    """Motion limits of one class of target (SI units; ``None`` = the tracker's setting)."""

    name: str
    min_speed_mps: float  # slower tracks are not confirmed as this class (0: it may hover)
    max_speed_mps: float  # faster tracks are not confirmed (ghosts)
    delete_speed_mps: float  # tracks faster than this are deleted
    init_vel_sigma_mps: float | None = None  # horizontal velocity sigma of a track started by such a report
    max_agl_m: float | None = None  # altitude ceiling above the sensors' ground
    aliases: tuple[str, ...] = ()


_CLASSES: list[TargetClass] = []
_BY_NAME: dict[str, int] = {}


def register(target_class: TargetClass) -> TargetClass:
    """Add a class (and its aliases); its code is its position in the registry."""
    names = (target_class.name, *target_class.aliases)
    for n in names:
        if n.lower() in _BY_NAME:
            raise ValueError(f"target class name {n!r} is already registered")
    _CLASSES.append(target_class)
    for n in names:
        _BY_NAME[n.lower()] = len(_CLASSES) - 1
    return target_class


def code(name: str | None) -> int:
    """Code of a reported class name (case-insensitive, aliases included); -1 for none or an unknown name."""
    if not name:
        return -1
    return _BY_NAME.get(name.lower(), -1)


def from_detection_codes(cls_code: np.ndarray, detection_classes: tuple[str, ...]) -> np.ndarray:
    """Target-class codes (int16, -1 none) of reports whose ``class`` is coded as an index into
    ``detection_classes`` (skytrace.batch.DetectionBatch.cls_code: -1 none, -2 a name not listed)."""
    lut = np.array([code(n) for n in detection_classes] + [-1, -1], dtype=np.int16)  # [-2] and [-1]: none
    return lut[np.asarray(cls_code, dtype=np.int64)]


def by_code(c: int) -> TargetClass:
    return _CLASSES[c]


def names() -> list[str]:
    return [c.name for c in _CLASSES]


def limits(codes: np.ndarray, defaults: dict[str, float]) -> dict[str, np.ndarray]:
    """Per-track limits for class codes (N,), with ``defaults`` (the tracker's settings, keys as the fields of
    :class:`TargetClass`) for unclassified tracks (-1) and for fields a class leaves at None."""
    fields = ("min_speed_mps", "max_speed_mps", "delete_speed_mps", "init_vel_sigma_mps", "max_agl_m")
    table = {f: np.array([v if (v := getattr(c, f)) is not None else defaults[f] for c in _CLASSES] + [defaults[f]])
             for f in fields}
    idx = np.where(codes >= 0, codes, len(_CLASSES))
    return {f: table[f][idx] for f in fields}


for _c in (
    TargetClass("owa-uav", 12.0, 120.0, 150.0, aliases=("shahed", "geran", "uav-engine", "decoy", "hostile-uav")),
    TargetClass("jet-uav", 30.0, 250.0, 300.0, init_vel_sigma_mps=150.0, aliases=("jet",)),
    TargetClass("multirotor", 0.0, 40.0, 60.0, init_vel_sigma_mps=20.0, aliases=("uav-multirotor", "quadcopter")),
    TargetClass("cooperative-uav", 0.0, 60.0, 90.0, init_vel_sigma_mps=30.0),
    TargetClass("manned", 0.0, 350.0, 400.0, init_vel_sigma_mps=250.0, max_agl_m=16_000.0, aliases=("aircraft",)),
):
    register(_c)
