"""The interface between the pipeline and alerting: an :class:`AlertPolicy` and a small registry of policies by name.

A policy turns what the pipeline knows at one step — the track snapshot and the reports that arrived in the step —
into alert state changes (:class:`~skytrace.alerting.engine.AlertEvent`: raise / update / clear) for zones. The
pipeline calls exactly::

    policy = create_policy(name, zones, sensors, config)     # config: the policy's own dataclass (or None)
    events = policy.update(t, tracks, detections)            # every step
    events = policy.close(t)                                 # end of run: an all-clear for everything still raised

To add a policy, write one class (subclass :class:`AlertPolicy`, set ``name`` and ``config_class``) and decorate it
with :func:`register_policy`. Built in: ``evidence`` (the default: every piece of evidence with its CAP certainty,
zones as wide as the uncertainty, :mod:`skytrace.alerting.evidence`) and ``zone`` (confirmed and coasting tracks
only: the per-zone engine of :mod:`skytrace.alerting.engine`).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.model import Alert
from skytrace.zones import ZoneSet

DEFAULT_POLICY = "evidence"


class AlertPolicy:
    """Base class of alert policies: per-step zone alert decisions from tracks and the step's reports.

    Subclasses implement :meth:`update` and :meth:`close`, keep ``periods`` (every finished alert period, as
    :class:`~skytrace.model.Alert`) and may override :meth:`active` and :meth:`rollup`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, zones: ZoneSet, sensors: SensorTable | None = None, config: Any = None):
        self.zones = zones
        self.sensors = sensors
        self.config = config if config is not None else self.config_class()
        self.periods: list[Alert] = []
        self.muted_sensors: Any = None

    def update(self, t: float, tracks: TrackSnapshot, detections: DetectionBatch | None = None) -> list:
        """Decide alerts at time ``t`` (s, UNIX) from the tracks and the reports that arrived in this step."""
        raise NotImplementedError

    def mute_sensors(self, muted: Any) -> None:
        """Sensors (bool per sensor row) whose reports a consistency check contradicts: a policy must not raise an
        alert that rests only on their reports (the pipeline calls this before every :meth:`update`). The base
        policy keeps the mask in ``muted_sensors``; policies that alert only on tracks may ignore it."""
        self.muted_sensors = muted

    def heartbeat(self, sensor_rows: Any, t: Any) -> None:
        """Sensors ``sensor_rows`` (rows of the sensor table) were alive at ``t`` and heard nothing (heartbeats);
        a policy that uses sensors' silence counts only alive sensors. Default: ignored."""

    def close(self, t: float) -> list:
        """End of run: clear every alert still raised, so that an all-clear follows every alert."""
        raise NotImplementedError

    def active(self) -> list[Alert]:
        """Alerts in force now (end = None)."""
        return []

    def rollup(self) -> dict[str, str]:
        """Parent zone id -> "alert" (itself raised) or "partial" (a child zone raised)."""
        return {}


_REGISTRY: dict[str, type[AlertPolicy]] = {}


def register_policy(cls: type[AlertPolicy]) -> type[AlertPolicy]:
    """Class decorator: make a policy available by its ``name`` (``[alerting] policy = "name"``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    import skytrace.alerting.engine
    import skytrace.alerting.evidence  # noqa: F401  (registers "evidence")


def policy_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def policy_class(name: str) -> type[AlertPolicy]:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SkytraceError(f"unknown alert policy {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def policy_for_config(config: Any) -> type[AlertPolicy]:
    """The registered policy whose config class ``config`` is an instance of."""
    _load_builtins()
    for cls in _REGISTRY.values():
        if isinstance(config, cls.config_class) and cls.config_class is not object:
            return cls
    raise SkytraceError(f"no alert policy takes a {type(config).__name__} configuration")


def config_from_dict(name: str, values: dict) -> Any:
    """The config dataclass of policy ``name`` from a plain dict (e.g. the ``[alerting]`` section of a TOML file).

    Unknown keys and wrongly typed values are errors (one line each), never silently ignored.
    """
    cls = policy_class(name).config_class
    known = {f.name: f for f in dataclasses.fields(cls)}
    kw = {}
    for key, value in values.items():
        if key not in known:
            raise SkytraceError(f"[alerting] unknown key {key!r} for policy {name!r} (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = True
        if not ok:
            raise SkytraceError(f"[alerting] {key} must be a {type(default).__name__}, got {value!r}")
        kw[key] = type(default)(value) if isinstance(default, int | float) and not isinstance(default, bool) \
            else value
    return cls(**kw)


def create_policy(name: str | None, zones: ZoneSet, sensors: SensorTable | None = None, config: Any = None,
                  assess_config: Any = None) -> AlertPolicy:
    """Construct the policy ``name`` (default ``evidence``; or the one that takes ``config``).

    ``assess_config`` (the ``[assess]`` section) goes to policies whose constructor takes it."""
    if name is None:
        cls = policy_for_config(config) if config is not None else policy_class(DEFAULT_POLICY)
    else:
        cls = policy_class(name)
        if config is not None and not isinstance(config, cls.config_class):
            raise SkytraceError(f"alert policy {name!r} takes a {cls.config_class.__name__}, "
                                f"got a {type(config).__name__}")
    if assess_config is not None and "assess_config" in inspect.signature(cls.__init__).parameters:
        return cls(zones, sensors, config, assess_config=assess_config)  # type: ignore[call-arg]
    return cls(zones, sensors, config)
