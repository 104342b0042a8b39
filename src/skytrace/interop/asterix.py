"""EUROCONTROL ASTERIX: radar plots in (CAT048 monoradar target reports, CAT015 non-cooperative surveillance target
reports), system tracks out (CAT062 SDPS track messages).

The wire format (FSPEC, UAP, item encodings and LSBs) is libasterix's (EUROCONTROL specifications generated from
the asterix-specs definitions; editions CAT048 1.32, CAT015 1.2, CAT062 1.21): skytrace only maps items to its own
records. Input framing: raw concatenated data blocks (as in a UDP payload or a ``.ast`` file) or the "final"
recording format (per record: 2-byte byte count including the 8-byte header and 4 bytes of 0xA5 padding, board and
line number, recording day, 3-byte time of day in 10 ms, then the data block).

Time: ASTERIX carries the time of day (UTC, LSB 1/128 s) only; the date comes from the caller (``date``) and a
wrap past midnight (time of day falling by more than 12 h) moves to the next day.

CAT062 out, per track update: I062/010 SAC/SIC, I062/015 service, I062/070 time of track information, I062/105
WGS-84 position (LSB 180/2^25 deg, ~0.6 m of latitude), I062/185 Cartesian velocity (east/north, 0.25 m/s),
I062/040 track number, I062/080 track status (CNF tentative/confirmed, CST coasting, SRC = triangulation),
I062/130 geometric altitude (6.25 ft), I062/220 rate of climb (6.25 ft/min), I062/500 APC (position accuracy, 0.5 m).
"""

from __future__ import annotations

import math
import re
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from skytrace.errors import FormatError
from skytrace.interop import require
from skytrace.io.identity import MANNED
from skytrace.model import Detection, Sensor

FT_M = 0.3048
NM_M = 1852.0
EARTH_RADIUS_M = 6_371_000.0
DAY_S = 86400.0
MAX_DATABLOCK_BYTES = 65535
MAX_INPUT_BYTES = 1 << 30
FINAL_HEADER = 8
FINAL_PADDING = b"\xa5\xa5\xa5\xa5"


def _gen():
    return require("asterix.generated")


def _base():
    return require("asterix.base")


# --------------------------------------------------------------------------------------------------------- framing
def split_datablocks(data: bytes, source: str = "<asterix>") -> list[tuple[int, bytes]]:
    """(category, whole data block) of raw concatenated data blocks; strict about lengths."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            raise FormatError(source, f"truncated data block header at byte {pos} ({len(data) - pos} bytes left)")
        cat = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 3], "big")
        if length < 3:
            raise FormatError(source, f"data block at byte {pos} declares length {length} (< 3)")
        if pos + length > len(data):
            raise FormatError(source, f"truncated data block at byte {pos}: declares {length} bytes, "
                                      f"{len(data) - pos} left")
        out.append((cat, data[pos:pos + length]))
        pos += length
    return out


def split_final(data: bytes, source: str = "<asterix>") -> list[tuple[int, bytes]]:
    """Data blocks of a "final" recording (see module docstring)."""
    out = []
    pos = 0
    n = 0
    while pos < len(data):
        n += 1
        if len(data) - pos < FINAL_HEADER:
            raise FormatError(source, f"truncated final record {n} header at byte {pos}")
        count = int.from_bytes(data[pos:pos + 2], "big")
        if count <= FINAL_HEADER + len(FINAL_PADDING) or pos + count > len(data):
            raise FormatError(source, f"final record {n} at byte {pos}: bad byte count {count}")
        payload = data[pos + FINAL_HEADER:pos + count - len(FINAL_PADDING)]
        if data[pos + count - 4:pos + count] != FINAL_PADDING:
            raise FormatError(source, f"final record {n} at byte {pos}: missing A5A5A5A5 padding")
        out.extend(split_datablocks(payload, f"{source}, final record {n}"))
        pos += count
    return out


def detect_framing(data: bytes) -> str:
    """``raw`` when the bytes parse as concatenated data blocks, else ``final`` when they parse as final records."""
    try:
        split_datablocks(data)
        return "raw"
    except FormatError:
        pass
    try:
        split_final(data)
        return "final"
    except FormatError:
        return "raw"  # report the raw-format error, the common case


def _records(cat_spec, block: bytes, source: str) -> list:
    b = _base()
    try:
        raw = b.RawDatablock.parse(b.Bits.from_bytes(block))
        if isinstance(raw, ValueError):
            raise FormatError(source, f"bad data block: {raw}")
        recs = []
        for db in raw:
            parsed = cat_spec.cv_uap.parse(db.get_raw_records())
            if isinstance(parsed, ValueError):
                raise FormatError(source, f"bad record in CAT{cat_spec.cv_category:03d} data block: {parsed}")
            recs.extend(parsed)
        return recs
    except FormatError:
        raise
    except Exception as exc:  # hostile bytes may trip the library in other ways: still one clear line
        raise FormatError(source, f"undecodable CAT{cat_spec.cv_category:03d} data block: {exc!r}") from None


def _subitem(item, path: tuple[str, ...]):
    """A (nested) subitem of a libasterix item, or None when it or any level is absent."""
    v = item
    for name in path:
        if v is None:
            return None
        v = v.variation.get_item(name)
    return v


def _q(item, path: tuple[str, ...], unit: str) -> float | None:
    """Quantity of a (nested) subitem in ``unit``, or None when absent."""
    v = _subitem(item, path)
    return None if v is None else float(v.variation.content.as_quantity(unit))


def _uint(item, path: tuple[str, ...] = ()) -> int | None:
    """Raw unsigned value of a (nested) subitem, or None when absent."""
    v = _subitem(item, path)
    return None if v is None else int(v.variation.content.as_uint())


# ------------------------------------------------------------------------------------------------------- time of day
class NearestDayClock:
    """Live: a time of day is taken on the UTC day that puts it nearest to ``now()`` (a report from just before
    midnight, received just after, stays on its own day)."""

    def __init__(self, now: Callable[[], float]):
        self.now = now

    def __call__(self, tod_s: float) -> float:
        now = self.now()
        t = math.floor(now / DAY_S) * DAY_S + tod_s
        if t - now > DAY_S / 2:
            t -= DAY_S
        elif now - t > DAY_S / 2:
            t += DAY_S
        return t


class DayClock:
    """Turns ASTERIX times of day into UNIX times, starting on ``day`` and rolling over at midnight."""

    def __init__(self, day: date):
        self.midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        self.last_tod: float | None = None

    def __call__(self, tod_s: float) -> float:
        if self.last_tod is not None and tod_s < self.last_tod - DAY_S / 2:
            self.midnight += DAY_S
        elif self.last_tod is not None and tod_s > self.last_tod + DAY_S / 2:
            self.midnight -= DAY_S  # a late report from before midnight
        self.last_tod = tod_s
        return self.midnight + tod_s


# ------------------------------------------------------------------------------------------------------------ import
@dataclass
class RadarSite:
    lat: float
    lon: float
    alt_m: float


@dataclass
class RadarImportConfig:
    """Options of CAT048/CAT015 import. Sigmas are used when the reports do not carry their own."""

    site: RadarSite | None = None
    day: date | None = None
    bearing_sigma_deg: float = 0.15
    range_sigma_m: float = 60.0
    elevation_sigma_deg: float = 1.0
    pos_sigma_m: float = 50.0
    assume_alt_m: float | None = None  # height of 2-D plots (no I048/110 or I048/090); None: skip them
    site_of: Callable[[str], RadarSite | None] | None = None  # live: each radar's site by its sensor id (sensors.json)
    clock: Callable[[float], float] | None = None  # time of day -> UNIX time; default a DayClock on ``day``


@dataclass
class ImportResult:
    """Detections plus the sensors they reference, and counts of what was skipped and why."""

    detections: list[Detection] = field(default_factory=list)
    sensors: dict[str, Sensor] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{len(self.detections)} detections from {len(self.sensors)} sensors"
        if self.skipped:
            s += "; skipped: " + ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
        return s


def elevation_from_height(site: RadarSite, slant_m: float, alt_m: float, azimuth_deg: float = 0.0) -> float | None:
    """Elevation (deg) at which a target of height ``alt_m`` (WGS-84) lies at slant range ``slant_m`` (no
    refraction); None when no elevation puts it there. See :func:`elevations_from_heights`."""
    el = elevations_from_heights(site, np.array([slant_m]), np.array([alt_m]), np.array([azimuth_deg]))[0]
    return None if not np.isfinite(el) else float(el)


def elevations_from_heights(site: RadarSite, slant_m: np.ndarray, alt_m: np.ndarray, azimuth_deg: np.ndarray
                            ) -> np.ndarray:
    """Elevations (deg) of many plots of one radar, vectorised: a spherical-Earth start refined by Newton steps on
    the ellipsoid (skytrace.geo), to < 1 cm; NaN where the height is impossible at the range."""
    from skytrace import geo

    slant = np.asarray(slant_m, dtype=float)
    alt = np.asarray(alt_m, dtype=float)
    rs = EARTH_RADIUS_M + site.alt_m
    rt = EARTH_RADIUS_M + alt
    s = (rt * rt - rs * rs - slant * slant) / (2.0 * slant * rs)
    ok = np.abs(s) <= 1.0
    el = np.where(ok, np.arcsin(np.clip(s, -1.0, 1.0)), np.nan)
    az = np.radians(np.asarray(azimuth_deg, dtype=float))
    todo = ok.copy()
    for _ in range(4):
        if not todo.any():
            break
        ce, se = np.cos(el[todo]), np.sin(el[todo])
        r = slant[todo]
        _, _, h = geo.enu_to_geodetic(r * ce * np.sin(az[todo]), r * ce * np.cos(az[todo]), r * se,
                                      site.lat, site.lon, site.alt_m)
        err = np.asarray(h, dtype=float) - alt[todo]
        step = np.abs(err) >= 0.005
        idx = np.flatnonzero(todo)
        el[idx[step]] = np.clip(el[idx[step]] - err[step] / (r[step] * np.maximum(ce[step], 0.05)),
                                -math.pi / 2, math.pi / 2)
        todo[idx[~step]] = False
    return np.degrees(el)


def _radar_sensor(sid: str, site: RadarSite, cfg: RadarImportConfig, bearing_sigma=None, range_sigma=None,
                  elevation_sigma=None) -> Sensor:
    return Sensor(id=sid, kind="radar", lat=site.lat, lon=site.lon, alt_m=site.alt_m,
                  bearing_sigma_deg=bearing_sigma or cfg.bearing_sigma_deg,
                  range_sigma_m=range_sigma or cfg.range_sigma_m,
                  elevation_sigma_deg=elevation_sigma or cfg.elevation_sigma_deg)


def _require_site(cfg: RadarImportConfig, sid: str, seen: dict, source: str) -> RadarSite:
    if cfg.site_of is not None:
        site = cfg.site_of(sid)
        if site is None:
            raise FormatError(source, f"radar {sid} is not a radar of sensors.json (declare it there, with its "
                                      "position, under this id)")
        return site
    if cfg.site is None:
        raise FormatError(source, f"radar {sid} reports polar plots; give its position with --site LAT,LON,ALT_M")
    seen.setdefault("radars", set()).add(sid)
    if len(seen["radars"]) > 1:
        raise FormatError(source, f"the file holds several radars ({', '.join(sorted(seen['radars']))}) but "
                                  "--site gives one position; split the file by SAC/SIC")
    return cfg.site


def _category_records(blocks: Iterable[tuple[int, bytes]], C, res: ImportResult, source: str) -> Iterator:
    """Records of the data blocks of category ``C``; blocks of other categories are counted and skipped."""
    for cat, block in blocks:
        if cat != C.cv_category:
            res.skipped[f"CAT{cat:03d} data blocks (not CAT{C.cv_category:03d})"] += 1
            continue
        yield from _records(C, block, source)


def decode_cat048(blocks: Iterable[tuple[int, bytes]], cfg: RadarImportConfig, source: str = "<cat048>"
                  ) -> ImportResult:
    """CAT048 target reports -> radar detections (bearing, elevation, slant range) of the radar at ``cfg.site``.

    Elevation comes from the 3-D height (I048/110), else from the Mode C flight level (I048/090, pressure altitude
    taken as height), else from ``cfg.assume_alt_m``; plots with none are skipped and counted. A Mode S address
    (I048/220) tags the report as a cooperative manned aircraft (``target_id`` icao:..., class manned).
    """
    C = _gen().Cat_048_1_32
    res = ImportResult()
    clock = cfg.clock or DayClock(cfg.day or datetime.now(UTC).date())
    seen: dict = {}
    plots: dict[str, tuple[RadarSite, list]] = {}  # radar -> its site and plots (t, azimuth, range, height, address)
    for rec in _category_records(blocks, C, res, source):
        i010 = rec.get_item("010")
        pol = rec.get_item("040")
        tod = _q(rec.get_item("140"), (), "s")
        if i010 is None or pol is None or tod is None:
            res.skipped["records without I048/010, I048/040 or I048/140"] += 1
            continue
        sid = f"cat048-{_uint(i010, ('SAC',))}-{_uint(i010, ('SIC',))}"
        site = _require_site(cfg, sid, seen, source)
        rho_m = _q(pol, ("RHO",), "NM") * NM_M
        theta = _q(pol, ("THETA",), "°") % 360.0
        if rho_m <= 0:
            res.skipped["plots at zero range"] += 1
            continue
        h3d = _q(rec.get_item("110"), ("3DH",), "ft")
        fl = _q(rec.get_item("090"), ("FL",), "FL")
        alt = h3d * FT_M if h3d is not None else (fl * 100 * FT_M if fl is not None else cfg.assume_alt_m)
        if alt is None:
            res.skipped["2-D plots without height (give --assume-alt-m)"] += 1
            continue
        plots.setdefault(sid, (site, []))[1].append((clock(tod), theta, rho_m, alt, _uint(rec.get_item("220"))))
    for sid, (site, rows) in plots.items():  # the elevations of each radar's plots in one vectorised solve
        t, theta, rho, alt = (np.array([r[k] for r in rows], dtype=float) for k in range(4))
        els = elevations_from_heights(site, rho, alt, theta)
        for (_t, _th, _r, _a, addr), ti, th, rr, el in zip(rows, t, theta, rho, els, strict=True):
            if not np.isfinite(el):
                res.skipped["plots whose height is impossible at their range"] += 1
                continue
            res.sensors.setdefault(sid, _radar_sensor(sid, site, cfg))
            res.detections.append(Detection(t=float(ti), sensor=sid, bearing_deg=float(th), elevation_deg=float(el),
                                            range_m=float(rr), target_id=f"icao:{addr:06x}" if addr is not None
                                            else None, cls=MANNED if addr is not None else None))
    return res


def decode_cat015(blocks: Iterable[tuple[int, bytes]], cfg: RadarImportConfig, source: str = "<cat015>"
                  ) -> ImportResult:
    """CAT015 target reports -> detections.

    With ``cfg.site`` and range + azimuth (I015/625, I015/627) a report becomes a radar detection (elevation from
    I015/628, else from the geometric height I015/601); otherwise a WGS-84 position (I015/600 P84, sigma from HPP,
    height from I015/601) becomes a position detection. Standard deviations carried by the reports are used.
    """
    C = _gen().Cat_015_1_2
    res = ImportResult()
    clock = cfg.clock or DayClock(cfg.day or datetime.now(UTC).date())
    seen: dict = {}
    for rec in _category_records(blocks, C, res, source):
        i010 = rec.get_item("010")
        tod = _q(rec.get_item("145"), (), "s")
        if i010 is None or tod is None:
            res.skipped["records without I015/010 or I015/145"] += 1
            continue
        base = f"cat015-{_uint(i010, ('SAC',))}-{_uint(i010, ('SIC',))}"
        t = clock(tod)
        rng = rec.get_item("625")
        az = rec.get_item("627")
        el_item = rec.get_item("628")
        gh = _q(rec.get_item("601"), ("GH",), "m")
        r_m = _q(rng, ("R",), "m")
        az_deg = _q(az, ("AZ",), "°")
        known = cfg.site is not None or (cfg.site_of is not None and cfg.site_of(base) is not None)
        if known and r_m is not None and az_deg is not None and r_m > 0:
            site = _require_site(cfg, base, seen, source)
            el = _q(el_item, ("EL",), "°")
            if el is None and gh is not None:
                el = elevation_from_height(site, r_m, gh, az_deg)
            if el is None and cfg.assume_alt_m is not None:
                el = elevation_from_height(site, r_m, cfg.assume_alt_m, az_deg)
            if el is None:
                res.skipped["range/azimuth reports without elevation or height"] += 1
                continue
            res.sensors.setdefault(base, _radar_sensor(
                base, site, cfg, _positive(_q(az, ("SDASZ",), "°")), _positive(_q(rng, ("SDR",), "m")),
                _positive(_q(el_item, ("SDEL",), "°"))))
            res.detections.append(Detection(t=t, sensor=base, bearing_deg=az_deg % 360.0,
                                            elevation_deg=max(-90.0, min(90.0, el)), range_m=r_m))
            continue
        hpi = rec.get_item("600")
        lat = _q(hpi, ("P84", "LATITUDE"), "°")
        lon = _q(hpi, ("P84", "LONGITUDE"), "°")
        if lat is None or lon is None:
            res.skipped["reports without a WGS-84 position (give --site for range/azimuth)"] += 1
            continue
        sx = _q(hpi, ("HPP", "SDHPX"), "m")
        sy = _q(hpi, ("HPP", "SDHPY"), "m")
        sigma = math.hypot(sx, sy) if sx is not None and sy is not None and (sx or sy) else cfg.pos_sigma_m
        sid = f"{base}-pos"
        res.sensors.setdefault(sid, Sensor(id=sid, kind="position"))
        res.detections.append(Detection(t=t, sensor=sid, lat=lat, lon=lon, alt_m=gh, pos_sigma_m=sigma,
                                        alt_sigma_m=_positive(_q(rec.get_item("601"), ("SDGH",), "m"))))
    return res


def _positive(x: float | None) -> float | None:
    return x if x is not None and x > 0 and math.isfinite(x) else None


# ------------------------------------------------------------------------------------------------------ CAT062 out
_TRACK_DIGITS = re.compile(r"(\d+)$")


class TrackNumbers:
    """Stable 16-bit I062/040 track numbers for skytrace track ids (the digits of ``T000123`` when free)."""

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.used: set[int] = set()

    def __call__(self, track: str) -> int:
        n = self.by_id.get(track)
        if n is not None:
            return n
        m = _TRACK_DIGITS.search(track)
        n = int(m.group(1)) % 65536 if m else 0
        if len(self.used) >= 65536:
            raise FormatError("<cat062>", "more than 65536 tracks: I062/040 track numbers exhausted")
        while n in self.used:
            n = (n + 1) % 65536
        self.by_id[track] = n
        self.used.add(n)
        return n


@dataclass
class Cat062Config:
    sac: int = 0
    sic: int = 1
    service_id: int = 1
    max_records_per_block: int = 40  # keeps a data block under ~1.5 kB: one UDP datagram, no fragmentation


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def cat062_record(C, s, track_number: int, cfg: Cat062Config):
    """One CAT062 record (libasterix object) of a track point (skytrace.model.TrackPoint)."""
    tod = s.t % DAY_S
    coasting = s.status == "coasting"
    tentative = s.status == "tentative"
    status: tuple = ((0, 0, 1, ("SRC", 3), ("CNF", 1 if tentative else 0), None),)
    if coasting:  # CST is in the fourth extent
        status = (status[0], (0, 0, 0, 0, 0, 0, 0, None), (0, 0, 0, 0, 0, None), (("CST", 1), 0, 0, 0, 0, 0, 0, None))
    items = {
        "010": (("SAC", cfg.sac), ("SIC", cfg.sic)),
        "015": cfg.service_id,
        "070": (tod, "s"),
        "105": (("LAT", (s.lat, "°")), ("LON", (s.lon if s.lon < 180.0 else s.lon - 360.0, "°"))),
        "185": (("VX", (_clamp(s.ve, -8192.0, 8191.75), "m/s")), ("VY", (_clamp(s.vn, -8192.0, 8191.75), "m/s"))),
        "040": track_number,
        "080": status,
        "130": (_clamp(s.alt_m / FT_M, -1500.0, 150000.0), "ft"),
        "220": (_clamp(s.vu / FT_M * 60.0, -204800.0, 204793.75), "ft/min"),
    }
    sig_axis = _clamp(s.pos_sigma_m / math.sqrt(2.0), 0.0, 8191.5)
    apc = {"APC": (("X", (sig_axis, "m")), ("Y", (sig_axis, "m")))}
    items["500"] = apc
    return C.cv_record.create(items)


def encode_cat062(states: Iterable, cfg: Cat062Config | None = None, numbers: TrackNumbers | None = None
                  ) -> Iterator[bytes]:
    """CAT062 data blocks (bytes) of track states, at most ``cfg.max_records_per_block`` records each."""
    cfg = cfg or Cat062Config()
    numbers = numbers or TrackNumbers()
    C = _gen().Cat_062_1_21
    batch = []
    for s in states:
        batch.append(cat062_record(C, s, numbers(s.track), cfg))
        if len(batch) >= cfg.max_records_per_block:
            yield C.create(batch).unparse().to_bytes()
            batch = []
    if batch:
        yield C.create(batch).unparse().to_bytes()


def decode_cat062(data: bytes, source: str = "<cat062>") -> list[dict]:
    """CAT062 data blocks -> dicts (sac, sic, tod_s, track_number, lat, lon, ve, vn, alt_m, vu, sigma_x_m,
    sigma_y_m, confirmed, coasting); for round trips and for tools that consume skytrace's CAT062."""
    C = _gen().Cat_062_1_21
    out = []
    for cat, block in split_datablocks(data, source):
        if cat != 62:
            raise FormatError(source, f"CAT{cat:03d} data block where CAT062 was expected")
        for rec in _records(C, block, source):
            i105 = rec.get_item("105")
            i010 = rec.get_item("010")
            i080 = rec.get_item("080")
            d = {
                "sac": _uint(i010, ("SAC",)), "sic": _uint(i010, ("SIC",)),
                "tod_s": _q(rec.get_item("070"), (), "s"), "track_number": _uint(rec.get_item("040")),
                "lat": _q(i105, ("LAT",), "°"), "lon": _q(i105, ("LON",), "°"),
                "ve": _q(rec.get_item("185"), ("VX",), "m/s"), "vn": _q(rec.get_item("185"), ("VY",), "m/s"),
                "alt_m": (_q(rec.get_item("130"), (), "ft") or 0.0) * FT_M if rec.get_item("130") else None,
                "vu": (_q(rec.get_item("220"), (), "ft/min") or 0.0) * FT_M / 60.0 if rec.get_item("220") else None,
                "sigma_x_m": _q(rec.get_item("500"), ("APC", "X"), "m"),
                "sigma_y_m": _q(rec.get_item("500"), ("APC", "Y"), "m"),
                "confirmed": _uint(i080, ("CNF",)) == 0 if i080 is not None else None,
                "coasting": _uint(i080, ("CST",)) == 1 if i080 is not None else None,
            }
            out.append(d)
    return out


@dataclass
class Cat062SinkConfig:
    """Where to send CAT062 over UDP (unicast or multicast); defaults to loopback."""

    host: str = "127.0.0.1"
    port: int = 8600
    multicast_ttl: int = 1
    asterix: Cat062Config = field(default_factory=Cat062Config)
    max_queue: int = 1000


class Cat062UdpSink:
    """Pipeline sink: each step's tracks as CAT062 data blocks, one UDP datagram per block, sent on a background
    thread (``on_step`` only queues; it never blocks on the network)."""

    def __init__(self, config: Cat062SinkConfig | None = None):
        from skytrace.interop.sender import BackgroundSender

        self.config = config or Cat062SinkConfig()
        self.numbers = TrackNumbers()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.config.multicast_ttl)
        sock, addr = self._sock, (self.config.host, self.config.port)

        cfg, numbers = self.config.asterix, self.numbers

        class _Sender(BackgroundSender):
            def deliver(self, item: object) -> None:
                assert isinstance(item, list)
                for block in encode_cat062(item, cfg, numbers):  # encoded here, off the caller's thread
                    sock.sendto(block, addr)

            def shutdown(self) -> None:
                sock.close()  # on the sender thread, after the last datagram

        self._sender = _Sender("cat062-sink", self.config.max_queue)
        self.stats = self._sender.stats

    def on_step(self, result) -> None:
        from skytrace.interop.cot import snapshot_states

        self._sender.submit(snapshot_states(result))

    def close(self, timeout_s: float = 60.0) -> None:
        """Send what is queued (waiting up to ``timeout_s``), then release the socket."""
        self._sender.close(timeout_s)
