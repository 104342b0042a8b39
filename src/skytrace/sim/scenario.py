"""Scenario files: what a simulated night looks like, as a TOML file a user can write.

A scenario names its waves of drones (launch area, count, launch interval, target cities, kinds, speeds,
altitudes, number of dog-leg waypoints), its sensor network (acoustic nodes placed around cities, along approach
corridors and across a background region; radars; citizen sightings) and the delivery of reports (latency, late
reports). Every key is checked: an unknown key or a wrong type is a :class:`~skytrace.errors.ScenarioError`
naming the file and the key. See ``docs/scenarios.md`` and the built-ins in ``skytrace/scenarios/``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from skytrace.errors import ScenarioError


@dataclass
class Wave:
    launch_area: str
    count: int
    targets: list[str]
    first_launch_s: float = 0.0
    launch_interval_s: float = 120.0
    kind_mix: dict[str, float] = field(default_factory=lambda: {"shahed": 0.9, "decoy": 0.1})
    waypoints: list[int] = field(default_factory=lambda: [1, 3])
    speed_kmh: list[float] = field(default_factory=lambda: [120.0, 185.0])
    jet_speed_kmh: list[float] = field(default_factory=lambda: [330.0, 400.0])
    decoy_speed_kmh: list[float] = field(default_factory=lambda: [110.0, 160.0])
    altitude_m: list[float] = field(default_factory=lambda: [50.0, 2000.0])
    lateral_spread: float = 0.12  # waypoint offset sigma as a fraction of the route length
    target_jitter_m: float = 6000.0


@dataclass
class Acoustic:
    count: int = 400
    report_interval_s: float = 2.0
    heartbeat_interval_s: float = 120.0  # each node's "alive" message (heartbeats.jsonl); 0: none
    city_fraction: float = 0.5
    city_weights: dict[str, float] = field(default_factory=dict)  # default: the targeted cities, equal weights
    city_sigma_km: float = 20.0
    corridor_fraction: float = 0.3
    corridor_sigma_km: float = 12.0
    urban_radius_km: float = 12.0
    noise_rural_db: float = 38.0
    noise_urban_db: float = 50.0
    noise_spread_db: float = 3.0
    mast_m: float = 6.0
    elevation_fraction: float = 0.3
    bearing_sigma_deg: float = 2.5
    false_alarm_per_hour: float = 2.0
    confuser_fraction: float = 0.05
    confuser_duty: float = 0.25
    outlier_fraction: float = 0.02
    resolution_deg: float = 6.0  # two engines closer than this in bearing merge into one report
    latency_s: float = 0.3
    late_fraction: float = 0.01
    late_max_s: float = 60.0


@dataclass
class Radar:
    id: str
    lat: float
    lon: float
    mast_m: float = 25.0
    max_range_m: float = 40_000.0
    scan_s: float = 4.0
    range_sigma_m: float = 30.0
    bearing_sigma_deg: float = 0.8
    elevation_sigma_deg: float = 1.0
    clutter_per_scan: float = 2.0
    latency_s: float = 0.5


@dataclass
class RadarAuto:
    """Radars placed automatically near the largest targeted cities (national-scale scenarios)."""

    count: int = 0
    mast_m: float = 25.0
    max_range_m: float = 40_000.0
    offset_km: float = 25.0


@dataclass
class Sightings:
    enabled: bool = True
    base_rate_per_hour: float = 3.0  # per drone, anywhere
    city_rate_per_hour: float = 40.0  # per drone close to a city, decaying over city_scale_km
    city_scale_km: float = 15.0
    max_alt_m: float = 1500.0
    pos_error_m: list[float] = field(default_factory=lambda: [500.0, 2500.0])
    reported_sigma_m: float = 2000.0
    alt_error_m: float = 300.0
    reported_alt_sigma_m: float = 500.0
    time_error_s: float = 10.0
    delay_s: list[float] = field(default_factory=lambda: [20.0, 120.0])
    wrong_per_hour: float = 10.0


@dataclass
class Benchmark2D:
    n_targets: int = 50
    duration_s: float = 300.0
    pd: float = 0.9
    noise_m: float = 50.0
    clutter_per_scan: float = 10.0
    area_m: float = 40_000.0


@dataclass
class Scenario:
    name: str
    description: str = ""
    type: str = "wave"  # "wave" or "benchmark2d"
    start_utc: str = "2026-11-22T21:00:00Z"
    duration_s: float = 14_400.0
    truth_interval_s: float = 1.0
    ground_alt_m: float = 150.0
    chunk_s: float = 60.0
    region: list[str] = field(default_factory=lambda: ["all"])  # oblast ids for background nodes, or "all"
    wave: list[Wave] = field(default_factory=list)
    acoustic: Acoustic = field(default_factory=Acoustic)
    radar: list[Radar] = field(default_factory=list)
    radar_auto: RadarAuto = field(default_factory=RadarAuto)
    sightings: Sightings = field(default_factory=Sightings)
    benchmark2d: Benchmark2D = field(default_factory=Benchmark2D)
    source: str = ""

    @property
    def start_t(self) -> float:
        return datetime.fromisoformat(self.start_utc.replace("Z", "+00:00")).timestamp()


# hostile-input limits (a scenario file is user input; docs/security.md)
MAX_SCENARIO_BYTES = 1 << 20
MAX_NUMBER = 1e12  # no scenario quantity (s, m, km/h, dB, counts) is anywhere near this
MAX_INT = 10_000_000
MAX_TEXT = 10_000
MAX_ITEMS = 10_000
MAX_DRONES = 100_000  # drones over all waves
MAX_NODES = 200_000  # acoustic nodes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _convert(value: Any, tp: Any, where: str, src: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ScenarioError(f"{src}: '{where}' must be a table")
        return _build(tp, value, where, src)
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise ScenarioError(f"{src}: '{where}' must be a list of at most {MAX_ITEMS} items")
        return [_convert(v, arg, f"{where}[{i}]", src) for i, v in enumerate(value)]
    if origin is dict:
        _, varg = typing.get_args(tp)
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            raise ScenarioError(f"{src}: '{where}' must be a table of at most {MAX_ITEMS} entries")
        return {str(k): _convert(v, varg, f"{where}.{k}", src) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_NUMBER <= value <= MAX_NUMBER:
            raise ScenarioError(f"{src}: '{where}' must be a finite number of magnitude <= {MAX_NUMBER:g}, "
                                f"got {_short(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -MAX_INT <= value <= MAX_INT:
            raise ScenarioError(f"{src}: '{where}' must be an integer of magnitude <= {MAX_INT}, got {_short(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{src}: '{where}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ScenarioError(f"{src}: '{where}' must be a string of at most {MAX_TEXT} characters, "
                                f"got {_short(value)}")
        return value
    raise ScenarioError(f"{src}: '{where}': unsupported type {tp}")  # pragma: no cover


def _build(cls: type, data: dict, where: str, src: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ScenarioError(f"{src}: unknown key '{(where + '.') if where else ''}{unknown[0]}'")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], key, src)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ScenarioError(f"{src}: missing required key '{key}'")
    return cls(**kwargs)


def _validate(sc: Scenario, src: str) -> None:
    from skytrace.zones import load_places

    places = load_places()
    launch = {p["id"] for p in places["launch_areas"]}
    cities = {p["id"] for p in places["cities"]}
    if sc.type not in ("wave", "benchmark2d"):
        raise ScenarioError(f"{src}: 'type' must be 'wave' or 'benchmark2d', got {sc.type!r}")
    try:
        sc.start_t  # noqa: B018 - parse check
    except ValueError:
        raise ScenarioError(f"{src}: 'start_utc' is not an ISO 8601 time: {sc.start_utc!r}") from None
    if sc.duration_s <= 0 or sc.truth_interval_s <= 0 or sc.chunk_s <= 0:
        raise ScenarioError(f"{src}: duration_s, truth_interval_s and chunk_s must be > 0")
    for i, w in enumerate(sc.wave):
        if w.launch_area not in launch:
            raise ScenarioError(f"{src}: wave[{i}].launch_area {w.launch_area!r} unknown; known: {sorted(launch)}")
        for c in w.targets:
            if c not in cities:
                raise ScenarioError(f"{src}: wave[{i}].targets: unknown city {c!r}; known: {sorted(cities)}")
        if w.count < 0 or not w.targets:
            raise ScenarioError(f"{src}: wave[{i}] needs count >= 0 and at least one target")
        for k, v in w.kind_mix.items():
            if k not in ("shahed", "jet", "decoy") or v < 0:
                raise ScenarioError(f"{src}: wave[{i}].kind_mix: kinds are shahed, jet, decoy with weights >= 0")
        if sum(w.kind_mix.values()) <= 0:
            raise ScenarioError(f"{src}: wave[{i}].kind_mix weights sum to 0")
        for name in ("waypoints", "speed_kmh", "altitude_m", "jet_speed_kmh", "decoy_speed_kmh"):
            rng = getattr(w, name)
            if len(rng) != 2 or rng[0] > rng[1] or rng[0] < 0:
                raise ScenarioError(f"{src}: wave[{i}].{name} must be [low, high] with 0 <= low <= high")
        if w.speed_kmh[0] <= 0 or w.altitude_m[0] < 10:
            raise ScenarioError(f"{src}: wave[{i}]: speeds must be > 0 and altitudes >= 10 m")
    from skytrace.zones import builtin_oblast_ids

    if sc.region != ["all"]:
        known = builtin_oblast_ids()
        for r in sc.region:
            if r not in known:
                raise ScenarioError(f"{src}: region: unknown oblast id {r!r}; known: {sorted(known)} or 'all'")
    if sum(w.count for w in sc.wave) > MAX_DRONES or sc.acoustic.count > MAX_NODES or sc.radar_auto.count > 1000:
        raise ScenarioError(f"{src}: at most {MAX_DRONES} drones, {MAX_NODES} acoustic nodes and 1000 radars")
    if sc.truth_interval_s < 0.01 or sc.chunk_s < 0.1 or sc.acoustic.report_interval_s < 0.01:
        raise ScenarioError(f"{src}: truth_interval_s and acoustic.report_interval_s must be >= 0.01 s, "
                            "chunk_s >= 0.1 s")
    if sc.duration_s > 5e5:
        raise ScenarioError(f"{src}: duration_s must be at most 500000 s (about 5.8 days)")
    for c in sc.acoustic.city_weights:
        if c not in cities:
            raise ScenarioError(f"{src}: acoustic.city_weights: unknown city {c!r}")
    a = sc.acoustic
    if a.count < 0 or a.report_interval_s <= 0 or not 0 <= a.city_fraction + a.corridor_fraction <= 1:
        raise ScenarioError(f"{src}: acoustic: count >= 0, report_interval_s > 0, city+corridor fractions <= 1")
    ids = set()
    for r in sc.radar:
        if r.id in ids:
            raise ScenarioError(f"{src}: duplicate radar id {r.id!r}")
        ids.add(r.id)
        if not (-90 <= r.lat <= 90 and -180 <= r.lon <= 180) or r.max_range_m <= 0 or r.scan_s <= 0:
            raise ScenarioError(f"{src}: radar {r.id!r}: bad position, max_range_m or scan_s")


BUILTIN = ("kyiv-night", "national", "bench2d")


def load_scenario(name_or_path: str) -> Scenario:
    """Load a built-in scenario by name or a scenario TOML file by path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ScenarioError(f"{p}: scenario file not found")
        src = str(p)
        if p.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"{src}: larger than {MAX_SCENARIO_BYTES} bytes; not a plausible scenario")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"{src}: not UTF-8 text (byte {exc.start})") from None
    elif name_or_path in BUILTIN:
        text = resources.files("skytrace.scenarios").joinpath(f"{name_or_path}.toml").read_text(encoding="utf-8")
        src = f"built-in scenario {name_or_path}"
    else:
        raise ScenarioError(f"unknown scenario {name_or_path!r}: give a .toml file or one of {', '.join(BUILTIN)}")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise ScenarioError(f"{src}: not valid TOML ({exc})") from None
    sc = _build(Scenario, data, "", src)
    sc.source = src
    _validate(sc, src)
    return sc


__all__ = ["BUILTIN", "Acoustic", "Radar", "Scenario", "Sightings", "Wave", "load_scenario"]
