"""Policy ``evidence``: alert from every piece of evidence, each with its CAP certainty, in zones as wide as the
uncertainty.

Evidence and the certainty it can give (CAP ``certainty``; the strongest evidence for a zone wins):

- **Observed** — a confirmed track: its predicted fan (:mod:`skytrace.assess`, from the track's position
  uncertainty, speed and heading spread, one dog-leg, route-aware samples toward the city ahead).
- **Likely** — a coasting track, a tentative track supported by a trusted sensor (``trusted`` in sensors.json; by
  default radars), a report of a trusted sensor that no track explains (a lone radar plot), a track lost less than
  ``lost_fine_s`` ago.
- **Possible** — a tentative track of untrusted sensors, a lone acoustic/optical bearing (the drone is within the
  node's audible range along the bearing: a *sector*), a lone untrusted position report (a citizen sighting), an
  older lost track. One untrusted sensor can never raise more than Possible (a spoofed node included).

Reports and lost tracks become *hypotheses*: ``n_particles`` possible drones, flown forward in time. A drone whose
velocity is unknown (a bearing, a plot) is given the wave's prior: drones launched together fly the same corridors
toward the same cities, so its particles take the velocities of tonight's tracks seen nearby (``flow_radius_km``,
within ``flow_memory_s``); where none has flown yet, each heads for a city ahead of the inbound direction (from the
nearest known launch area, ``places.json``) at a Shahed-like speed, with heading noise, or (a quarter) straight on.
Lone reports must persist (``persist_min_reports`` within ``persist_window_s``, outside the node's bearing clutter
map), so that false alarms, clutter plots and stationary confusers raise nothing. A hypothesis
keeps flying for ``report_memory_s`` after its last report, so the corridor ahead is alerted while a drone crosses a
coverage gap (the wave), and cells are raised where enough particles enter within the zone's window.

A lost track (no longer in the snapshot) is not forgotten: its hypothesis widens with time since the last update —
its particles' cells (age < ``lost_fine_s``), then every cell within ``raion_radius_km`` of where it should be
(< ``lost_raion_s``), then the whole parent zone (an oblast, < ``lost_expire_s``) — and expires when the time is up
or no particle has a path inside any zone. A live track near its predicted position supersedes it.

Zone decisions: fine evidence alerts leaf zones only (cells; a parent is "partly under alert" through
:meth:`rollup`), the oblast stage alerts the parent zone itself. Per zone the score is the strongest evidence:
fan probability / ``p_raise`` for tracks, particle share / ``hyp_p_raise`` for hypotheses, 1 for the widened
stages. Raise at score >= 1, keep while score >= ``p_keep / p_raise``, clear after ``clear_after_s`` below
(hysteresis: no flicker). A stronger certainty or level while raised is a CAP Update; a certainty only weakens
after it has been weaker for ``clear_after_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skytrace.alerting.engine import AlertEvent, _rows
from skytrace.alerting.policy import AlertPolicy, register_policy
from skytrace.assess import AssessConfig, Assessor
from skytrace.batch import ACOUSTIC, OPTICAL, POSITION, RADAR, DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert
from skytrace.zones import ZoneSet, load_places

M_PER_DEG = 111_320.0
CERTAINTY = ("Observed", "Likely", "Possible")
OBSERVED, LIKELY, POSSIBLE = 0, 1, 2
FINE, RAION, OBLAST = 0, 1, 2
TRUSTED_BY_DEFAULT = ("radar",)


@dataclass
class EvidenceAlertConfig:
    """Settings of policy ``evidence`` (``[alerting]`` of skytrace.toml). Defaults work for every scenario."""

    lead_target_s: float = 900.0
    """s; warning wanted before arrival, on top of the zone's ``shelter_s``. 15 min: a Shahed covers ~45 km."""
    default_shelter_s: float = 60.0
    """s; shelter time of zones without ``shelter_s``."""
    p_raise: float = 0.25
    """probability (0-1) that a track enters a zone within its window at which the zone is raised."""
    p_keep: float = 0.08
    """probability under which the all-clear countdown starts (hysteresis; the same ratio applies to particles)."""
    hyp_p_raise: float = 0.15
    """share (0-1) of a hypothesis' particles entering a zone within the window that raises it. Lower: fewer
    misses, more needless area (see the trade-off curve in docs/warnings.md)."""
    clear_after_s: float = 120.0
    """s under the keep threshold before the all-clear (and before a certainty may weaken)."""
    clear_passed_s: float = 60.0
    """s with no evidence at all for a zone (the threat has passed: no track, fan or hypothesis touches it any
    more) before the all-clear. Shorter than ``clear_after_s``: the hysteresis guards against evidence that
    wavers, not against evidence that is gone."""
    rearm_s: float = 0.0
    """s; a zone that raises again within this long after its all-clear flickers: each such re-raise multiplies
    its all-clear holds (``clear_after_s``, ``clear_passed_s``) by one more, up to ``rearm_max_factor`` (fewer,
    longer alert periods; never a miss, at some needless area). 0: off (see docs/warnings.md, alert fatigue)."""
    rearm_max_factor: float = 4.0
    """most the all-clear holds of a flickering zone are multiplied by (see ``rearm_s``)."""
    imminent_s: float = 120.0
    """s; expected arrival within this is level ``imminent`` (CAP urgency Immediate)."""
    use_tentative: bool = True
    """bool; tentative tracks count (Possible, or Likely with a trusted sensor)."""
    lost_fine_s: float = 300.0
    """s after the last update during which a lost track alerts its particles' cells (Likely)."""
    lost_raion_s: float = 600.0
    """s after the last update during which it alerts every cell within ``raion_radius_km`` (Possible)."""
    lost_expire_s: float = 600.0
    """s after the last update until which it alerts its whole parent zone (oblast); then it expires. The
    default equals ``lost_raion_s``: the oblast stage is off (measured on kyiv-night seed 1: the raion and oblast
    stages together cost 12 % of the oblast baseline's needless area and warned no extra entry; docs/warnings.md)."""
    raion_radius_km: float = 25.0
    """km; radius of the raion-sized stage (a raion is ~5,000 km^2: radius ~40 km; a 15-min-old fan ~25 km)."""
    lone_reports: bool = True
    """bool; reports that no track explains (lone bearings, plots, sightings) raise alerts."""
    audible_range_m: float = 5000.0
    """m; audible range of acoustic nodes that do not give ``max_range_m`` (a Shahed is heard ~2-5 km away)."""
    sector_sigmas: float = 2.0
    """bearing standard deviations on either side of a lone bearing that the sector spans."""
    report_memory_s: float = 900.0
    """s a lone report's hypothesis keeps flying after the node's last report (coverage gaps of ~45 km)."""
    speed_min_mps: float = 33.0
    """m/s; slowest drone speed of the wave prior (Shahed-136 / Gerbera cruise 40-50 m/s)."""
    speed_max_mps: float = 52.0
    """m/s; fastest drone speed of the wave prior."""
    heading_sigma_deg: float = 15.0
    """deg; heading noise of particles (dog-legs between waypoints)."""
    flow_radius_km: float = 20.0
    """km; tracks flown this close to a lone report give its particles their velocities (the corridor)."""
    flow_memory_s: float = 3600.0
    """s; how long the corridors flown by tracks are remembered (a wave lasts hours)."""
    city_cone_deg: float = 60.0
    """deg; a city is a likely target if within this angle of the inbound direction."""
    city_max_km: float = 800.0
    """km; farthest likely target city."""
    n_particles: int = 16
    """particles per hypothesis."""
    future_step_s: float = 30.0
    """s; time step of the flown-forward futures (a 15 km cell takes ~5 min to cross)."""
    reanchor_s: float = 60.0
    """s; a node that keeps hearing re-anchors its hypothesis (new particles at its latest report) this often."""
    persist_window_s: float = 30.0
    """s; a lone report needs its sensor to report the same thing repeatedly within this window."""
    persist_min_reports: int = 3
    """reports (bearings within 10 deg, or plots on a flyable path) a sensor must give within the window."""
    clutter_tau_s: float = 600.0
    """s; memory of the nodes' bearing clutter map (10 deg bins of unexplained bearings, decaying)."""
    clutter_threshold: float = 50.0
    """decayed count in a bin above which a node's bearings there are clutter (a confuser at ~25/min exceeds it
    in ~2-3 min; a passing drone gives ~30 reports in all)."""
    explain_range_factor: float = 3.0
    """a report is explained by a track within this many times the sensor's range (and within its gate)."""
    trusted_kinds: str = "radar"
    """comma-separated sensor kinds trusted by default (a trusted sensor alone gives Likely); sensors.json
    ``trusted`` overrides per sensor."""
    uncorroborated_window_s: float = float("inf")
    """s; a lone report of one untrusted sensor (a node, a sighting) alerts only the cells its drone could enter
    within this (the sector and just ahead), until it is corroborated: by a second sensor's lone report within
    ``corroborate_km``, or by its own sensor hearing it for ``corroborate_after_s``. One wrong sighting or a
    node's false alarm far from any track then raises a small area, not the corridor to the next city. Off (inf)
    by default: on kyiv-night seed 1, 600 s cut needless area by ~9 % of the oblast baseline's for ~0.5 % more
    missed cell entries, 300 s by ~17 % for ~2 % more (docs/warnings.md); misses weigh more."""
    corroborate_km: float = 20.0
    """km between the anchors of two sensors' lone reports (within ``corroborate_s``) that corroborate each other."""
    corroborate_s: float = 300.0
    """s within which a second sensor's report corroborates (a drone at ~45 m/s flies 13 km)."""
    corroborate_after_s: float = 90.0
    """s its own sensor must keep hearing a lone report to corroborate it (a drone passes a node in ~2 min; a
    false alarm or a gust does not persist that long)."""
    negative_info: bool = True
    """bool; sensors that report nothing toward a particle exclude it (see :mod:`skytrace.alerting.negative`):
    hypotheses shrink to where the drone can still be, and die when no particle is left."""
    silence_range_frac: float = 0.6
    """share of an acoustic node's range within which its silence excludes a drone (Pd is high there)."""
    silence_radar_range_frac: float = 0.5
    """share of a radar's range within which its silence excludes a drone."""
    silence_s: float = 60.0
    """s without a report toward a particle after which a sensor's silence counts (a Shahed within range is
    reported every few seconds; late reports arrive within tens of seconds)."""
    silence_every_s: float = 30.0
    """s between two applications of the negative information (a drone flies ~1.4 km meanwhile)."""
    silence_alive_s: float = 300.0
    """s; only a sensor that reported or sent a heartbeat within this long is alive and its silence counts (a node
    that is down says nothing; simulated nodes beat every 120 s, so one lost heartbeat is tolerated)."""
    seed: int = 0
    """random seed of the particles (same input, same alerts)."""


@dataclass
class _Zone:
    active: bool = False
    start: float = 0.0
    below_since: float | None = None
    weaker_since: float | None = None
    level: str = "clear"
    certainty: int = POSSIBLE
    tracks: list[str] = field(default_factory=list)
    alert_id: str = ""
    all_tracks: set[str] = field(default_factory=set)
    max_level: str = "warning"
    hold_factor: float = 1.0  # all-clear holds are multiplied by this (a zone that re-raised soon after a clear)


@dataclass
class _Hyp:
    """One hypothesis: particles (k,) at ``t0``, flying at constant velocity, stopping at their city (if any).

    Its future (which zones each particle visits, from when to when, in seconds after ``t0``) is computed once,
    when it is created, into the policy's visit table: a step then only selects the visits in its window.
    """

    key: str
    kind: str  # "lost" | "report"
    certainty: int
    t0: float  # anchor: the evidence the particles start from
    t_last: float  # last evidence (a node that keeps hearing extends its hypothesis' memory)
    lat0: np.ndarray
    lon0: np.ndarray
    ve: np.ndarray
    vn: np.ndarray
    t_stop: np.ndarray  # s after t0 at which the particle reaches its city (inf: flies on)
    slot: int = -1
    t_first: float = 0.0  # when its sensor first reported it (kept across re-anchoring)
    sensor: int = -1  # row of the reporting sensor (report hypotheses)


class _Visits:
    """Struct-of-arrays table of (hypothesis slot, zone, particle, entry s, exit s) for all live hypotheses."""

    def __init__(self) -> None:
        self.slot = np.zeros(0, np.int64)
        self.zone = np.zeros(0, np.int64)
        self.t_in = np.zeros(0)
        self.t_out = np.zeros(0)
        self.alive = np.zeros(0, bool)  # per slot
        self.t0 = np.zeros(0)  # per slot
        self.cert = np.zeros(0, np.int64)  # per slot
        self.fine = np.zeros(0, bool)  # per slot: in the particle stage (lost tracks widen later)
        self.key: list[str] = []  # per slot
        self.part = np.zeros(0, np.int64)  # per visit: the particle
        self.palive = np.zeros((0, 0), bool)  # per slot and particle: not excluded by negative information

    def new_slots(self, hyps: list[_Hyp]) -> None:
        n0 = self.alive.size
        for j, h in enumerate(hyps):
            h.slot = n0 + j
        self.alive = np.concatenate([self.alive, np.ones(len(hyps), bool)])
        self.t0 = np.concatenate([self.t0, [h.t0 for h in hyps]])
        self.cert = np.concatenate([self.cert, np.array([h.certainty for h in hyps], np.int64)])
        self.fine = np.concatenate([self.fine, np.ones(len(hyps), bool)])
        self.key.extend(h.key for h in hyps)
        k = max([h.lat0.size for h in hyps] + [self.palive.shape[1]])
        pa = np.zeros((self.palive.shape[0] + len(hyps), k), bool)
        pa[:self.palive.shape[0], :self.palive.shape[1]] = self.palive
        for h in hyps:
            pa[h.slot, :h.lat0.size] = True
        self.palive = pa

    def add(self, slot: np.ndarray, zone: np.ndarray, t_in: np.ndarray, t_out: np.ndarray,
            part: np.ndarray) -> None:
        self.slot = np.concatenate([self.slot, slot])
        self.part = np.concatenate([self.part, part])
        self.zone = np.concatenate([self.zone, zone])
        self.t_in = np.concatenate([self.t_in, t_in])
        self.t_out = np.concatenate([self.t_out, t_out])

    def kill(self, slot: int) -> None:
        if 0 <= slot < self.alive.size:
            self.alive[slot] = False

    def compact(self) -> None:
        """Drop the visits of dead hypotheses once they are most of the table (slots keep their numbers)."""
        live = self.alive[self.slot]
        if live.size > 10_000 and live.mean() < 0.5:
            self.slot, self.zone, self.part = self.slot[live], self.zone[live], self.part[live]
            self.t_in, self.t_out = self.t_in[live], self.t_out[live]


class _Wave:
    """The wave's prior: likely velocities at a point.

    First the corridor as flown tonight: the velocities of tracks seen within ``flow_radius_km`` in the last
    ``flow_memory_s`` (drones launched together fly the same corridors); where no track has flown yet, the
    cities ahead of the inbound direction from the nearest launch area.
    """

    def __init__(self, cfg: EvidenceAlertConfig):
        places = load_places()
        self.cfg = cfg
        self.city = np.array([[c["lat"], c["lon"]] for c in places["cities"]])
        self.launch = np.array([[c["lat"], c["lon"]] for c in places["launch_areas"]])
        self.flow = np.zeros((0, 5))  # t, lat, lon, ve, vn of recent confirmed tracks, one sample per minute
        self._flow_t = -np.inf

    def learn(self, t: float, tracks: TrackSnapshot) -> None:
        """Remember where confirmed tracks fly (one sample per track per minute, ``flow_memory_s`` kept)."""
        if t - self._flow_t < 60.0:
            return
        self._flow_t = t
        conf = np.array([s == "confirmed" for s in tracks.status], dtype=bool)
        new = np.column_stack([np.full(conf.sum(), t), tracks.lat[conf], tracks.lon[conf], tracks.ve[conf],
                               tracks.vn[conf]])
        old = self.flow[self.flow[:, 0] >= t - self.cfg.flow_memory_s]
        self.flow = np.concatenate([old, new])

    def sample_flow(self, lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Velocities drawn from tonight's tracks near the points' mean (None when none flew there)."""
        if not self.flow.size:
            return None
        clat, clon = float(lat.mean()), float(lon.mean())
        d = np.hypot((self.flow[:, 1] - clat) * M_PER_DEG, (self.flow[:, 2] - clon) * M_PER_DEG * np.cos(
            np.radians(clat)))
        near = np.flatnonzero(d <= self.cfg.flow_radius_km * 1000.0)
        if near.size == 0:
            return None
        pick = rng.choice(near, lat.size)
        sp = np.hypot(self.flow[pick, 3], self.flow[pick, 4]) * (1 + rng.normal(0, 0.05, lat.size))
        hdg = np.arctan2(self.flow[pick, 3], self.flow[pick, 4]) + np.radians(
            rng.normal(0, self.cfg.heading_sigma_deg, lat.size))
        return sp * np.sin(hdg), sp * np.cos(hdg), np.full(lat.size, np.inf)

    def sample_any(self, lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The corridor flown tonight where known, else the cities ahead."""
        got = self.sample_flow(lat, lon, rng)
        return got if got is not None else self.sample(lat, lon, rng)

    @staticmethod
    def _bearing_dist(lat0, lon0, lat1, lon1):
        dn = (lat1 - lat0) * M_PER_DEG
        de = (lon1 - lon0) * M_PER_DEG * np.cos(np.radians(0.5 * (lat0 + lat1)))
        return np.arctan2(de, dn), np.hypot(de, dn)

    def sample(self, lat: np.ndarray, lon: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point: velocity (ve, vn) m/s and time to reach its city (s, inf if it flies straight on)."""
        cfg = self.cfg
        n = lat.size
        speed = rng.uniform(cfg.speed_min_mps, cfg.speed_max_mps, n)
        b_l, d_l = self._bearing_dist(self.launch[None, :, 0], self.launch[None, :, 1], lat[:, None], lon[:, None])
        inbound = b_l[np.arange(n), np.argmin(d_l, axis=1)]
        b_c, d_c = self._bearing_dist(lat[:, None], lon[:, None], self.city[None, :, 0], self.city[None, :, 1])
        off = np.abs(np.mod(b_c - inbound[:, None] + np.pi, 2 * np.pi) - np.pi)
        ok = (off <= np.radians(cfg.city_cone_deg)) & (d_c <= cfg.city_max_km * 1000) & (d_c > 3000)
        # choose a city per particle: weight ~ nearer and straighter ahead
        w = np.where(ok, 1.0 / (1.0 + d_c / 100_000.0) * np.cos(np.minimum(off, np.pi / 2)) + 1e-9, 0.0)
        has = ok.any(axis=1) & (rng.random(n) >= 0.25)  # a quarter fly straight on (the inbound direction)
        cum = np.cumsum(w, axis=1)
        pick = (cum < rng.random(n)[:, None] * cum[:, -1:]).sum(axis=1)
        pick = np.minimum(pick, len(self.city) - 1)
        hdg = np.where(has, b_c[np.arange(n), pick], inbound)
        hdg = hdg + np.radians(rng.normal(0, cfg.heading_sigma_deg, n))
        t_stop = np.where(has, d_c[np.arange(n), pick] / speed, np.inf)
        return speed * np.sin(hdg), speed * np.cos(hdg), t_stop


class _Evidence:
    """One step's evidence per zone: score (max over evidence), certainty (strongest that keeps), ETA, and the
    (zone, evidence) pairs kept to name the reasons of the zones that change."""

    def __init__(self, n_zones: int, keep: float):
        self.keep = keep
        self.score = np.zeros(n_zones)
        self.cert = np.full(n_zones, POSSIBLE)
        self.eta = np.full(n_zones, np.inf)
        self._pairs: list[tuple[np.ndarray, np.ndarray, bool]] = []
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def fold(self, zi: np.ndarray, s: np.ndarray, c: np.ndarray) -> None:
        np.maximum.at(self.score, zi, s)
        strong = s >= self.keep
        np.minimum.at(self.cert, zi[strong], np.asarray(c)[strong])

    def add(self, zi, s, c, eta, src, is_track: bool, score_too: bool = True) -> None:
        if score_too:
            self.fold(zi, s, c)
        np.minimum.at(self.eta, zi, eta)
        strong = s >= self.keep
        self._pairs.append((zi[strong], np.asarray(src)[strong], is_track))

    def why(self, zi: int, names: dict) -> list[str]:
        """Names of the evidence behind zone ``zi`` (tracks, hypotheses), from a per-step index built once."""
        if self._index is None:
            z = [p[0] for p in self._pairs]
            zs = np.concatenate(z) if z else np.zeros(0, np.int64)
            src = np.concatenate([p[1] for p in self._pairs]) if z else np.zeros(0, np.int64)
            kind = np.concatenate([np.full(p[0].size, p[2]) for p in self._pairs]) if z else np.zeros(0, bool)
            order = np.argsort(zs, kind="stable")
            self._index = (zs[order], src[order], kind[order])
        zs, src, kind = self._index
        lo, hi = np.searchsorted(zs, zi), np.searchsorted(zs, zi, side="right")
        return sorted({names[bool(k)][int(i)] for i, k in zip(src[lo:hi], kind[lo:hi], strict=True)})


@register_policy
class EvidencePolicy(AlertPolicy):
    """Alerts from all the evidence with CAP certainty; zones as wide as the uncertainty (see module doc)."""

    name = "evidence"
    config_class = EvidenceAlertConfig

    def __init__(self, zones: ZoneSet, sensors: SensorTable | None = None, config: EvidenceAlertConfig | None = None,
                 assess_config: AssessConfig | None = None):
        super().__init__(zones, sensors, config)
        cfg = self.config
        self.assessor = Assessor(zones, assess_config)
        self.raster = self.assessor.raster
        nz = len(zones)
        shelter = np.array([z.shelter_s or cfg.default_shelter_s for z in zones], dtype=float)
        self.window_s = cfg.lead_target_s + shelter
        parents = {z.parent for z in zones if z.parent}
        self.is_leaf = np.array([z.id not in parents for z in zones])
        self.parent_idx = np.array([zones.index.get(z.parent, -1) if z.parent else -1 for z in zones])
        self.state = [_Zone() for _ in range(nz)]
        self._n_alerts = 0
        self._rng = np.random.default_rng(cfg.seed)
        self._wave = _Wave(cfg)
        self.hyps: dict[str, _Hyp] = {}
        self.visits = _Visits()
        self._buf = {name: np.zeros(0) for name in ("row", "t", "brg", "lat", "lon")}
        self._clutter: np.ndarray | None = None
        self._clutter_t: float | None = None
        self._last: dict[str, tuple] = {}  # track id -> (t, lat, lon, ve, vn, sigma, certainty)
        life = max(cfg.report_memory_s + cfg.reanchor_s, cfg.lost_fine_s) + float(self.window_s.max())
        self._tau = np.arange(0.0, life + cfg.future_step_s, cfg.future_step_s)  # futures, s after the anchor
        self.last_score = np.zeros(nz)
        self.last_certainty = np.full(nz, POSSIBLE)
        self._cleared_t = np.full(nz, -np.inf)  # per zone: time of its last all-clear (``rearm_s``)
        self._hold = np.ones(nz)  # per zone: the hold factor of its last alert period
        self._init_sensors(sensors)
        self._silence = None
        self._silence_t = -np.inf
        if cfg.negative_info and sensors is not None and len(sensors):
            from skytrace.alerting.negative import SilenceMap

            self._silence = SilenceMap(sensors, self._range_m, self._bsig, cfg.silence_range_frac,
                                       cfg.silence_radar_range_frac, cfg.silence_s, alive_s=cfg.silence_alive_s)
        # hex-ish disc of offsets for the raion-sized stage (every ~7 km)
        r = cfg.raion_radius_km * 1000.0
        g = np.arange(-r, r + 1, 7000.0)
        gx, gy = np.meshgrid(g, g)
        inside = np.hypot(gx, gy) <= r
        self._disc = np.column_stack([gx[inside], gy[inside]])

    # ------------------------------------------------------------------------------------------------ sensors
    def _init_sensors(self, sensors: SensorTable | None) -> None:
        cfg = self.config
        if sensors is None or len(sensors) == 0:
            self._trusted = np.zeros(0, bool)
            self._range_m = np.zeros(0)
            self._bsig = np.zeros(0)
            return
        kinds = {k.strip() for k in cfg.trusted_kinds.split(",") if k.strip()}
        trusted = []
        for rec in sensors.records:
            flag = getattr(rec, "trusted", None)
            trusted.append(bool(flag) if flag is not None else rec.kind in kinds)
        self._trusted = np.array(trusted, dtype=bool)
        rng_m = np.where(np.isfinite(sensors.max_range_m), sensors.max_range_m, np.nan)
        self._range_m = np.where(np.isnan(rng_m), np.where(sensors.kind == RADAR, 40_000.0, cfg.audible_range_m),
                                 rng_m)
        self._bsig = np.where(np.isfinite(sensors.bearing_sigma_deg), sensors.bearing_sigma_deg, 5.0)

    def _track_certainty(self, tracks: TrackSnapshot) -> np.ndarray:
        """Certainty code per track from its status and whether a trusted sensor supports it."""
        out = np.full(len(tracks), POSSIBLE)
        for i, st in enumerate(tracks.status):
            if st == "confirmed":
                out[i] = OBSERVED
            elif st == "coasting":
                out[i] = LIKELY
            else:
                out[i] = LIKELY if self._supported_by_trusted(tracks, i) else POSSIBLE
        return out

    def _supported_by_trusted(self, tracks: TrackSnapshot, i: int) -> bool:
        if self.sensors is None or not self._trusted.any():
            return False
        names = tracks.sensors_of(i) or []
        return any(self._trusted[self.sensors.index[s]] for s in names if s in self.sensors.index)

    def mute_sensors(self, muted: np.ndarray | None) -> None:
        """Lone reports of ``muted`` sensors (bool per sensor row; the pipeline's consistency check: bearings into
        the silent coverage of alive neighbours) raise nothing: their lone-report hypotheses are dropped now and none
        is made while they stay muted. Tracks they support are untouched (a track rests on several sensors)."""
        self.muted_sensors = None if muted is None or not np.any(muted) else np.asarray(muted, dtype=bool)
        if self.muted_sensors is None:
            return
        for key, h in list(self.hyps.items()):
            if h.kind == "report" and 0 <= h.sensor < self.muted_sensors.size and self.muted_sensors[h.sensor]:
                self.visits.kill(self.hyps.pop(key).slot)

    # ------------------------------------------------------------------------------------------------ evidence
    def _add_hyps(self, hyps: list[_Hyp]) -> None:
        """Register hypotheses (replacing any with the same key) and compute their futures once."""
        if not hyps:
            return
        for h in hyps:
            old = self.hyps.pop(h.key, None)
            if old is not None:
                self.visits.kill(old.slot)
            self.hyps[h.key] = h
        self.visits.new_slots(hyps)
        tau = self._tau
        lat0 = np.stack([h.lat0 for h in hyps])
        lon0 = np.stack([h.lon0 for h in hyps])
        ve = np.stack([h.ve for h in hyps])
        vn = np.stack([h.vn for h in hyps])
        stop = np.stack([h.t_stop for h in hyps])
        d = np.minimum(tau[None, None, :], stop[:, :, None])
        lat = lat0[:, :, None] + vn[:, :, None] * d / M_PER_DEG
        lon = lon0[:, :, None] + ve[:, :, None] * d / (M_PER_DEG * np.cos(np.radians(lat0[:, :, None])))
        pts, zs = self.raster.lookup(lat.ravel(), lon.ravel())
        leaf = self.is_leaf[zs]
        pts, zs = pts[leaf], zs[leaf]
        hi, pi, ti = np.unravel_index(pts, lat.shape)
        k = lat.shape[1]
        nz = len(self.zones)
        key = (hi.astype(np.int64) * k + pi) * nz + zs
        order = np.lexsort((ti, key))
        key, ti = key[order], ti[order]
        first = np.concatenate([[True], key[1:] != key[:-1]]) if key.size else np.zeros(0, bool)
        last = np.concatenate([key[1:] != key[:-1], [True]]) if key.size else np.zeros(0, bool)
        kf = key[first]
        slots = np.array([h.slot for h in hyps], np.int64)
        self.visits.add(slots[kf // nz // k], kf % nz, tau[ti[first]], tau[ti[last]] + self.config.future_step_s,
                        (kf // nz) % k)

    def _lost_tracks(self, t: float, tracks: TrackSnapshot, cert: np.ndarray) -> None:
        live = set(tracks.track)
        new = []
        cfg = self.config
        for tid in [k for k in self._last if k not in live]:
            tl, lat, lon, ve, vn, sig, c = self._last.pop(tid)
            if c == POSSIBLE:  # an untrusted tentative track that died: its reports speak for themselves
                continue
            k = cfg.n_particles
            rng = self._rng
            sig = max(sig, 300.0)
            lat0 = lat + rng.normal(0, 1, k) * sig / np.sqrt(2) / M_PER_DEG
            lon0 = lon + rng.normal(0, 1, k) * sig / np.sqrt(2) / (M_PER_DEG * np.cos(np.radians(lat)))
            sp = np.hypot(ve, vn) * (1 + rng.normal(0, 0.08, k))
            hdg = np.arctan2(ve, vn) + np.radians(rng.normal(0, cfg.heading_sigma_deg, k))
            pve, pvn, stop = sp * np.sin(hdg), sp * np.cos(hdg), np.full(k, np.inf)
            # a quarter head for a city ahead (route-aware), like the live fan
            wve, wvn, wstop = self._wave.sample(lat0, lon0, rng)
            q = np.arange(k) < k // 4
            pve[q], pvn[q], stop[q] = wve[q], wvn[q], wstop[q]
            new.append(_Hyp(f"lost:{tid}", "lost", LIKELY, tl, tl, lat0, lon0, pve, pvn, stop))
        self._add_hyps(new)
        for i, tid in enumerate(tracks.track):
            self._last[tid] = (t, float(tracks.lat[i]), float(tracks.lon[i]), float(tracks.ve[i]),
                               float(tracks.vn[i]), float(tracks.pos_sigma_m[i]), int(cert[i]))
            h = self.hyps.pop(f"lost:{tid}", None)
            if h is not None:
                self.visits.kill(h.slot)

    def _supersede(self, t: float, tracks: TrackSnapshot) -> None:
        """Drop lost-track hypotheses that a live confirmed track now explains (a drone re-acquired)."""
        lost = [h for h in self.hyps.values() if h.kind == "lost"]
        conf = np.array([s == "confirmed" for s in tracks.status], dtype=bool)
        if not lost or not conf.any():
            return
        tl, tn = tracks.lat[conf], tracks.lon[conf]
        for h in lost:
            lat, lon = self._positions(h, np.array([t - h.t0]))
            clat, clon = float(lat.mean()), float(lon.mean())
            spread = max(float(np.hypot((lat - clat) * M_PER_DEG,
                                        (lon - clon) * M_PER_DEG * np.cos(np.radians(clat))).max()), 5000.0)
            d = np.hypot((tl - clat) * M_PER_DEG, (tn - clon) * M_PER_DEG * np.cos(np.radians(clat)))
            if (d <= spread).any():
                self.visits.kill(self.hyps.pop(h.key).slot)

    def _lone_reports(self, t: float, tracks: TrackSnapshot, det: DetectionBatch) -> None:
        if self.sensors is None or det is None or not len(det) or not self.config.lone_reports:
            return
        cfg = self.config
        rows = det.sensor.astype(np.int64)
        kind = self.sensors.kind[rows]
        slat, slon = self.sensors.lat[rows], self.sensors.lon[rows]
        # the report's point (plots, sightings) or the node (bearings)
        plat, plon = slat.copy(), slon.copy()
        is_pos = kind == POSITION
        plat[is_pos], plon[is_pos] = det.lat[is_pos], det.lon[is_pos]
        is_radar = (kind == RADAR) & np.isfinite(det.range_m) & np.isfinite(det.bearing_deg)
        if is_radar.any():
            gr = det.range_m[is_radar] * np.cos(np.radians(np.nan_to_num(det.elevation_deg[is_radar])))
            b = np.radians(det.bearing_deg[is_radar])
            plat[is_radar] = slat[is_radar] + gr * np.cos(b) / M_PER_DEG
            plon[is_radar] = slon[is_radar] + gr * np.sin(b) / (M_PER_DEG * np.cos(np.radians(slat[is_radar])))
        is_brg = ((kind == ACOUSTIC) | (kind == OPTICAL)) & np.isfinite(det.bearing_deg)
        usable = (is_pos | is_radar | is_brg) & np.isfinite(plat) & np.isfinite(plon)
        if self.muted_sensors is not None:
            usable &= ~self.muted_sensors[rows]
        explained = self._explained(tracks, det, rows, plat, plon, is_brg)
        lone = np.flatnonzero(usable & ~explained)
        self._remember(t, det, rows, lone, plat, plon, is_brg, is_pos)
        if lone.size == 0:
            return
        # one hypothesis per node (bearings) or per sensor and ~10 km square (plots); the latest report wins
        cell = np.where(is_brg[lone], 0, np.round(plat[lone] * 10) * 10_000 + np.round(plon[lone] * 7))
        order = np.lexsort((det.t[lone], cell, rows[lone]))
        lone, cell = lone[order], cell[order]
        ident = rows[lone] * 100_000_000 + cell.astype(np.int64)
        lastrow = np.concatenate([ident[1:] != ident[:-1], [True]])
        k = cfg.n_particles
        rng = self._rng
        new = []
        for i, c in zip(lone[lastrow], cell[lastrow], strict=True):
            r = rows[i]
            if not is_pos[i] and not self._persistent(int(r), float(det.t[i]), float(det.bearing_deg[i]),
                                                      float(plat[i]), float(plon[i]), bool(is_brg[i])):
                continue
            sid = self.sensors.ids[r]
            key = f"node:{sid}" if is_brg[i] else f"plot:{sid}:{int(c)}"
            ti = float(det.t[i])
            h = self.hyps.get(key)
            if h is not None and ti - h.t0 < cfg.reanchor_s:
                h.t_last = max(h.t_last, ti)  # still hearing it: the hypothesis lives on, same particles
                continue
            if is_brg[i]:
                b = np.radians(det.bearing_deg[i] + np.clip(rng.normal(0, 1, k), -cfg.sector_sigmas,
                                                            cfg.sector_sigmas) * self._bsig[r])
                rr = self._range_m[r] * np.sqrt(rng.uniform(0.01, 1.0, k))
                lat0 = plat[i] + rr * np.cos(b) / M_PER_DEG
                lon0 = plon[i] + rr * np.sin(b) / (M_PER_DEG * np.cos(np.radians(plat[i])))
            else:
                sig = det.pos_sigma_m[i] if np.isfinite(det.pos_sigma_m[i]) else 500.0
                sig = max(sig, 300.0)
                lat0 = plat[i] + rng.normal(0, sig / np.sqrt(2), k) / M_PER_DEG
                lon0 = plon[i] + rng.normal(0, sig / np.sqrt(2), k) / (M_PER_DEG * np.cos(np.radians(plat[i])))
            ve, vn, stop = self._wave.sample_any(lat0, lon0, rng)
            cert = LIKELY if self._trusted[r] else POSSIBLE
            t_first = h.t_first if h is not None and ti - h.t_last <= cfg.persist_window_s * 2 else ti
            new.append(_Hyp(key, "report", cert, ti, ti, lat0, lon0, ve, vn, stop, t_first=t_first, sensor=int(r)))
        self._add_hyps(new)

    def _remember(self, t: float, det: DetectionBatch, rows: np.ndarray, lone: np.ndarray, plat: np.ndarray,
                  plon: np.ndarray, is_brg: np.ndarray, is_pos: np.ndarray) -> None:
        """Keep the unexplained reports of the last ``persist_window_s`` and the nodes' bearing clutter map."""
        cfg = self.config
        if self._clutter is None:
            self._clutter = np.zeros((len(self.sensors), 36))
        if self._clutter_t is not None and t > self._clutter_t:
            self._clutter *= np.exp(-(t - self._clutter_t) / cfg.clutter_tau_s)
        self._clutter_t = t
        b = lone[is_brg[lone]]
        if b.size:
            np.add.at(self._clutter, (rows[b], (np.mod(det.bearing_deg[b], 360.0) // 10).astype(int) % 36), 1.0)
        keep = lone[~is_pos[lone]]
        buf = self._buf
        cut = buf["t"] >= t - cfg.persist_window_s - 30.0
        for name, new in (("row", rows[keep]), ("t", det.t[keep]), ("brg", np.nan_to_num(det.bearing_deg[keep])),
                          ("lat", plat[keep]), ("lon", plon[keep])):
            buf[name] = np.concatenate([buf[name][cut], new])

    def _persistent(self, r: int, t: float, brg: float, lat: float, lon: float, is_brg: bool) -> bool:
        """A lone report counts only if its sensor keeps reporting it: clutter and single false alarms do not.

        Bearings: at least ``persist_min_reports`` unexplained reports of the node within ``persist_window_s``
        within 10 deg of this one, in a bearing bin that is not the node's clutter (a stationary confuser keeps
        one bearing for many minutes; a drone passes in one or two). Plots (radar): at least
        ``persist_min_reports - 1`` earlier plots of the sensor in the window at a distance a drone could have
        flown (12-120 m/s), so that random clutter and stationary echoes do not count.
        """
        cfg = self.config
        buf = self._buf
        sel = (buf["row"] == r) & (buf["t"] >= t - cfg.persist_window_s) & (buf["t"] <= t + 1e-6)
        if is_brg:
            if self._clutter[r, int(np.mod(brg, 360.0) // 10) % 36] > cfg.clutter_threshold:
                return False
            diff = np.abs(np.mod(buf["brg"][sel] - brg + 180.0, 360.0) - 180.0)
            return int((diff <= 10.0).sum()) >= cfg.persist_min_reports
        dt = t - buf["t"][sel]
        d = np.hypot((buf["lat"][sel] - lat) * M_PER_DEG, (buf["lon"][sel] - lon) * M_PER_DEG * np.cos(np.radians(lat)))
        ok = (dt >= 2.0) & (d >= 12.0 * dt - 1500.0) & (d <= 120.0 * dt + 1500.0) & (d >= 0.5 * 12.0 * dt)
        return int(ok.sum()) >= cfg.persist_min_reports - 1

    def _explained(self, tracks: TrackSnapshot, det: DetectionBatch, rows: np.ndarray, plat: np.ndarray,
                   plon: np.ndarray, is_brg: np.ndarray) -> np.ndarray:
        """Reports that a live track accounts for (so they add nothing a track does not already say)."""
        n = len(det)
        if len(tracks) == 0:
            return np.zeros(n, bool)
        cos = np.cos(np.radians(plat))[:, None]
        dn = (tracks.lat[None, :] - plat[:, None]) * M_PER_DEG
        de = (tracks.lon[None, :] - plon[:, None]) * M_PER_DEG * cos
        dist = np.hypot(de, dn)
        sig = np.maximum(tracks.pos_sigma_m, 200.0)[None, :]
        rng_m = self._range_m[rows][:, None]
        # bearings: the track is within the node's range and on the bearing (within the gate)
        res = np.degrees(np.abs(np.mod(np.arctan2(de, dn) - np.radians(np.nan_to_num(det.bearing_deg))[:, None]
                                       + np.pi, 2 * np.pi) - np.pi))
        gate = 3 * self._bsig[rows][:, None] + np.degrees(np.arctan2(3 * sig, np.maximum(dist, 1.0))) + 2.0
        brg_ok = (dist <= self.config.explain_range_factor * rng_m + 3 * sig) & (res <= gate)
        # points: the track is within a few kilometres
        pt_ok = dist <= 3 * sig + 3000.0
        return np.where(is_brg, brg_ok.any(axis=1), pt_ok.any(axis=1))

    # ------------------------------------------------------------------------------------------------ flying
    @staticmethod
    def _positions(h: _Hyp, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, T) positions of a hypothesis' particles ``dt`` (T,) seconds after its anchor."""
        d = np.minimum(dt[None, :], h.t_stop[:, None])
        lat = h.lat0[:, None] + h.vn[:, None] * d / M_PER_DEG
        lon = h.lon0[:, None] + h.ve[:, None] * d / (M_PER_DEG * np.cos(np.radians(h.lat0[:, None])))
        return lat, lon

    def _apply_silence(self, t: float) -> None:
        """Negative information: exclude the particles that silent sensors say are not there (every
        ``silence_every_s``); a hypothesis with no particle left has no plausible path and expires."""
        if self._silence is None or not self.hyps or t - self._silence_t < self.config.silence_every_s:
            return
        self._silence_t = t
        hyps = list(self.hyps.values())
        lat = np.concatenate([self._positions(h, np.array([t - h.t0]))[0][:, 0] for h in hyps])
        lon = np.concatenate([self._positions(h, np.array([t - h.t0]))[1][:, 0] for h in hyps])
        slot = np.concatenate([np.full(h.lat0.size, h.slot) for h in hyps])
        part = np.concatenate([np.arange(h.lat0.size) for h in hyps])
        ex = self._silence.excluded(t, lat, lon)
        self.visits.palive[slot[ex], part[ex]] = False
        for h in hyps:
            if not self.visits.palive[h.slot, :h.lat0.size].any():
                self.visits.kill(self.hyps.pop(h.key).slot)

    def _uncorroborated(self, t: float) -> np.ndarray:
        """Slots of untrusted lone-report hypotheses that nothing corroborates yet (see
        ``uncorroborated_window_s``)."""
        cfg = self.config
        reps = [h for h in self.hyps.values() if h.kind == "report"]
        cand = [h for h in reps if h.certainty == POSSIBLE and h.t_last - h.t_first < cfg.corroborate_after_s]
        if not cand:
            return np.zeros(0, np.int64)
        lat = np.array([float(np.mean(h.lat0)) for h in reps])
        lon = np.array([float(np.mean(h.lon0)) for h in reps])
        sen = np.array([h.sensor for h in reps])
        tl = np.array([h.t_last for h in reps])
        out = []
        for h in cand:
            clat, clon = float(np.mean(h.lat0)), float(np.mean(h.lon0))
            d = np.hypot((lat - clat) * M_PER_DEG, (lon - clon) * M_PER_DEG * np.cos(np.radians(clat)))
            other = (sen != h.sensor) & (d <= cfg.corroborate_km * 1000.0) & (
                np.abs(tl - h.t_last) <= cfg.corroborate_s)
            if not other.any():
                out.append(h.slot)
        return np.array(out, np.int64)

    def _expire(self, t: float) -> list[tuple[_Hyp, int]]:
        """Drop hypotheses whose time is up; return the lost tracks in a widened stage."""
        cfg = self.config
        wide = []
        for key, h in list(self.hyps.items()):
            if h.kind == "lost":
                age = t - h.t0
                if age > cfg.lost_expire_s:
                    self.visits.kill(self.hyps.pop(key).slot)
                elif age >= cfg.lost_fine_s:
                    self.visits.fine[h.slot] = False
                    wide.append((h, RAION if age < cfg.lost_raion_s else OBLAST))
            elif t - h.t_last > cfg.report_memory_s:
                self.visits.kill(self.hyps.pop(key).slot)
        return wide

    def _hyp_scores(self, t: float, ev: _Evidence) -> None:
        """Fold the hypotheses into the step's evidence; expire those with no path left in any zone."""
        cfg = self.config
        wide = self._expire(t)
        v = self.visits
        v.compact()
        if v.slot.size:
            age = t - v.t0[v.slot]
            ok = v.alive[v.slot] & v.fine[v.slot] & (v.t_out >= age) & v.palive[v.slot, v.part]
            # a hypothesis none of whose particles has a zone left ahead has no plausible path: expire it
            has_path = np.zeros(v.alive.size, bool)
            has_path[v.slot[ok]] = True
            for key, h in list(self.hyps.items()):
                if v.fine[h.slot] and not has_path[h.slot]:
                    v.kill(self.hyps.pop(key).slot)
            win = self.window_s[v.zone]
            lone = self._uncorroborated(t)
            if lone.size:
                narrow = np.zeros(v.alive.size, bool)
                narrow[lone] = True
                win = np.where(narrow[v.slot], np.minimum(win, cfg.uncorroborated_window_s), win)
            inwin = ok & (v.t_in <= age + win)
            nz = len(self.zones)
            pair = v.slot[inwin] * nz + v.zone[inwin]
            upair, inv, cnt = np.unique(pair, return_inverse=True, return_counts=True)
            # one particle alone is noise: a zone needs at least two of a hypothesis' particles to count
            if upair.size:
                eta = np.full(upair.size, np.inf)
                np.minimum.at(eta, inv, np.maximum(v.t_in[inwin] - age[inwin], 0.0))
                two = cnt >= 2
                slot, zi = upair[two] // nz, upair[two] % nz
                s = cnt[two] / cfg.n_particles / cfg.hyp_p_raise
                ev.add(zi, s, v.cert[slot], eta[two], slot, is_track=False)
        for h, stage in wide:
            alive = self.visits.palive[h.slot, :h.lat0.size]
            if not alive.any():  # every place the drone could be has been heard silent: no plausible path
                self.visits.kill(self.hyps.pop(h.key).slot)
                continue
            lat, lon = self._positions(h, np.array([t - h.t0]))
            lat, lon = lat[alive], lon[alive]
            clat, clon = float(np.median(lat)), float(np.median(lon))
            if stage == RAION:
                plat = clat + self._disc[:, 1] / M_PER_DEG
                plon = clon + self._disc[:, 0] / (M_PER_DEG * np.cos(np.radians(clat)))
                _, zi = self.raster.lookup(plat, plon)
                zi = np.unique(zi[self.is_leaf[zi]])
            else:
                _, zi = self.raster.lookup(np.append(lat.ravel(), clat), np.append(lon.ravel(), clon))
                zi = np.unique(self.parent_idx[zi[self.is_leaf[zi]]])
                zi = zi[zi >= 0]
            if zi.size == 0:
                self.visits.kill(self.hyps.pop(h.key).slot)
                continue
            ev.add(zi, np.ones(zi.size), np.full(zi.size, POSSIBLE), np.full(zi.size, np.inf),
                   np.full(zi.size, h.slot), is_track=False)

    # ------------------------------------------------------------------------------------------------ update
    def update(self, t: float, tracks: TrackSnapshot, detections: DetectionBatch | None = None
               ) -> list[AlertEvent]:
        cfg = self.config
        nz = len(self.zones)
        if not cfg.use_tentative:
            keep = np.array([s in ("confirmed", "coasting") for s in tracks.status], dtype=bool)
            tracks = _rows(tracks, np.flatnonzero(keep))
        tcert = self._track_certainty(tracks)
        self._wave.learn(t, tracks)
        self._lost_tracks(t, tracks, tcert)
        self._supersede(t, tracks)
        if detections is not None:
            self._lone_reports(t, tracks, detections)
            if self._silence is not None:
                self._silence.observe(t, detections)
        self._apply_silence(t)
        ev = _Evidence(nz, cfg.p_keep / cfg.p_raise)
        self._hyp_scores(t, ev)
        # tracks: the live fan, noisy-OR per zone within each certainty class
        a = self.assessor.assess(tracks)
        if a.track_idx.size:
            leaf = self.is_leaf[a.zone_idx]
            ti, zi, fe = a.track_idx[leaf], a.zone_idx[leaf], a.first_entry_s[leaf]
            p_pair = (fe <= self.window_s[zi][:, None]).mean(axis=1)
            hit = np.isfinite(fe)
            eta = np.where(hit.any(axis=1), np.where(hit, fe, 0).sum(axis=1) / np.maximum(hit.sum(axis=1), 1),
                           np.inf)
            ev.add(zi, p_pair / cfg.p_raise, tcert[ti], np.where(p_pair > 0, eta, np.inf), ti, is_track=True,
                   score_too=False)
            log_miss = np.log1p(-np.minimum(p_pair, 1 - 1e-12))
            for c in (OBSERVED, LIKELY, POSSIBLE):
                sel = tcert[ti] <= c
                if not sel.any():
                    continue
                p = 1 - np.exp(np.bincount(zi[sel], weights=log_miss[sel], minlength=nz))
                zs = np.flatnonzero(p > 0)
                ev.fold(zs, p[zs] / cfg.p_raise, np.full(zs.size, c))
        self.last_score, self.last_certainty = ev.score, ev.cert
        names = {False: self.visits.key, True: a.track_ids}
        return self._decide(t, ev, names)

    def _decide(self, t: float, ev: _Evidence, names: dict) -> list[AlertEvent]:
        cfg = self.config
        keep = cfg.p_keep / cfg.p_raise
        score, cert, eta = ev.score, ev.cert, ev.eta
        events: list[AlertEvent] = []
        active = np.array([s.active for s in self.state], dtype=bool)
        cand = np.flatnonzero((score >= keep) | active)
        for zi in cand.tolist():
            st = self.state[zi]
            s = float(score[zi])
            e = float(eta[zi]) if np.isfinite(eta[zi]) else None
            level = "imminent" if (e is not None and e <= cfg.imminent_s) else "warning"
            c = int(cert[zi])
            zid = self.zones.zones[zi].id
            p = min(1.0, s * cfg.p_raise)
            if not st.active:
                if s >= 1.0:
                    trk = ev.why(zi, names)
                    self._n_alerts += 1
                    flicker = cfg.rearm_s > 0 and t - self._cleared_t[zi] <= cfg.rearm_s
                    st.hold_factor = min(self._hold[zi] + 1.0, cfg.rearm_max_factor) if flicker else 1.0
                    st.active, st.start, st.below_since, st.weaker_since = True, t, None, None
                    st.level, st.certainty, st.tracks = level, c, trk
                    st.alert_id = f"skytrace-{self._n_alerts:06d}"
                    st.all_tracks, st.max_level = set(trk), level
                    events.append(AlertEvent(t, zid, "raise", level, trk, p, e,
                                             f"{CERTAINTY[c]}: score {s:.2f} >= 1 from {', '.join(trk[:4]) or '-'}",
                                             st.alert_id, t, CERTAINTY[c]))
                continue
            if s >= keep:
                st.below_since = None
                # CAP Updates only for what a recipient must act on: stronger certainty, or the threat becoming
                # imminent. Weaker certainty or a receding threat changes the state (map, alerts.jsonl) without
                # re-sending the zone's alert (alert fatigue: ~half of all messages were such downgrades).
                changed = False
                if c < st.certainty:  # stronger evidence: confirm at once (CAP Update)
                    st.certainty, st.weaker_since, changed = c, None, True
                elif c > st.certainty:  # weaker: only after it stayed weaker for clear_after_s (no flicker)
                    st.weaker_since = st.weaker_since if st.weaker_since is not None else t
                    if t - st.weaker_since >= cfg.clear_after_s:
                        st.certainty, st.weaker_since = c, None
                else:
                    st.weaker_since = None
                if level != st.level:
                    changed = changed or level == "imminent"
                    st.level = level
                    st.max_level = "imminent" if level == "imminent" else st.max_level
                if changed:
                    st.tracks = ev.why(zi, names) or st.tracks
                    st.all_tracks |= set(st.tracks)
                    events.append(AlertEvent(t, zid, "update", st.level, st.tracks, p, e,
                                             f"{CERTAINTY[st.certainty]}: threat changed, score {s:.2f}",
                                             st.alert_id, st.start, CERTAINTY[st.certainty]))
                continue
            if st.below_since is None:
                st.below_since = t
            hold = (cfg.clear_passed_s if s <= 0.0 else cfg.clear_after_s) * st.hold_factor
            if t - st.below_since >= hold:
                self._cleared_t[zi], self._hold[zi] = t, st.hold_factor
                events.append(AlertEvent(t, zid, "clear", "clear", st.tracks, p, None,
                                         f"no evidence for {cfg.clear_after_s:.0f} s", st.alert_id, st.start,
                                         CERTAINTY[st.certainty]))
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level=st.max_level,
                                          tracks=sorted(st.all_tracks)))
                self.state[zi] = _Zone()
        return events

    def heartbeat(self, sensor_rows, t) -> None:
        """Sensors alive and hearing nothing: their silence counts as negative information (only alive ones)."""
        if self._silence is not None:
            self._silence.heartbeat(sensor_rows, t)

    def close(self, t: float) -> list[AlertEvent]:
        events = []
        for zi, st in enumerate(self.state):
            if st.active:
                zid = self.zones.zones[zi].id
                events.append(AlertEvent(t, zid, "clear", "clear", st.tracks, 0.0, None, "end of run",
                                         st.alert_id, st.start, CERTAINTY[st.certainty]))
                self.periods.append(Alert(zone=zid, start=st.start, end=t, level=st.max_level,
                                          tracks=sorted(st.all_tracks)))
                self.state[zi] = _Zone()
        self.hyps.clear()
        self.visits = _Visits()
        self._last.clear()
        return events

    def active(self) -> list[Alert]:
        return [Alert(zone=self.zones.zones[i].id, start=s.start, end=None, level=s.level,
                      tracks=sorted(s.all_tracks)) for i, s in enumerate(self.state) if s.active]

    def certainty_of(self, zone_id: str) -> str | None:
        """CAP certainty of the alert in force for a zone (None when not alerted)."""
        st = self.state[self.zones.index[zone_id]]
        return CERTAINTY[st.certainty] if st.active else None

    def rollup(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for zi, st in enumerate(self.state):
            if not st.active:
                continue
            z = self.zones.zones[zi]
            out[z.id] = "alert"
            if z.parent and out.get(z.parent) != "alert":
                out[z.parent] = "partial"
        return out
