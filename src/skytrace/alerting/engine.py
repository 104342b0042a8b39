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

from skytrace.assess import AssessConfig, Assessor
from skytrace.batch import DetectionBatch, TrackSnapshot
from skytrace.model import Alert
from skytrace.zones import ZoneSet


@dataclass
class AlertPolicy:
    lead_target_s: float = 300.0  # warning wanted before a drone arrives, on top of the zone's shelter_s
    p_raise: float = 0.25  # probability of entry within the warning window that raises a zone's alert
    p_keep: float = 0.08  # a raised alert is kept while the probability stays above this (hysteresis: no flicker)
    clear_after_s: float = 120.0  # s; the probability must stay below p_keep this long before the all-clear
    imminent_s: float = 120.0  # s; an expected arrival sooner than this makes the alert imminent
    default_shelter_s: float = 60.0  # s; time to reach shelter in zones that do not say (shelter_s)
    max_track_age_s: float = 60.0  # tracks not updated for longer (coasting) still count, with this cap on age


@dataclass
class AlertEvent:
    """One change of a zone's alert state."""

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


@dataclass
class _ZoneState:
    active: bool = False
    start: float = 0.0
    below_since: float | None = None
    level: str = "clear"
    tracks: list[str] = field(default_factory=list)
    alert_id: str = ""
    all_tracks: set[str] = field(default_factory=set)


class AlertEngine:
    """Per-zone alert states, updated from track snapshots; emits :class:`AlertEvent` and keeps alert periods."""

    def __init__(self, zones: ZoneSet, policy: AlertPolicy | None = None, assess_config: AssessConfig | None = None):
        self.zones = zones
        self.policy = policy or AlertPolicy()
        self.assessor = Assessor(zones, assess_config)
        shelter = np.array([z.shelter_s or self.policy.default_shelter_s for z in zones], dtype=float)
        self.window_s = self.policy.lead_target_s + shelter
        self.state = [_ZoneState() for _ in zones]
        self.periods: list[Alert] = []
        self._n_alerts = 0
        self.last_probability = np.zeros(len(zones))

    def update(self, t: float, snapshot: TrackSnapshot, detections: DetectionBatch | None = None
               ) -> list[AlertEvent]:
        """Re-assess every zone at ``t`` from the tracks (``detections``, the reports since the last update, are
        accepted for the policy interface; this policy alerts from tracks only)."""
        pol = self.policy
        snapshot = snapshot.with_status("confirmed", "coasting")  # tentative tracks do not raise alerts (yet)
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
                    st.all_tracks = set(trk)
                    events.append(AlertEvent(t, zid, "raise", level, trk, p, eta,
                                             f"P(entry within {self.window_s[zi]:.0f} s) = {p:.2f}"
                                             f" >= {pol.p_raise}", st.alert_id, t))
                continue
            if p >= pol.p_keep:
                st.below_since = None
                if level != st.level or (trk and trk != st.tracks):
                    st.level, st.tracks = level, trk
                    st.all_tracks |= set(trk)
                    events.append(AlertEvent(t, zid, "update", level, trk, p, eta,
                                             f"threat changed: P = {p:.2f}", st.alert_id, st.start))
                continue
            if st.below_since is None:
                st.below_since = t
            if t - st.below_since >= pol.clear_after_s:
                events.append(AlertEvent(t, zid, "clear", "clear", st.tracks, p, None,
                                         f"P < {pol.p_keep} for {pol.clear_after_s:.0f} s", st.alert_id, st.start))
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level="warning",
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
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level="warning",
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
