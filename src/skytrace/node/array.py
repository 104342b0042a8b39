"""Microphone-array description of an acoustic node (``ARRAY.json``), validated at the edge.

Schema (see docs/node.md)::

    {"id": "node-17", "lat": 50.45, "lon": 30.52, "alt_m": 180.0, "sample_rate_hz": 16000,
     "mics_m": [[e, n, u], ...]}

``mics_m`` are microphone positions in metres east, north and up of the node's reference point, as installed
(the board's orientation already applied): channel i of the audio is microphone i. Optional ``sound_speed_mps``
(default 343). Presets for common boards ship in ``skytrace/node/arrays/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from skytrace.errors import FormatError
from skytrace.model import DEFAULT_SOUND_SPEED_MPS

MAX_MICS = 64
MAX_APERTURE_M = 5.0  # larger "arrays" are a units mistake (mm given as m) or not one array
MIN_APERTURE_M = 0.005
PLANAR_TOL_M = 0.002  # vertical extent below this: a planar array, no elevation measured
_KEYS = {"id", "lat", "lon", "alt_m", "sample_rate_hz", "mics_m", "sound_speed_mps", "name", "comment"}


@dataclass(frozen=True)
class ArrayConfig:
    """A validated node array: id, position, nominal sample rate and microphone positions (M, 3) ENU metres."""

    id: str
    lat: float
    lon: float
    alt_m: float
    sample_rate_hz: int
    mics_m: np.ndarray
    sound_speed_mps: float = DEFAULT_SOUND_SPEED_MPS

    @property
    def n_mics(self) -> int:
        return int(self.mics_m.shape[0])

    @property
    def aperture_m(self) -> float:
        d = self.mics_m[:, None, :] - self.mics_m[None, :, :]
        return float(np.sqrt((d**2).sum(-1)).max())

    @property
    def has_elevation(self) -> bool:
        """True when the microphones span height (not coplanar with a horizontal plane): elevation is measured."""
        return float(np.ptp(self.mics_m[:, 2])) > PLANAR_TOL_M

    def to_json(self) -> dict:
        return {"id": self.id, "lat": self.lat, "lon": self.lon, "alt_m": self.alt_m,
                "sample_rate_hz": self.sample_rate_hz, "sound_speed_mps": self.sound_speed_mps,
                "mics_m": [[round(float(v), 6) for v in m] for m in self.mics_m]}


def _number(path: str, doc: dict, key: str, lo: float, hi: float, required: bool = True,
            default: float | None = None) -> float:
    if key not in doc:
        if required:
            raise FormatError(path, "missing required field", field=key)
        return float(default)  # type: ignore[arg-type]
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FormatError(path, f"must be a finite number, got {v!r}", field=key)
    if not lo <= v <= hi:
        raise FormatError(path, f"{v} is outside [{lo}, {hi}]", field=key)
    return float(v)


def parse_array(doc: object, path: str = "ARRAY.json") -> ArrayConfig:
    """Validate a decoded ARRAY.json document; raises FormatError naming the field."""
    if not isinstance(doc, dict):
        raise FormatError(path, "must be a JSON object")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise FormatError(path, f"unknown field (allowed: {', '.join(sorted(_KEYS))})", field=unknown[0])
    sid = doc.get("id")
    if not isinstance(sid, str) or not sid or len(sid) > 128 or any(c in sid for c in "/+#\0\n"):
        raise FormatError(path, "must be a non-empty string (max 128 chars, no '/', '+', '#')", field="id")
    lat = _number(path, doc, "lat", -90, 90)
    lon = _number(path, doc, "lon", -180, 180)
    alt = _number(path, doc, "alt_m", -500, 20_000)
    fs = _number(path, doc, "sample_rate_hz", 4000, 384_000)
    if fs != int(fs):
        raise FormatError(path, "must be an integer number of samples per second", field="sample_rate_hz")
    c = _number(path, doc, "sound_speed_mps", 300, 400, required=False, default=DEFAULT_SOUND_SPEED_MPS)
    mics = doc.get("mics_m")
    if not isinstance(mics, list) or not 3 <= len(mics) <= MAX_MICS:
        raise FormatError(path, f"must be a list of 3 to {MAX_MICS} [e, n, u] positions in metres", field="mics_m")
    for i, m in enumerate(mics):
        if (not isinstance(m, list) or len(m) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in m)):
            raise FormatError(path, f"microphone {i} must be [e, n, u] finite numbers in metres", field="mics_m")
    arr = np.asarray(mics, dtype=float)
    d = np.sqrt(((arr[:, None, :] - arr[None, :, :]) ** 2).sum(-1))
    if d.max() > MAX_APERTURE_M:
        raise FormatError(path, f"aperture {d.max():.2f} m exceeds {MAX_APERTURE_M} m (positions are in metres)",
                          field="mics_m")
    if d.max() < MIN_APERTURE_M:
        raise FormatError(path, f"aperture {d.max() * 1000:.1f} mm is too small to measure a bearing",
                          field="mics_m")
    np.fill_diagonal(d, np.inf)
    if d.min() < 1e-4:
        raise FormatError(path, "two microphones share a position", field="mics_m")
    # a bearing needs horizontal extent in two directions: the horizontal positions must not be collinear
    h = arr[:, :2] - arr[:, :2].mean(0)
    sv = np.linalg.svd(h, compute_uv=False)
    if sv[-1] < 1e-3 * max(sv[0], 1e-9):
        raise FormatError(path, "microphones are collinear in the horizontal plane: the bearing would be "
                                "ambiguous (front/back)", field="mics_m")
    return ArrayConfig(id=sid, lat=lat, lon=lon, alt_m=alt, sample_rate_hz=int(fs), mics_m=arr, sound_speed_mps=c)


def load_array(path: str | Path) -> ArrayConfig:
    """Read and validate ARRAY.json."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(str(p), "file not found") from None
    except UnicodeDecodeError:
        raise FormatError(str(p), "not UTF-8 text") from None
    if len(text) > 1 << 20:
        raise FormatError(str(p), "file larger than 1 MiB")
    try:
        doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not allowed")))
    except ValueError as exc:
        raise FormatError(str(p), f"invalid JSON: {exc}") from None
    return parse_array(doc, str(p))


def preset_names() -> list[str]:
    """Names of the shipped array presets (files ``skytrace/node/arrays/NAME.json``)."""
    return sorted(f.name[:-5] for f in resources.files("skytrace.node.arrays").iterdir() if f.name.endswith(".json"))


def load_preset(name: str, node_id: str | None = None, lat: float | None = None, lon: float | None = None,
                alt_m: float | None = None) -> ArrayConfig:
    """A shipped preset, optionally placed: ``load_preset("circle4-32mm", "node-17", 50.45, 30.52, 180)``."""
    if name not in preset_names():
        raise FormatError(name, f"unknown array preset (known: {', '.join(preset_names())})")
    doc = json.loads(resources.files("skytrace.node.arrays").joinpath(f"{name}.json").read_text())
    for key, val in (("id", node_id), ("lat", lat), ("lon", lon), ("alt_m", alt_m)):
        if val is not None:
            doc[key] = val
    return parse_array(doc, f"preset {name}")


def circle_array(n: int, radius_m: float, first_az_deg: float = 0.0) -> np.ndarray:
    """(n, 3) ENU positions on a horizontal circle; mic 0 at azimuth ``first_az_deg`` (from north, clockwise)."""
    az = np.radians(first_az_deg + 360.0 * np.arange(n) / n)
    return np.column_stack([radius_m * np.sin(az), radius_m * np.cos(az), np.zeros(n)])
