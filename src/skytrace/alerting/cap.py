"""CAP 1.2 (OASIS Common Alerting Protocol) messages for every alert, update and all-clear.

Built element by element with lxml in the order the CAP 1.2 schema requires (never by string concatenation),
and validated in the tests against the official OASIS XSD. Mapping:

- ``raise`` -> msgType Alert; ``update`` -> msgType Update referencing the zone's previous message; ``clear`` ->
  msgType Cancel with responseType AllClear referencing it too.
- category Security; event "Drone attack (one-way attack UAV)"; responseType Shelter (AllClear on clear);
  urgency Immediate when a drone is expected within the imminent time, else Expected (Past for the all-clear);
  severity Extreme (Minor for the all-clear); certainty from the event (the evidence's
  Observed / Likely / Possible) or, when the policy gives none, Likely when the entry probability is >= 0.5, else
  Possible
  (Observed for the all-clear).
- area: areaDesc = zone name, one polygon per ring of the zone ("lat,lon" pairs, closed), simplified to at most
  ``max_vertices`` points so that messages stay small enough for cell broadcast gateways.
- status Actual in live use; Exercise for simulated runs (the default of the offline tools).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import shapely
from lxml import etree

from skytrace.alerting.engine import AlertEvent
from skytrace.zones import Zone, ZoneSet

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
EVENT_NAME = "Drone attack (one-way attack UAV)"


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _el(parent, tag: str, text: str | None = None):
    e = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        e.text = text
    return e


def _polygons(zone: Zone, max_vertices: int) -> list[str]:
    geom = zone.geometry
    out = []
    for poly in getattr(geom, "geoms", [geom]):
        ring = poly.exterior
        tol = 0.0
        while len(ring.coords) > max_vertices and tol < 1.0:
            tol = tol * 2 if tol else 0.001
            ring = shapely.simplify(poly, tol).exterior
        coords = list(ring.coords)
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        if len(coords) >= 4:
            out.append(" ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in coords))
    return out


class CapWriter:
    """Turns alert events into CAP 1.2 XML, keeping per-zone references between Alert, Update and Cancel."""

    def __init__(self, zones: ZoneSet, sender: str = "skytrace@localhost", status: str = "Exercise",
                 sender_name: str = "skytrace early warning", max_vertices: int = 200, expires_s: float = 3600.0):
        if status not in ("Actual", "Exercise", "System", "Test", "Draft"):
            raise ValueError(f"CAP status {status!r} is not one of Actual, Exercise, System, Test, Draft")
        self.zones = zones
        self.sender = sender
        self.status = status
        self.sender_name = sender_name
        self.max_vertices = max_vertices
        self.expires_s = expires_s
        self._last: dict[str, tuple[str, str]] = {}  # zone -> (identifier, sent) of its latest message
        self._seq = 0

    def message(self, ev: AlertEvent) -> bytes:
        self._seq += 1
        ident = f"{ev.alert_id}.{self._seq}"
        sent = _ts(ev.t)
        root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
        _el(root, "identifier", ident)
        _el(root, "sender", self.sender)
        _el(root, "sent", sent)
        _el(root, "status", self.status)
        msg_type = {"raise": "Alert", "update": "Update", "clear": "Cancel"}[ev.kind]
        _el(root, "msgType", msg_type)
        _el(root, "scope", "Public")
        prev = self._last.get(ev.zone)
        if msg_type != "Alert" and prev is not None:
            _el(root, "references", f"{self.sender},{prev[0]},{prev[1]}")
        _el(root, "incidents", ev.alert_id)
        info = _el(root, "info")
        _el(info, "language", "en")
        _el(info, "category", "Security")
        _el(info, "event", EVENT_NAME)
        clear = ev.kind == "clear"
        _el(info, "responseType", "AllClear" if clear else "Shelter")
        _el(info, "urgency", "Past" if clear else ("Immediate" if ev.level == "imminent" else "Expected"))
        _el(info, "severity", "Minor" if clear else "Extreme")
        _el(info, "certainty", "Observed" if clear else (ev.certainty or (
            "Likely" if ev.probability >= 0.5 else "Possible")))
        _el(info, "effective", sent)
        if not clear and ev.eta_s is not None:
            _el(info, "onset", _ts(ev.t + ev.eta_s))
        _el(info, "expires", _ts(ev.t + self.expires_s))
        _el(info, "senderName", self.sender_name)
        zone = self.zones[ev.zone]
        if clear:
            _el(info, "headline", f"All clear: {zone.name}")
            _el(info, "description", f"The drone threat to {zone.name} has passed ({ev.reason}).")
        else:
            eta = f" expected in about {ev.eta_s / 60:.0f} min" if ev.eta_s is not None else ""
            _el(info, "headline", f"Drone threat: {zone.name}")
            _el(info, "description", f"Tracked attack drone(s) may reach {zone.name}{eta}. "
                                     f"Probability {ev.probability:.0%} ({ev.reason}).")
            _el(info, "instruction", "Go to a shelter or an inner room away from windows now. "
                                     "Stay there until the all-clear.")
        for name, value in (("probability", f"{ev.probability:.3f}"), ("tracks", " ".join(ev.tracks)),
                            ("zone", ev.zone)):
            par = _el(info, "parameter")
            _el(par, "valueName", name)
            _el(par, "value", value)
        area = _el(info, "area")
        _el(area, "areaDesc", zone.name)
        for poly in _polygons(zone, self.max_vertices):
            _el(area, "polygon", poly)
        self._last[ev.zone] = (ident, sent)
        if clear:
            self._last.pop(ev.zone, None)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def write(self, events: list[AlertEvent], out_dir: str | Path) -> list[Path]:
        """One file per message, named by time and identifier; returns the paths."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for ev in events:
            xml = self.message(ev)
            p = d / f"{int(ev.t)}-{ev.zone.replace(':', '_')}-{ev.kind}.xml"
            p.write_bytes(xml)
            paths.append(p)
        return paths
