"""The per-zone alert state machine.

For every zone z and every step, the threat is the probability that at least one tracked drone enters z within
the zone's warning window W_z = ``lead_target_s`` + ``shelter_s`` of the zone (people need the lead time to hear
the alert plus the time to reach shelter):

    p_z = 1 - prod_tracks (1 - P(track enters z within W_z))          (tracks treated as independent)

A zone is **raised** when p_z >= ``p_raise``; it stays raised while p_z >= ``p_keep`` (hysteresis: a fan that
flickers around the threshold does not make the siren flicker), and is **cleared** once p_z has stayed below
``p_keep`` for ``clear_after_s`` — after the drone has passed or crashed, or its track has been lost for that
long. While raised, a change in the set of threatening tracks or in the level is an **update**. Every event
records its reason: the tracks, the probability and the expected time of arrival.

Levels: ``warning`` (threat within the window) and ``imminent`` (expected arrival within ``imminent_s`` or a drone
already inside). Roll-up: a parent zone (an oblast) is *partly under alert* while any of its children is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skytrace.alerting.policy import AlertPolicy, register_policy
from skytrace.assess import AssessConfig, Assessor
from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert
from skytrace.zones import ZoneSet


@dataclass
class ZoneAlertConfig:
    """Settings of the per-zone engine (policy ``zone``), loadable from ``[alerting]`` of skytrace.toml."""

    lead_target_s: float = 300.0
    """s; warning wanted before a drone arrives, on top of the zone's ``shelter_s`` (time to hear and act)."""
    p_raise: float = 0.25
    """probability (0-1) of entry within the window at which a zone is raised."""
    p_keep: float = 0.08
    """probability below which a raised zone starts its all-clear countdown (hysteresis: no flicker)."""
    clear_after_s: float = 120.0
    """s below ``p_keep`` before the all-clear: the drone has passed, crashed or been lost for that long."""
    imminent_s: float = 120.0
    """s; expected arrival within this is level ``imminent`` (CAP urgency Immediate)."""
    default_shelter_s: float = 60.0
    """s; shelter time of zones that do not carry ``shelter_s``."""


AlertConfig = ZoneAlertConfig  # the name used by earlier code


@dataclass
class AlertEvent:
    """One change of a zone's alert state (``certainty``: CAP Observed / Likely / Possible, None = from p)."""

    t: float
    zone: str
    kind: str  # "raise" | "update" | "clear"
    level: str  # "warning" | "imminent" | "clear"
    tracks: list[str]
    probability: float
    eta_s: float | None
    reason: str
    alert_id: str
    start: float
    certainty: str | None = None


@dataclass
class _ZoneState:
    active: bool = False
    start: float = 0.0
    below_since: float | None = None
    level: str = "clear"
    tracks: list[str] = field(default_factory=list)
    alert_id: str = ""
    all_tracks: set[str] = field(default_factory=set)
    max_level: str = "warning"


@register_policy
class AlertEngine(AlertPolicy):
    """Per-zone alert states, updated from track snapshots; emits :class:`AlertEvent` and keeps alert periods.

    Policy ``zone``: confirmed and coasting tracks only. Constructed as ``AlertEngine(zones, sensors, config)``
    like every policy; ``AlertEngine(zones, config)`` (the earlier form) is accepted too.
    """

    name = "zone"
    config_class = ZoneAlertConfig

    def __init__(self, zones: ZoneSet, sensors: SensorTable | ZoneAlertConfig | None = None,
                 config: ZoneAlertConfig | None = None, assess_config: AssessConfig | None = None):
        if isinstance(sensors, ZoneAlertConfig):
            sensors, config = None, sensors
        super().__init__(zones, sensors, config)
        self.policy = self.config
        self.assessor = Assessor(zones, assess_config)
        shelter = np.array([z.shelter_s or self.policy.default_shelter_s for z in zones], dtype=float)
        self.window_s = self.policy.lead_target_s + shelter
        self.state = [_ZoneState() for _ in zones]
        self._n_alerts = 0
        self.last_probability = np.zeros(len(zones))

    def update(self, t: float, snapshot: TrackSnapshot, detections: DetectionBatch | None = None
               ) -> list[AlertEvent]:
        pol = self.policy
        keep = [i for i, s in enumerate(snapshot.status) if s in ("confirmed", "coasting")]
        if len(keep) < len(snapshot):
            snapshot = _rows(snapshot, np.array(keep, dtype=np.int64))
        a = self.assessor.assess(snapshot)
        nz = len(self.zones)
        p_zone = np.zeros(nz)
        eta_zone = np.full(nz, np.inf)
        tracks_of: dict[int, list[str]] = {}
        if a.track_idx.size:
            p_pair = a.probability_within(self.window_s[a.zone_idx])
            eta_pair = a.eta_s()
            # p_z = 1 - prod(1 - p): sum of logs per zone
            log_miss = np.log1p(-np.minimum(p_pair, 1 - 1e-12))
            p_zone = 1 - np.exp(np.bincount(a.zone_idx, weights=log_miss, minlength=nz))
            np.minimum.at(eta_zone, a.zone_idx, np.where(p_pair > 0, eta_pair, np.inf))
            sig = p_pair >= pol.p_keep
            for zi, ti in zip(a.zone_idx[sig], a.track_idx[sig], strict=True):
                tracks_of.setdefault(int(zi), []).append(a.track_ids[ti])
        self.last_probability = p_zone
        events: list[AlertEvent] = []
        candidates = set(np.flatnonzero(p_zone >= pol.p_keep).tolist()) | {
            i for i, s in enumerate(self.state) if s.active}
        for zi in sorted(candidates):
            st = self.state[zi]
            p = float(p_zone[zi])
            eta = float(eta_zone[zi]) if np.isfinite(eta_zone[zi]) else None
            trk = sorted(set(tracks_of.get(zi, [])))
            level = "imminent" if (eta is not None and eta <= pol.imminent_s) else "warning"
            zid = self.zones.zones[zi].id
            if not st.active:
                if p >= pol.p_raise:
                    self._n_alerts += 1
                    st.active, st.start, st.below_since = True, t, None
                    st.level, st.tracks, st.alert_id = level, trk, f"skytrace-{self._n_alerts:06d}"
                    st.all_tracks, st.max_level = set(trk), level
                    events.append(AlertEvent(t, zid, "raise", level, trk, p, eta,
                                             f"P(entry within {self.window_s[zi]:.0f} s) = {p:.2f}"
                                             f" >= {pol.p_raise}", st.alert_id, t))
                continue
            if p >= pol.p_keep:
                st.below_since = None
                if level != st.level or (trk and trk != st.tracks):
                    st.level, st.tracks = level, trk
                    st.max_level = "imminent" if "imminent" in (level, st.max_level) else st.max_level
                    st.all_tracks |= set(trk)
                    events.append(AlertEvent(t, zid, "update", level, trk, p, eta,
                                             f"threat changed: P = {p:.2f}", st.alert_id, st.start))
                continue
            if st.below_since is None:
                st.below_since = t
            if t - st.below_since >= pol.clear_after_s:
                events.append(AlertEvent(t, zid, "clear", "clear", st.tracks, p, None,
                                         f"P < {pol.p_keep} for {pol.clear_after_s:.0f} s", st.alert_id, st.start))
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level=st.max_level,
                                          tracks=sorted(st.all_tracks)))
                self.state[zi] = _ZoneState()
        return events

    def active(self) -> list[Alert]:
        """Alerts in force now (end = None)."""
        return [Alert(zone=self.zones.zones[i].id, start=s.start, end=None, level=s.level,
                      tracks=sorted(s.all_tracks)) for i, s in enumerate(self.state) if s.active]

    def close(self, t: float) -> list[AlertEvent]:
        """End of run: clear every active alert (so that an all-clear follows every alert)."""
        events = []
        for zi, st in enumerate(self.state):
            if st.active:
                zid = self.zones.zones[zi].id
                events.append(AlertEvent(t, zid, "clear", "clear", st.tracks, 0.0, None, "end of run",
                                         st.alert_id, st.start))
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level=st.max_level,
                                          tracks=sorted(st.all_tracks)))
                self.state[zi] = _ZoneState()
        return events

    def rollup(self) -> dict[str, str]:
        """Parent zone id -> "alert" (itself raised), "partial" (a child raised) for zones with any alert."""
        out: dict[str, str] = {}
        for zi, st in enumerate(self.state):
            if not st.active:
                continue
            z = self.zones.zones[zi]
            out[z.id] = "alert"
            if z.parent and out.get(z.parent) != "alert":
                out[z.parent] = "partial"
        return out


def _rows(snap: TrackSnapshot, idx: np.ndarray) -> TrackSnapshot:
    """The tracks ``idx`` of a snapshot (a new snapshot)."""
    sensors = [snap.sensors_of(int(i)) for i in idx] if (snap.sensors is not None or snap.sensor_rows is not None) \
        else None
    return TrackSnapshot(snap.t, [snap.track[i] for i in idx], [snap.status[i] for i in idx], snap.lat[idx],
                         snap.lon[idx], snap.alt_m[idx], snap.ve[idx], snap.vn[idx], snap.vu[idx],
                         snap.pos_sigma_m[idx], sensors=sensors)
