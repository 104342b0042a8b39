"""ADS-B in: SBS (BaseStation text on port 30003, as dump1090/readsb emit it) and readsb/dump1090 ``aircraft.json``.

Every position report becomes a ``position`` detection of the sensor ``adsb:<24-bit ICAO address>`` (the
transponder on board is the sensor: docs/interop.md), tagged ``target_id`` ``icao:<address>`` and ``class``
``manned`` (``cooperative-uav`` for emitter category B6, unmanned aerial vehicle). Tracks built from them inherit
that identity and never raise a drone alert.

Units: SBS and aircraft.json give altitudes in feet, speeds in knots. Height: the geometric (GNSS, WGS-84)
altitude when the report has one (``alt_geom``), else the barometric altitude (pressure altitude, off from the
ellipsoid height by the local pressure and the geoid: hundreds of metres are possible), with ``alt_sigma_m`` 30 m
resp. 150 m. Horizontal sigma from NACp (its 95 % bound / 2.45) when given, else 30 m.

SBS time: dump1090/readsb write the generated date and time (fields 7-8) in the receiver's clock; skytrace reads
them as UTC (run the receiver in UTC). Reference: the BaseStation socket data format (Kinetic Avionics), readsb's
README-json.md.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from skytrace.errors import FormatError
from skytrace.interop import utc_ms
from skytrace.interop.asterix import ImportResult
from skytrace.io.identity import COOPERATIVE_UAV, MANNED
from skytrace.model import Detection, Sensor

FT_M = 0.3048
MAX_LINE_BYTES = 1 << 20
MAX_JSON_BYTES = 64 << 20
DEFAULT_POS_SIGMA_M = 30.0
GEOM_ALT_SIGMA_M = 30.0
BARO_ALT_SIGMA_M = 150.0
# NACp -> 95 % horizontal position bound (m), DO-260B; 0 = unknown
NACP_EPU_M = {1: 18520.0, 2: 7408.0, 3: 3704.0, 4: 1852.0, 5: 926.0, 6: 555.6, 7: 185.2, 8: 92.6, 9: 30.0,
              10: 10.0, 11: 3.0}
SIGMA_PER_95_2D = 2.4477  # radius of the 95 % circle of a circular 2-D Gaussian, in sigmas


def _hex_address(s: str) -> str:
    a = s.strip().lower().lstrip("~")  # readsb prefixes non-ICAO (TIS-B, anonymous) addresses with ~
    if not (1 <= len(a) <= 6) or any(c not in "0123456789abcdef" for c in a):
        raise ValueError(f"ICAO address {s!r} is not 1-6 hex digits")
    return a.zfill(6)


def _add(res: ImportResult, addr: str, t: float, lat: float, lon: float, alt_m: float | None, alt_sigma: float,
         pos_sigma: float, cls: str) -> None:
    sid = f"adsb:{addr}"
    res.sensors.setdefault(sid, Sensor(id=sid, kind="position", trusted=True))  # may confirm its track alone
    res.detections.append(Detection(t=t, sensor=sid, lat=lat, lon=lon, alt_m=alt_m,
                                    alt_sigma_m=alt_sigma if alt_m is not None else None, pos_sigma_m=pos_sigma,
                                    cls=cls, class_conf=1.0, target_id=f"icao:{addr}"))


def _float(s: str) -> float | None:
    s = s.strip()
    if not s:
        return None
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"{s!r} is not a finite number")
    return v


def _sbs_time(day: str, tod: str) -> float:
    text = f"{day.strip()} {tod.strip()}"
    for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"date/time {text[:40]!r} is not YYYY/MM/DD HH:MM:SS[.fff]")


def sbs_line(res: ImportResult, line: str) -> None:
    """One SBS line into ``res``: a ``MSG,3`` line with a position adds a detection, other lines are counted as
    skipped (with the reason); a malformed line raises ValueError (or IndexError)."""
    f = line.split(",")
    if f[0] not in ("MSG", "SEL", "ID", "AIR", "STA", "CLK"):
        raise ValueError(f"unknown message type {f[0][:20]!r}")
    if f[0] != "MSG":
        res.skipped[f"{f[0]} lines"] += 1
        return
    if len(f) < 16:
        raise ValueError(f"MSG line has {len(f)} fields, at least 16 needed")
    if f[1].strip() != "3":
        res.skipped[f"MSG,{f[1].strip()[:3]} lines (only MSG,3 carries a position)"] += 1
        return
    addr = _hex_address(f[4])
    lat, lon = _float(f[14]), _float(f[15])
    if lat is None or lon is None:
        res.skipped["MSG,3 lines without a position"] += 1
        return
    t = _sbs_time(f[6], f[7])
    alt_ft = _float(f[11])
    _add(res, addr, t, lat, lon, alt_ft * FT_M if alt_ft is not None else None, BARO_ALT_SIGMA_M,
         DEFAULT_POS_SIGMA_M, MANNED)


def read_sbs(path: str, on_error: str = "raise") -> ImportResult:
    """SBS lines -> detections; MSG type 3 (airborne position) lines make detections, others are counted.

    ``on_error="skip"`` skips and counts bad lines instead of stopping at the first one.
    """
    res = ImportResult()
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if len(raw) > MAX_LINE_BYTES:
                err = FormatError(path, "line over 1 MiB", n)
                if on_error == "raise":
                    raise err
                res.skipped["bad lines"] += 1
                continue
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                sbs_line(res, line)
            except (ValueError, IndexError) as exc:
                if on_error == "raise":
                    raise FormatError(path, str(exc), n) from None
                res.skipped["bad lines"] += 1
    return res


def write_sbs_position(addr: str, t: float, lat: float, lon: float, alt_ft: float | None, callsign: str = "") -> str:
    """One SBS ``MSG,3`` line (for replaying recorded flights to receivers' consumers and for tests)."""
    d, ms = utc_ms(t)
    ds, ts = d.strftime("%Y/%m/%d"), d.strftime("%H:%M:%S") + f".{ms:03d}"
    alt = "" if alt_ft is None else f"{alt_ft:.0f}"
    return (f"MSG,3,1,1,{addr.upper()},1,{ds},{ts},{ds},{ts},{callsign},{alt},,,{lat:.5f},{lon:.5f},,,0,0,0,0")


def _aircraft_polls(path: str) -> list[tuple[int, dict]]:
    """One aircraft.json document, or a recording of polls (one JSON document per line)."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise FormatError(path, "file over 64 MiB; record polls one per line instead")
    text = data.decode("utf-8", "replace")
    try:
        doc = json.loads(text, parse_constant=_no_constant)
        return [(1, doc)]
    except json.JSONDecodeError:
        pass
    except ValueError as exc:
        raise FormatError(path, str(exc)) from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line, parse_constant=_no_constant)))
        except ValueError as exc:
            raise FormatError(path, f"not JSON: {exc}", n) from None
    return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def read_aircraft_json(path: str, on_error: str = "raise") -> ImportResult:
    """readsb/dump1090 ``aircraft.json`` (one poll or one poll per line) -> detections.

    t = ``now - seen_pos``; a position repeated by successive polls (same aircraft, same t) is taken once.
    """
    res = ImportResult()
    last_t: dict[str, float] = {}
    for n, doc in _aircraft_polls(path):
        try:
            aircraft_poll(res, doc, last_t, on_error)
        except FormatError as exc:
            raise FormatError(path, exc.message, n if n > 1 else None) from None
    return res


def aircraft_poll(res: ImportResult, doc: object, last_t: dict[str, float], on_error: str = "raise") -> None:
    """One aircraft.json document into ``res``. ``last_t`` (ICAO address -> time of its newest position taken)
    makes a position repeated by a later poll count once; a malformed document raises FormatError, a malformed
    aircraft entry too (``on_error="raise"``) or is counted (``"skip"``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("aircraft"), list):
        raise FormatError("<aircraft.json>", "not an aircraft.json document (needs an `aircraft` list)")
    now = doc.get("now")
    if not isinstance(now, int | float) or isinstance(now, bool) or not math.isfinite(now):
        raise FormatError("<aircraft.json>", "`now` must be a number (UNIX seconds)")
    for k, ac in enumerate(doc["aircraft"]):
        try:
            if not isinstance(ac, dict):
                raise ValueError("aircraft entry is not an object")
            if "lat" not in ac or "lon" not in ac:
                res.skipped["aircraft without a position"] += 1
                continue
            addr = _hex_address(str(ac.get("hex", "")))
            lat, lon = float(ac["lat"]), float(ac["lon"])
            seen_pos = float(ac.get("seen_pos", 0.0))
            if not (math.isfinite(seen_pos) and 0 <= seen_pos <= 3600):
                raise ValueError(f"seen_pos {seen_pos} is outside [0, 3600] s")
            t = round(float(now) - seen_pos, 3)
            if t <= last_t.get(addr, -math.inf):
                res.skipped["positions repeated by later polls"] += 1
                continue
            geom = ac.get("alt_geom")
            baro = ac.get("alt_baro")
            if isinstance(geom, int | float) and not isinstance(geom, bool):
                alt_m, alt_sig = float(geom) * FT_M, GEOM_ALT_SIGMA_M
            elif isinstance(baro, int | float) and not isinstance(baro, bool):
                alt_m, alt_sig = float(baro) * FT_M, BARO_ALT_SIGMA_M
            else:  # "ground" or absent
                alt_m, alt_sig = None, BARO_ALT_SIGMA_M
            nacp = ac.get("nac_p")
            pos_sigma = (NACP_EPU_M[nacp] / SIGMA_PER_95_2D if isinstance(nacp, int) and nacp in NACP_EPU_M
                         else DEFAULT_POS_SIGMA_M)
            cls = COOPERATIVE_UAV if str(ac.get("category", "")).upper() == "B6" else MANNED
            _add(res, addr, t, lat, lon, alt_m, alt_sig, pos_sigma, cls)
            last_t[addr] = t
        except (ValueError, TypeError) as exc:
            if on_error == "raise":
                raise FormatError("<aircraft.json>", f"aircraft {k}: {exc}") from None
            res.skipped["bad aircraft entries"] += 1
