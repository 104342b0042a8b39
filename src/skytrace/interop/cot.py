"""Cursor on Target (CoT 2.0) events for tracks and alert zones, and a sink that streams them to TAK.

One ``<event>`` per track update (MITRE CoT base schema, Event-PUBLIC.xsd, version 2.0):

- ``uid`` ``skytrace.<track id>``: stable for the life of a track, so TAK moves one marker instead of adding new ones;
- ``type`` ``a-u-A`` (unknown air) until the track is classified: a hostile one-way attack UAV becomes
  ``a-h-A-M-F-Q`` (MIL-STD-2525 hostile / air / military / fixed wing / UAV), an ADS-B aircraft ``a-n-A-C``
  (neutral civil), a Remote ID drone ``a-n-A-C-F-q``;
- ``how`` ``m-f`` (machine, fused from several sensors);
- ``time``/``start`` = the track time, ``stale`` = a few update periods later, so a track that stops updating greys
  out in TAK instead of freezing;
- ``point``: WGS-84 lat/lon, ``hae`` = height above the ellipsoid (skytrace's ``alt_m``), ``ce`` = the track's
  horizontal position error (``pos_sigma_m``, the root of the trace of the horizontal covariance), ``le`` = the vertical
  1-sigma from the covariance when the tracks carry it, else 9999999 (CoT's "unknown");
- ``detail/track``: ``course`` (degrees true) and ``speed`` (m/s); ``detail/contact`` callsign = track id;
  ``detail/remarks`` status, class and cooperative identity.

Alert zones are drawn as freeform shapes (``u-d-f``, one ``detail/link`` point per vertex, red while alerted).
Reference: MITRE, "Cursor-on-Target Message Router User's Guide" and the CoT Event schema 2.0 (MITRE Case
#11-3895); the TAK shape conventions follow ATAK's drawing tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from skytrace.errors import FormatError
from skytrace.interop import utc_ms
from skytrace.interop.sender import BackgroundSender
from skytrace.io.identity import COOPERATIVE_UAV, MANNED
from skytrace.model import TrackPoint

UNKNOWN_AIR = "a-u-A"
SUSPECT_AIR = "a-s-A"  # affiliation suspect: a cooperative identity claim contradicted by the evidence
HOSTILE_UAV = "a-h-A-M-F-Q"
HOSTILE_CLASSES = frozenset({"shahed", "owa-uav", "uav", "drone", "hostile", "hostile-uav", "jet", "decoy"})
COT_TYPE_BY_CLASS = {MANNED: "a-n-A-C", COOPERATIVE_UAV: "a-n-A-C-F-q"}
UNKNOWN_ERROR = 9999999.0  # CoT's value for an unknown ce/le
MAX_EVENT_BYTES = 1 << 20


def cot_time(t: float) -> str:
    """CoT time stamp: ISO 8601 UTC with milliseconds, e.g. 2026-11-23T01:02:03.456Z."""
    d, ms = utc_ms(t)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def parse_cot_time(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def cot_type(cls: str | None) -> str:
    if cls is None:
        return UNKNOWN_AIR
    if cls in COT_TYPE_BY_CLASS:
        return COT_TYPE_BY_CLASS[cls]
    return HOSTILE_UAV if cls.lower() in HOSTILE_CLASSES else UNKNOWN_AIR


def _num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def alt_sigma_m(p) -> float | None:
    """Vertical 1-sigma of a track point from its ENU covariance (row-major 6x6), if it carries one."""
    cov = getattr(p, "covariance", None)
    if cov is not None and len(cov) == 36 and math.isfinite(cov[14]) and cov[14] >= 0:
        return math.sqrt(cov[14])
    return None


def track_event(s: TrackPoint, stale_s: float, uid_prefix: str = "skytrace") -> etree._Element:
    """The CoT event of one track update (a TrackPoint: tracks.jsonl's record, or a row of a TrackSnapshot)."""
    flag = getattr(s, "identity_flag", None)
    # a claimed identity the other evidence contradicts (a spoofed transponder): suspect air, never neutral
    ev = etree.Element("event", version="2.0", uid=f"{uid_prefix}.{s.track}",
                       type=SUSPECT_AIR if flag else cot_type(s.cls),
                       how="m-f", time=cot_time(s.t), start=cot_time(s.t), stale=cot_time(s.t + stale_s))
    le = alt_sigma_m(s)
    le = le if le is not None else UNKNOWN_ERROR
    etree.SubElement(ev, "point", lat=_num(s.lat, 7), lon=_num(s.lon, 7), hae=_num(s.alt_m, 1),
                     ce=_num(s.pos_sigma_m, 1), le=_num(le, 1))
    det = etree.SubElement(ev, "detail")
    course = math.degrees(math.atan2(s.ve, s.vn)) % 360.0
    etree.SubElement(det, "track", course=_num(course, 1), speed=_num(math.hypot(s.ve, s.vn), 2))
    etree.SubElement(det, "contact", callsign=s.track)
    remarks = f"skytrace track {s.track}: {s.status}"
    if s.cls:
        remarks += f", class {s.cls}"
    if s.target_id:
        remarks += f", {s.target_id}"
    if flag:
        remarks += f" (claimed identity not believed: {flag})"
    etree.SubElement(det, "remarks").text = remarks
    return ev


def _outline(geometry, max_vertices: int) -> list[tuple[float, float]]:
    """Exterior ring (lon, lat) of the largest polygon, simplified to at most ``max_vertices`` points."""
    import shapely

    poly = max(getattr(geometry, "geoms", [geometry]), key=lambda g: g.area)
    ring, tol = poly.exterior, 0.0
    while len(ring.coords) > max_vertices and tol < 1.0:
        tol = tol * 2 if tol else 0.001
        ring = shapely.simplify(poly, tol).exterior
    return [(x, y) for x, y, *_ in ring.coords]


def zone_event(zone, t: float, stale_s: float, alerted: bool, uid_prefix: str = "skytrace",
               max_vertices: int = 200) -> etree._Element:
    """A freeform shape (``u-d-f``) of an alert zone (skytrace.zones.Zone): red while alerted, else blue."""
    ev = etree.Element("event", version="2.0", uid=f"{uid_prefix}.zone.{zone.id}", type="u-d-f", how="h-e",
                       time=cot_time(t), start=cot_time(t), stale=cot_time(t + stale_s))
    ring = _outline(zone.geometry, max_vertices)
    c = zone.geometry.representative_point()
    etree.SubElement(ev, "point", lat=_num(c.y, 7), lon=_num(c.x, 7), hae="0.0", ce=_num(UNKNOWN_ERROR, 1),
                     le=_num(UNKNOWN_ERROR, 1))
    det = etree.SubElement(ev, "detail")
    for lon, lat in ring:
        etree.SubElement(det, "link", point=f"{lat:.6f},{lon:.6f}")
    etree.SubElement(det, "contact", callsign=f"{zone.name} ({'ALERT' if alerted else 'zone'})")
    etree.SubElement(det, "strokeColor", value="-65536" if alerted else "-16776961")  # ARGB red / blue
    etree.SubElement(det, "fillColor", value="1627324416" if alerted else "0")  # 0x60FF0000 translucent red
    etree.SubElement(det, "labels_on", value="true")
    state = "drone alert in force" if alerted else "no alert"
    etree.SubElement(det, "remarks").text = f"skytrace zone {zone.id}: {state}"
    return ev


def alert_event_shapes(events, zones, uid_prefix: str = "skytrace", alert_stale_s: float = 3600.0) -> list[bytes]:
    """CoT shapes for alert events (skytrace.alerting.AlertEvent): raise/update draw the zone red until
    ``alert_stale_s`` later (refreshed by updates); clear draws it blue for a minute, then TAK drops it."""
    out = []
    for e in events:
        if zones is None or e.zone not in zones.ids:
            continue
        clear = e.kind == "clear"
        out.append(to_bytes(zone_event(zones[e.zone], e.t, 60.0 if clear else alert_stale_s, not clear, uid_prefix)))
    return out


def to_bytes(ev: etree._Element) -> bytes:
    """One event as one line of UTF-8 XML (no declaration, no newline inside): TAK's streaming framing."""
    return etree.tostring(ev, encoding="UTF-8", xml_declaration=False)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


def parse_events(data: bytes, source: str = "<cot>") -> list[dict]:
    """Decode a stream of concatenated CoT events (as received from TAK/TCP or one per line) into dicts.

    Each dict: uid, type, how, time, start, stale (UNIX s), lat, lon, hae, ce, le, and course/speed when present.
    Raises FormatError for malformed XML, a missing attribute or an event over 1 MiB.
    """
    out = []
    pos = 0
    n = 0
    while True:
        start = data.find(b"<event", pos)
        if start < 0:
            rest = data[pos:].strip()
            if rest and not rest.startswith(b"<?xml"):
                raise FormatError(source, f"{len(rest)} trailing bytes are not a CoT event", n + 1)
            break
        end = data.find(b"</event>", start)
        if end < 0:
            raise FormatError(source, "truncated event (no </event>)", n + 1)
        end += len(b"</event>")
        if end - start > MAX_EVENT_BYTES:
            raise FormatError(source, f"event of {end - start} bytes is over the 1 MiB limit", n + 1)
        n += 1
        try:
            ev = etree.fromstring(data[start:end], parser=_safe_parser())
        except etree.XMLSyntaxError as exc:
            raise FormatError(source, f"malformed XML: {exc}", n) from None
        out.append(_event_dict(ev, source, n))
        pos = end
    return out


def _event_dict(ev: etree._Element, source: str, n: int) -> dict:
    try:
        pt = ev.find("point")
        if pt is None:
            raise KeyError("point")
        d = {k: ev.attrib[k] for k in ("uid", "type", "how")}
        for k in ("time", "start", "stale"):
            d[k] = parse_cot_time(ev.attrib[k])
        for k in ("lat", "lon", "hae", "ce", "le"):
            d[k] = float(pt.attrib[k])
    except KeyError as exc:
        raise FormatError(source, f"missing {exc.args[0]!r}", n) from None
    except ValueError as exc:
        raise FormatError(source, f"bad value: {exc}", n) from None
    trk = ev.find("detail/track")
    if trk is not None:
        d["course"] = float(trk.get("course", "nan"))
        d["speed"] = float(trk.get("speed", "nan"))
    return d


def snapshot_states(res) -> list[TrackPoint]:
    """Track points of a pipeline step result (``res.tracks`` is a TrackSnapshot)."""
    return res.tracks.to_records()


@dataclass
class CotSinkConfig:
    """Where and how to stream CoT. ``url`` is pytak's COT_URL: tcp://host:port (TAK server TCP input),
    tls://host:port (with ``pytak_options`` PYTAK_TLS_CLIENT_CERT etc.), udp://239.2.3.1:6969 (mesh multicast)."""

    url: str = "tcp://127.0.0.1:8087"
    stale_s: float = 15.0
    zones: object | None = None  # skytrace.zones.ZoneSet: alert events are drawn as zone shapes
    alert_stale_s: float = 3600.0
    uid_prefix: str = "skytrace"
    max_queue: int = 5000
    pytak_options: dict | None = None


class CotSink(BackgroundSender):
    """Pipeline sink: every step's tracks as CoT events, sent by pytak on a background thread (never blocks)."""

    def __init__(self, config: CotSinkConfig | None = None):
        self.config = config or CotSinkConfig()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tx = None
        super().__init__("cot-sink", self.config.max_queue)

    def on_step(self, result) -> None:
        """Queue this step's tracks and alert events (one item per step; XML is built on the sender thread)."""
        self.submit((snapshot_states(result), list(getattr(result, "events", ()) or ())))

    def _connect(self) -> None:
        from configparser import ConfigParser

        from skytrace.interop import require

        pytak = require("pytak")
        cp = ConfigParser(interpolation=None)
        cp["skytrace"] = {"COT_URL": self.config.url, **(self.config.pytak_options or {})}
        cfg = cp["skytrace"]
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        _, writer = self._loop.run_until_complete(pytak.protocol_factory(cfg))
        self._tx = pytak.TXWorker(asyncio.Queue(), cfg, writer)

    def deliver(self, item: object) -> None:
        assert isinstance(item, tuple)
        states, events = item
        cfg = self.config
        lines = [to_bytes(track_event(s, cfg.stale_s, cfg.uid_prefix)) for s in states]
        lines += alert_event_shapes(events, cfg.zones, cfg.uid_prefix, cfg.alert_stale_s)
        data = b"".join(x + b"\n" for x in lines)
        if not data:
            return
        for attempt in range(2):  # reconnect once on a broken connection; the next item retries again
            try:
                if self._tx is None:
                    self._connect()
                assert self._loop is not None
                self._loop.run_until_complete(self._tx.send_data(data))
                return
            except (OSError, ConnectionError):
                self._close_writer()
                if attempt:
                    raise

    def _close_writer(self) -> None:
        w = getattr(self._tx, "writer", None)
        self._tx = None
        if w is not None and hasattr(w, "close"):
            with contextlib.suppress(Exception):
                w.close()

    def shutdown(self) -> None:
        self._close_writer()
        if self._loop is not None:
            self._loop.close()
