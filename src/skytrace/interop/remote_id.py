"""Remote ID in: ASTM F3411-22a / ASD-STAN EN 4709-002 broadcast messages (the Open Drone ID message set).

Each message is 25 bytes: a header byte (message type in the high nibble, protocol version in the low one) and 24
bytes of payload, little-endian. Decoded here: Basic ID (0x0), Location/Vector (0x1), Self-ID (0x3, skipped),
System (0x4), Operator ID (0x5) and Message Pack (0xF: a size byte (25), a count byte (1-9) and that many
messages). Authentication (0x2) pages are counted and skipped. No maintained Python decoder of the message set was
found on PyPI (the reference implementation, opendroneid-core-c, is C), hence this careful parser; every field is
range-checked and every malformed frame is reported, never guessed.

Input file: one captured frame per line, hex (spaces, colons allowed), optionally preceded by the receive time
(UNIX s) and a source key (the transmitter's MAC address, which ties single messages of one drone together):
``[T [SOURCE]] HEX``. Location messages carry only the tenths of seconds since the full hour: the hour comes from
the receive time, else from the last System message (whose time stamp is absolute), else the frame is refused.

Detections: one ``position`` sensor per drone (``rid:<UAS ID>``, or ``rid:src:<SOURCE>`` until a Basic ID names
it), ``target_id`` the same, ``class`` ``cooperative-uav``. Horizontal sigma = the 95 % accuracy bound / 2.45,
vertical = the bound / 1.96; altitude = geodetic (WGS-84), else pressure altitude.
"""

from __future__ import annotations

import math
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from skytrace.errors import FormatError
from skytrace.interop.asterix import ImportResult
from skytrace.io.identity import COOPERATIVE_UAV
from skytrace.model import Detection, Sensor

MSG_LEN = 25
BASIC_ID, LOCATION, AUTH, SELF_ID, SYSTEM, OPERATOR_ID, PACK = 0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0xF
MAX_PACK = 9
SYSTEM_EPOCH = 1546300800  # 2019-01-01T00:00:00Z, the epoch of System message time stamps
MAX_LINE_CHARS = 4096
# 95 % bounds (m) of the accuracy enums; index 0 = unknown
H_ACC_M = [math.inf, 18520.0, 7408.0, 3704.0, 1852.0, 926.0, 555.6, 185.2, 92.6, 30.0, 10.0, 3.0, 1.0]
V_ACC_M = [math.inf, 150.0, 45.0, 25.0, 10.0, 3.0, 1.0]
ID_TYPES = {0: "none", 1: "serial", 2: "caa", 3: "utm", 4: "session"}


class RemoteIdError(ValueError):
    """A frame that is not a valid F3411 message (wrong length, unknown type, out-of-range field)."""


def _alt(raw: int) -> float | None:
    """Altitude encoding: 0.5 m LSB, offset -1000 m; 0 means unknown."""
    return None if raw == 0 else raw * 0.5 - 1000.0


def _enc_alt(alt_m: float | None) -> int:
    if alt_m is None:
        return 0
    v = round((alt_m + 1000.0) / 0.5)
    if not 1 <= v <= 0xFFFF:
        raise RemoteIdError(f"altitude {alt_m} m is outside the encodable range [-999.5, 31767.5]")
    return v


def _text(b: bytes) -> str:
    s = b.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return "".join(c if c.isprintable() else "?" for c in s)


@dataclass
class BasicId:
    id_type: int
    ua_type: int
    uas_id: str


@dataclass
class Location:
    status: int
    height_type: int
    direction_deg: float | None
    speed_mps: float | None
    vspeed_mps: float | None
    lat: float | None
    lon: float | None
    alt_baro_m: float | None
    alt_geo_m: float | None
    height_m: float | None
    h_acc: int
    v_acc: int
    baro_acc: int
    speed_acc: int
    tenths_after_hour: int | None
    ts_acc: int


@dataclass
class System:
    operator_location_type: int
    operator_lat: float | None
    operator_lon: float | None
    area_count: int
    area_radius_m: float
    timestamp: float | None


@dataclass
class OperatorId:
    id_type: int
    operator_id: str


@dataclass
class Other:
    msg_type: int


Message = BasicId | Location | System | OperatorId | Other


def _latlon(raw: int, limit: float, name: str) -> float | None:
    if raw == 0:
        return None  # 0/0 is "no position" in F3411
    v = raw * 1e-7
    if abs(v) > limit:
        raise RemoteIdError(f"{name} {v} is out of range")
    return v


def decode_message(msg: bytes) -> Message:
    """One 25-byte message (not a pack)."""
    if len(msg) != MSG_LEN:
        raise RemoteIdError(f"message is {len(msg)} bytes, F3411 messages are {MSG_LEN}")
    mtype, version = msg[0] >> 4, msg[0] & 0x0F
    if version > 2:
        raise RemoteIdError(f"protocol version {version} is unknown (0-2)")
    if mtype == BASIC_ID:
        return BasicId(msg[1] >> 4, msg[1] & 0x0F, _text(msg[2:22]))
    if mtype == LOCATION:
        flags = msg[1]
        status, height_type, ew, mult = flags >> 4, (flags >> 2) & 1, (flags >> 1) & 1, flags & 1
        d = msg[2] + (180 if ew else 0)
        direction = None if d > 359 else float(d)
        spd = msg[3]
        speed = None if spd == 255 else (spd * 0.25 if not mult else spd * 0.75 + 255 * 0.25)
        vs = struct.unpack_from("<b", msg, 4)[0]
        vspeed = None if vs == 63 else vs * 0.5
        lat_raw, lon_raw = struct.unpack_from("<ii", msg, 5)
        baro, geo, height = struct.unpack_from("<HHH", msg, 13)
        ts = struct.unpack_from("<H", msg, 21)[0]
        if ts != 0xFFFF and ts > 36000:
            raise RemoteIdError(f"time stamp {ts} tenths of s is past the hour (max 36000)")
        lat = _latlon(lat_raw, 90.0, "latitude")
        lon = _latlon(lon_raw, 180.0, "longitude")
        return Location(status, height_type, direction, speed, vspeed, lat, lon,
                        _alt(baro), _alt(geo), _alt(height), msg[19] & 0x0F, msg[19] >> 4, msg[20] >> 4,
                        msg[20] & 0x0F, None if ts == 0xFFFF else ts, msg[23] & 0x0F)
    if mtype == SYSTEM:
        lat_raw, lon_raw = struct.unpack_from("<ii", msg, 2)
        count = struct.unpack_from("<H", msg, 10)[0]
        ts = struct.unpack_from("<I", msg, 20)[0]
        return System(msg[1] & 0x03, _latlon(lat_raw, 90.0, "operator latitude"),
                      _latlon(lon_raw, 180.0, "operator longitude"), count, msg[12] * 10.0,
                      float(SYSTEM_EPOCH + ts) if ts else None)
    if mtype == OPERATOR_ID:
        return OperatorId(msg[1], _text(msg[2:22]))
    if mtype in (AUTH, SELF_ID):
        return Other(mtype)
    if mtype == PACK:
        raise RemoteIdError("a message pack inside a message pack")
    raise RemoteIdError(f"message type 0x{mtype:X} is unknown")


def decode_frame(frame: bytes) -> list[Message]:
    """A single message or a Message Pack -> its messages."""
    if not frame:
        raise RemoteIdError("empty frame")
    if frame[0] >> 4 != PACK:
        return [decode_message(frame)]
    if len(frame) < 3:
        raise RemoteIdError("truncated message pack header")
    size, count = frame[1], frame[2]
    if size != MSG_LEN:
        raise RemoteIdError(f"message pack declares message size {size}, F3411 requires {MSG_LEN}")
    if not 1 <= count <= MAX_PACK:
        raise RemoteIdError(f"message pack declares {count} messages (1-{MAX_PACK})")
    if len(frame) < 3 + count * MSG_LEN:
        raise RemoteIdError(f"truncated message pack: {count} messages need {3 + count * MSG_LEN} bytes, "
                            f"got {len(frame)}")
    if len(frame) > 3 + MAX_PACK * MSG_LEN:
        raise RemoteIdError(f"message pack of {len(frame)} bytes is over the maximum {3 + MAX_PACK * MSG_LEN}")
    return [decode_message(frame[3 + k * MSG_LEN:3 + (k + 1) * MSG_LEN]) for k in range(count)]


# ---------------------------------------------------------------------------------------------------------- encode
def encode_basic_id(uas_id: str, id_type: int = 1, ua_type: int = 2, version: int = 2) -> bytes:
    raw = uas_id.encode("ascii")
    if len(raw) > 20:
        raise RemoteIdError("UAS ID is longer than 20 characters")
    return bytes([(BASIC_ID << 4) | version, (id_type << 4) | ua_type]) + raw.ljust(20, b"\x00") + b"\x00" * 3


def encode_location(lat: float, lon: float, alt_geo_m: float | None, tenths_after_hour: int | None,
                    direction_deg: float | None = None, speed_mps: float | None = None,
                    vspeed_mps: float | None = None, alt_baro_m: float | None = None, height_m: float | None = None,
                    status: int = 2, h_acc: int = 10, v_acc: int = 4, version: int = 2) -> bytes:
    d = 361 if direction_deg is None else round(direction_deg) % 360  # 361: unknown
    ew = 1 if d >= 180 else 0
    dir_byte = d - 180 * ew
    if speed_mps is None:
        mult, spd = 0, 255
    elif speed_mps <= 255 * 0.25:
        mult, spd = 0, round(speed_mps / 0.25)
    else:
        mult, spd = 1, min(254, round((speed_mps - 255 * 0.25) / 0.75))
    vs = 63 if vspeed_mps is None else max(-62, min(62, round(vspeed_mps / 0.5)))
    ts = 0xFFFF if tenths_after_hour is None else tenths_after_hour
    return (bytes([(LOCATION << 4) | version, (status << 4) | ew << 1 | mult, dir_byte, spd])
            + struct.pack("<b", vs) + struct.pack("<ii", round(lat * 1e7), round(lon * 1e7))
            + struct.pack("<HHH", _enc_alt(alt_baro_m), _enc_alt(alt_geo_m), _enc_alt(height_m))
            + bytes([(v_acc << 4) | h_acc, 0]) + struct.pack("<H", ts) + bytes([1, 0]))


def encode_system(timestamp: float, operator_lat: float = 0.0, operator_lon: float = 0.0, version: int = 2) -> bytes:
    return (bytes([(SYSTEM << 4) | version, 0x01]) + struct.pack("<ii", round(operator_lat * 1e7),
                                                                round(operator_lon * 1e7))
            + struct.pack("<H", 1) + bytes([0]) + b"\x00" * 4 + bytes([0]) + b"\x00\x00"
            + struct.pack("<I", int(timestamp) - SYSTEM_EPOCH) + b"\x00")


def encode_operator_id(operator_id: str, version: int = 2) -> bytes:
    raw = operator_id.encode("ascii")
    if len(raw) > 20:
        raise RemoteIdError("operator ID is longer than 20 characters")
    return bytes([(OPERATOR_ID << 4) | version, 0]) + raw.ljust(20, b"\x00") + b"\x00" * 3


def encode_pack(messages: list[bytes], version: int = 2) -> bytes:
    if not 1 <= len(messages) <= MAX_PACK or any(len(m) != MSG_LEN for m in messages):
        raise RemoteIdError("a message pack holds 1-9 messages of 25 bytes")
    return bytes([(PACK << 4) | version, MSG_LEN, len(messages)]) + b"".join(messages)


# ---------------------------------------------------------------------------------------------------------- import
_HEX_JUNK = re.compile(r"[\s:]")


@dataclass
class _Drone:
    uas_id: str | None = None
    system_time: float | None = None
    operator_id: str | None = None
    extra: dict = field(default_factory=dict)


def _parse_line(line: str) -> tuple[float | None, str, bytes]:
    """``[T [SOURCE]] HEX``: T is recognised by a decimal point or more than 8 characters (a hex byte has 2),
    SOURCE (after T only) by a length other than 2; the rest is the frame, whose bytes may be spaced or colon-separated.
    """
    parts = line.split()
    t, source = None, "-"
    if len(parts) >= 2 and ("." in parts[0] or len(parts[0]) > 8) and _is_number(parts[0]):
        t = float(parts[0])
        parts = parts[1:]
        if len(parts) >= 2 and len(parts[0]) != 2:
            source = parts[0]
            parts = parts[1:]
    hexpart = _HEX_JUNK.sub("", "".join(parts))
    try:
        frame = bytes.fromhex(hexpart)
    except ValueError:
        raise RemoteIdError("frame is not hexadecimal") from None
    if t is not None and not math.isfinite(t):
        raise RemoteIdError("receive time is not finite")
    return t, source, frame


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _resolve_time(tenths: int, ref: float) -> float:
    """Full time from tenths of seconds after the hour and a reference time within half an hour of it."""
    hour = math.floor(ref / 3600.0) * 3600.0
    t = hour + tenths / 10.0
    if t - ref > 1800:
        t -= 3600
    elif ref - t > 1800:
        t += 3600
    return t


class RemoteIdDecoder:
    """Stateful decoding of frames from many transmitters: each source's latest Basic ID (its UAS ID) and System
    time are kept to name and time its Location messages. At most ``max_sources`` sources are remembered (the
    least recently heard is forgotten first): a flood of forged source keys cannot grow memory without bound."""

    def __init__(self, max_sources: int = 10_000):
        self.drones: OrderedDict[str, _Drone] = OrderedDict()
        self.max_sources = max_sources

    def feed(self, res: ImportResult, t_rx: float | None, source: str, frame: bytes) -> None:
        """One frame (a message or a Message Pack) of ``source`` received at ``t_rx`` (None: unknown) into
        ``res``; a malformed frame raises RemoteIdError (nothing of it is used)."""
        msgs = decode_frame(frame)
        dr = self.drones.pop(source, None) or _Drone()
        self.drones[source] = dr
        while len(self.drones) > self.max_sources:
            self.drones.popitem(last=False)
        for m in msgs:  # identity first: a pack's Basic ID names the Location that follows it
            if isinstance(m, BasicId) and m.uas_id and (dr.uas_id is None or m.id_type in (1, 2)):
                dr.uas_id = m.uas_id
            elif isinstance(m, System) and m.timestamp is not None:
                dr.system_time = m.timestamp
            elif isinstance(m, OperatorId):
                dr.operator_id = m.operator_id
            elif isinstance(m, Other):
                res.skipped[f"message type 0x{m.msg_type:X} (not used)"] += 1
        for m in msgs:
            if isinstance(m, Location):
                _location(res, m, dr, source, t_rx)

    def feed_line(self, res: ImportResult, line: str, default_t: float | None = None,
                  default_source: str = "-") -> None:
        """One captured line ``[T [SOURCE]] HEX`` (see module docstring); blank and ``#`` lines are ignored.
        A line without a receive time (source key) takes ``default_t`` (``default_source``)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return
        if len(line) > MAX_LINE_CHARS:
            raise RemoteIdError(f"line of {len(line)} characters is over the {MAX_LINE_CHARS} limit")
        t_rx, source, frame = _parse_line(line)
        self.feed(res, default_t if t_rx is None else t_rx, default_source if source == "-" else source, frame)


def read_remote_id(path: str, on_error: str = "raise") -> ImportResult:
    """A file of captured frames (see module docstring) -> position detections tagged with the drones' IDs."""
    res = ImportResult()
    dec = RemoteIdDecoder()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            try:
                dec.feed_line(res, line)
            except (RemoteIdError, ValueError) as exc:
                if on_error == "raise":
                    raise FormatError(path, str(exc), n) from None
                res.skipped["bad frames"] += 1
    return res


def _location(res: ImportResult, m: Location, dr: _Drone, source: str, t_rx: float | None) -> None:
    if m.lat is None or m.lon is None:
        res.skipped["Location messages without a position"] += 1
        return
    if m.tenths_after_hour is None:
        if t_rx is None:
            raise RemoteIdError("Location message without a time stamp and no receive time")
        t = t_rx
    else:
        ref = t_rx if t_rx is not None else dr.system_time
        if ref is None:
            raise RemoteIdError("Location time stamp needs a receive time on the line or an earlier System message")
        t = _resolve_time(m.tenths_after_hour, ref)
    tid = f"rid:{dr.uas_id}" if dr.uas_id else f"rid:src:{source}"
    res.sensors.setdefault(tid, Sensor(id=tid, kind="position", trusted=True))  # may confirm its track alone
    h95 = H_ACC_M[m.h_acc] if m.h_acc < len(H_ACC_M) else math.inf
    v95 = V_ACC_M[m.v_acc] if m.v_acc < len(V_ACC_M) else math.inf
    alt = m.alt_geo_m if m.alt_geo_m is not None else m.alt_baro_m
    pos_sigma = h95 / 2.4477 if math.isfinite(h95) else 18520.0 / 2.4477
    alt_sigma = (v95 / 1.96 if math.isfinite(v95) else 150.0 / 1.96) if alt is not None else None
    res.detections.append(Detection(t=t, sensor=tid, lat=m.lat, lon=m.lon, alt_m=alt, pos_sigma_m=pos_sigma,
                                    alt_sigma_m=alt_sigma, cls=COOPERATIVE_UAV, class_conf=1.0, target_id=tid[:64]))
