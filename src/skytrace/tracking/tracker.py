"""The skytrace tracker: streaming multi-sensor multi-target tracking, batched end to end.

Pipeline of one processing frame (``frame_s`` of sensor time), every step vectorised over all tracks or all
candidate (track, detection) pairs:

1. gating: a KD-tree of predicted track positions; each detection queries the tracks that could have produced
   it (a disc around a position report or radar plot; the audible disc around an acoustic node), then an exact
   Mahalanobis gate on the EKF innovation of the pair (chi-square, per measurement dimension);
2. association: global nearest neighbour on the negative log-likelihood, one detection per track per sensor and
   one track per detection; pairs that compete are grouped into connected components and each component is
   solved with ``scipy.optimize.linear_sum_assignment``; uncontested pairs are assigned directly;
3. update: EKF updates in rounds, each track taking its detections in time order (asynchronous sensors; the
   acoustic propagation delay is in the measurement model, see :mod:`skytrace.tracking.measurement`);
4. initiation: unassigned position reports and radar plots start tentative tracks; unassigned acoustic bearings
   go to a short pool where bearings of different nodes are triangulated and a candidate is kept only when at
   least ``init_min_nodes`` distinct nodes agree (a third bearing through the same point rejects the ghosts
   made by crossing bearings of different drones) — see :mod:`skytrace.tracking.initiation`;
5. management: confirmation needs ``confirm_hits`` updates from at least ``confirm_min_sensors`` distinct sensors
   (a single sensor, e.g. a spoofed node, never confirms a track), deletion after a silence or when the
   uncertainty grows too large, and merging of duplicate tracks.

Streaming: detections are accepted in any order; they wait in a buffer until the clock passes ``t + lag_s`` and
are then processed in sensor-time order, so reports up to ``lag_s`` late are used exactly as if on time. Reports
later than that are counted (``stats['late_dropped']``), never silently lost. Memory is bounded by the lag and
the number of live tracks.

References: Y. Bar-Shalom, P. Willett, X. Tian, *Tracking and Data Fusion* (2011), ch. 3 (GNN, gating), ch. 9
(track initiation); S. Blackman, R. Popoli, *Design and Analysis of Modern Tracking Systems* (1999), ch. 6 (M/N
confirmation); Stone Soup's role decomposition (predictor, updater, hypothesiser, associator, initiator, deleter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import chi2

from skytrace import geo, target_classes
from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.sensors import registry
from skytrace.sensors.family import DEFAULT_REACH_M
from skytrace.tracking import assignment, imm, initiation, motion, score, silence
from skytrace.tracking.measurement import SensorGeometry, innovation, measured_dof, predict_measurements
from skytrace.tracking.measurements_prep import MeasBatch, prepare

GATE_SIGMA_TIERS_M = np.array([250.0, 1000.0])  # KD-tree tiers of track position sigma (gating)


@dataclass
class TrackerConfig:
    """Tracker parameters (SI units). Defaults suit Shahed-class drones and the sensors of docs/simulation.md."""

    lag_s: float = 5.0  # how long reports wait for late ones before processing
    frame_s: float = 1.0  # processing frame of sensor time
    q_h: float = 0.5  # horizontal acceleration spectral density, m^2/s^3
    q_v: float = 0.05  # vertical, m^2/s^3
    imm: bool = False  # interacting multiple models: the CV model above plus a manoeuvring (high-noise) CV
    # explicit motion models: MotionModel instances or registered names ("cv"); one = a single filter, several =
    # an IMM over them with imm_sojourn_s / imm_mu0 of the same length. Empty: CV from q_h, q_v (+ ``imm``)
    motion_models: tuple = ()  # registered model names, e.g. ["cv"]; several = an IMM over them; empty = CV (+ imm)
    q_h_manoeuvre: float = 20.0  # ~ (4.6 m/s^2 of a 25-degree banked turn)^2 x 1 s, m^2/s^3
    q_v_manoeuvre: float = 10.0  # climbs, descents and the terminal dive
    imm_sojourn_s: tuple[float, float] = (120.0, 15.0)  # mean time in cruise / in a manoeuvre
    imm_mu0: tuple[float, float] = (0.9, 0.1)  # model probabilities of a new track
    gate_p: float = 0.999  # gate probability (chi-square)
    tentative_penalty: float = 4.0  # extra cost for a tentative track in association (prefer confirmed ones)
    confirm_hits: int = 6  # updates a tentative track needs before it is confirmed
    confirm_min_sensors: int = 2  # a single sensor never confirms a track on its own ...
    confirm_hits_per_sensor: int = 3  # ... and each of them must have confirmed itself (one clutter plot won't do)
    trust_sensors: bool = True  # a trusted sensor (sensors.json "trusted", default by kind) may confirm alone
    confirm_max_sigma_m: float = 800.0  # m; a track is confirmed only once its position sigma is below this
    # sequential test (Wald SPRT) on the hits and misses of scanning sensors (those with a ``pd``): each hit adds
    # log(pd / pf), each missed look log((1 - pd) / (1 - pf)), pf = the chance that a false track (clutter) finds
    # a plot in its gate on the next look; confirmed at log((1 - beta) / alpha) (beta = 0.01) without waiting for
    # ``confirm_hits`` (pd 0.9: 4 hits in a row)
    sprt_false_continuation: float = 0.05  # SPRT pf: chance a false track finds a plot in its gate on the next look
    sprt_alpha: float = 1e-4  # SPRT false-confirmation probability (threshold log((1 - 0.01) / alpha))
    confirm_min_speed_mps: float = 12.0  # one-way attack drones do not hover: still "tracks" are confusers
    confirm_max_speed_mps: float = 120.0  # nor fly faster than jets (~110 m/s): faster "tracks" are ghosts
    # ... and a new track of a class that may not hover must be *known* to move (a stationary crossing of two
    # confusers' bearings gets noisy first speeds that may pass the window): unless a scanning sensor's sequential
    # test passed, its horizontal velocity must differ from zero at this chi-square (2 dof)
    confirm_motion_chi2: float = 9.21  # 2-dof chi-square (99 %) of the velocity against zero for confirmation
    report_max_sigma_m: float = 1200.0  # coasting tracks are reported while their position is still useful
    report_tentative: bool = True  # tentative tracks appear in snapshots with status "tentative" ...
    report_tentative_min_hits: int = 3  # ... once they have this many updates (not every stray plot)
    tentative_timeout_s: float = 12.0  # s; a tentative track with no update for this long is deleted
    confirmed_timeout_s: float = 240.0  # s; a confirmed track with no update for this long is deleted
    # existence from negative information: each missed look of a scanning sensor (sensors.json ``pd``, radars by
    # default) since the track's last update lowers its existence probability (IPDA-style, reset on detection)
    existence_after_update: float = 0.99  # of a confirmed track just updated (a tentative one: 0.8)
    existence_min: float = 0.01  # tracks below are deleted (pd 0.9: after 5 missed looks, tentative after 3)
    # below existence_report_min a track is hidden (pd 0.9: after 3 missed looks) but kept until existence_min:
    # a plot in the next looks brings it back at once instead of a new track that must be confirmed again
    existence_report_min: float = 0.1  # tracks below are not reported (kept, hidden, until existence_min)
    # negative information from silent bearing sensors (skytrace.tracking.silence): an alive acoustic node (or
    # camera) that should hear the track at its estimated position but reports nothing lowers its existence
    silence: bool = True  # use that silence (negative information) in the existence of tracks
    alive_timeout_s: float = 300.0  # s; a sensor with no report or heartbeat for this long is offline: no silence
    silence_look_s: float = 2.0  # s; one look of a bearing node (its reporting interval while it hears something)
    silence_margin_db: float = 4.0  # dB of SNR removed from the sensor's law (quieter sources, noisier nights)
    silence_pd_max: float = 0.9  # cap on the per-look Pd used for silence (looks are not independent)
    silence_grace_s: float = 6.0  # s; a (track, sensor) pair with a gated detection this recently is not silent
    silence_hit_nats: float = 0.25  # each detection assigned to a track cancels this much of its silence score
    silence_memory_s: float = 120.0  # s; time constant with which silence is forgotten
    confirm_min_existence: float = 0.5  # a track whose existence (silence included) is below this is not confirmed
    # a track of bearing sensors only is confirmed once the silence test could have refuted it (its power: the
    # nats the looks of the alive sensors that should hear it could bring) or after confirm_silence_wait_s
    confirm_silence_power: float = 2.3  # nats (a factor 10 on the odds)
    confirm_silence_wait_s: float = 20.0  # s after birth: sparse coverage, where no other node could refute it
    single_sensor_hold_s: float = 60.0  # updates from one sensor alone keep a track alive this long at most
    max_pos_sigma_m: float = 4000.0  # m; a track whose position sigma grows beyond this is deleted
    init_vel_sigma_mps: float = 45.0  # m/s; horizontal velocity sigma of a new track (Shahed-class speeds 30-50 m/s)
    init_vu_sigma_mps: float = 5.0  # m/s; vertical velocity sigma of a new track
    init_alt_agl_m: float = 300.0  # m; altitude above ground assumed for a bearing-only new track (low cruise)
    init_alt_sigma_m: float = 600.0  # m; its sigma
    init_from_position: bool = True  # start tentative tracks from unassigned position reports / radar plots
    init_window_s: float = 4.0  # bearings kept for triangulation
    init_dt_s: float = 2.1  # max time between bearings that are triangulated together
    init_range_m: float = 9000.0  # max node-to-source distance considered
    init_min_nodes: int = 3  # distinct acoustic nodes whose bearings must cross to start a track (ghost control)
    init_min_angle_deg: float = 12.0  # deg; bearings crossing at a smaller angle give no fix (range too uncertain)
    init_two_node_unambiguous: bool = True  # accept 2-node fixes where both nodes hear a single source
    init_resolution_deg: float = 10.0  # deg; a node hears sources closer than this in bearing as one (array resolution)
    acoustic_gate_range_m: float = 12_000.0  # tracks farther than this from a bearing sensor are not candidates
    # bearing clutter map: a node that keeps reporting unexplained bearings in one direction hears a stationary
    # confuser (a generator, a road, a factory); such bearings may still update confirmed tracks, but neither start
    # nor feed tentative ones (two crossing confusers would otherwise make a persistent ghost)
    clutter_map_bin_deg: float = 5.0  # deg; bearing bin of the per-node clutter map
    clutter_map_tau_s: float = 300.0  # s; time constant of the clutter map decay (a confuser that stops is forgotten)
    clutter_map_threshold: float = 6.0  # decayed count of unexplained bearings in one bin
    # re-acquisition: a newly confirmed track that continues a confirmed track lost within this window (its
    # prediction within the chi-square gate, similar velocity) takes over the lost track's id
    reacquire_window_s: float = 300.0  # s; a lost confirmed track may be re-acquired (keeps its id) this long
    reacquire_max_dv_mps: float = 25.0  # m/s; largest velocity difference for a re-acquisition
    reacquire_min_hits: int = 3  # updates a tentative track needs to re-acquire a lost track early (0: off)
    merge_distance_m: float = 250.0  # m; two tracks closer than this ...
    merge_speed_mps: float = 12.0  # m/s; ... with velocities closer than this are one drone: merged
    max_speed_mps: float = 150.0  # m/s; tracks faster than this are deleted (no Shahed-class drone or jet flies faster)
    coast_status_s: float = 10.0  # confirmed tracks without update for this long are reported as coasting
    min_agl_m: float = 0.0  # altitude bounds above the sensors' mean ground (bearing-only tracks drift vertically)
    max_agl_m: float = 6000.0  # m; upper altitude bound above the mean ground
    max_vu_mps: float = 40.0  # a terminal dive is the fastest vertical motion


def _subset(tr: TrackArrays, mask: np.ndarray) -> TrackArrays:
    """A copy of the rows ``mask`` of a TrackArrays."""
    out = TrackArrays()
    for f in TrackArrays.FIELDS:
        setattr(out, f, getattr(tr, f)[mask].copy())
    return out


def _motion_models(cfg: TrackerConfig) -> list[motion.MotionModel]:
    """The configured motion models: explicit ones, else CV (plus the manoeuvring CV with ``imm``)."""
    if cfg.motion_models:
        try:
            models = [motion.build(m) if isinstance(m, str) else m for m in cfg.motion_models]
        except ValueError as exc:
            raise SkytraceError(str(exc)) from None
    else:
        models = [motion.ConstantVelocity(cfg.q_h, cfg.q_v)]
        if cfg.imm:
            models.append(motion.ConstantVelocity(cfg.q_h_manoeuvre, cfg.q_v_manoeuvre, name="cv-manoeuvre"))
    if len(models) > 1 and not (len(cfg.imm_sojourn_s) == len(cfg.imm_mu0) == len(models)):
        raise SkytraceError(f"{len(models)} motion models need imm_sojourn_s and imm_mu0 of that length")
    return models


@dataclass
class TrackArrays:
    """All live tracks as columns."""

    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    P: np.ndarray = field(default_factory=lambda: np.zeros((0, 6, 6)))
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    confirmed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    last_update: np.ndarray = field(default_factory=lambda: np.zeros(0))
    born: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seen: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))  # up to 4 distinct sensors
    seen_hits: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))  # updates from each
    seen_t: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # last update from each
    seen_dt: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # mean interval between them (NaN: <2)
    llr: np.ndarray = field(default_factory=lambda: np.zeros(0))  # SPRT log-likelihood ratio (scanning sensors)
    last_sensor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    last_cross: np.ndarray = field(default_factory=lambda: np.zeros(0))  # last update by a different sensor
    cls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # target class (-1: unclassified)
    silence: np.ndarray = field(default_factory=lambda: np.zeros(0))  # log-likelihood of silent sensors (<= 0)
    silence_power: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nats the silence test could bring
    mu: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # IMM model probabilities
    xm: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 6)))  # IMM model-conditioned states
    Pm: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 6, 6)))

    FIELDS = ("x", "P", "t", "id", "confirmed", "hits", "last_update", "born", "seen", "seen_hits", "seen_t",
              "seen_dt", "llr", "last_sensor",
              "last_cross", "cls", "silence", "silence_power", "mu", "xm", "Pm")

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def keep(self, mask: np.ndarray) -> None:
        for f in self.FIELDS:
            setattr(self, f, getattr(self, f)[mask])

    def append(self, other: TrackArrays) -> None:
        for f in self.FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), getattr(other, f)]))

    def n_sensors(self, min_hits: int = 1) -> np.ndarray:
        """Distinct sensors that contributed at least ``min_hits`` updates."""
        return ((self.seen >= 0) & (self.seen_hits >= min_hits)).sum(axis=1)


class Tracker:
    """Streaming tracker. ``ingest`` detections in any order, ``advance`` the clock, read confirmed tracks."""

    def __init__(self, sensors: SensorTable, frame: geo.LocalFrame | None = None,
                 config: TrackerConfig | None = None):
        self.sensors = sensors
        self.cfg = config or TrackerConfig()
        if frame is None:
            ok = np.isfinite(sensors.lat)
            lat0 = float(np.mean(sensors.lat[ok])) if ok.any() else 49.0
            lon0 = float(np.mean(sensors.lon[ok])) if ok.any() else 31.0
            alt0 = float(np.mean(sensors.alt_m[ok])) if ok.any() else 0.0
            frame = geo.LocalFrame(lat0, lon0, alt0)
        self.frame = frame
        # per-sensor transform from the frame to the sensor's local ENU: d = M p + b
        S = len(sensors)
        self.M = np.zeros((S, 3, 3))
        self.b = np.zeros((S, 3))
        self.sensor_pos = np.full((S, 3), np.nan)
        fixed = np.isfinite(sensors.ecef_m[:, 0])
        if fixed.any():
            Rs = geo.enu_rotation(sensors.lat[fixed], sensors.lon[fixed]).reshape(-1, 3, 3)
            self.M[fixed] = Rs @ frame.rotation.T
            self.b[fixed] = np.einsum("nij,nj->ni", Rs, frame.origin_ecef_m - sensors.ecef_m[fixed])
            self.sensor_pos[fixed] = frame.ecef_to_enu(sensors.ecef_m[fixed])
        self.M[~fixed] = np.eye(3)
        self.sound_speed = sensors.sound_speed_mps
        rng_default = np.where(np.isfinite(sensors.max_range_m), sensors.max_range_m, DEFAULT_REACH_M)
        reach_factor = np.array([registry.by_code(k).reach_factor for k in sensors.kind]) if S else np.zeros(0)
        self.audible_m = np.minimum(reach_factor * rng_default, self.cfg.acoustic_gate_range_m)
        self.geom = SensorGeometry(self.M, self.b, self.sensor_pos, self.audible_m, self.sound_speed)
        self.trusted = (sensors.trusted.copy() if sensors.trusted is not None and self.cfg.trust_sensors
                        else np.zeros(S, dtype=bool))
        self.pd = sensors.pd.copy() if sensors.pd is not None else np.full(S, np.nan)
        self.sensor_last_t = np.full(S, -np.inf)  # time of each sensor's latest processed report
        self.sensor_look_s = np.full(S, np.nan)  # each sensor's look interval, learnt over its tracks
        self.clutter_density = score.ClutterDensity(S)  # unexplained plots per m^2 per s (track score)
        self.models = _motion_models(self.cfg)
        self.use_imm = len(self.models) > 1
        self._clutter_kinds = registry.codes_where("bearing_clutter_map")
        self._bearing_kinds = registry.codes_where("initiation", "bearing")
        self._plot_kinds = registry.codes_where("initiation", "plot")
        self.gate = {d: chi2.ppf(self.cfg.gate_p, d) for d in (1, 2, 3)}
        fixed_alt = sensors.alt_m[fixed] if fixed.any() else np.array([frame.alt0_m])
        self.ground_alt_m = float(np.median(fixed_alt)) - 10.0
        self.silence = silence.SilenceModel(self.sensor_pos, sensors.max_range_m, sensors.kind,
                                            sensors.sound_speed_mps, self.ground_alt_m, self.cfg)
        self._heard_key = np.zeros(0, np.int64)  # (track id * n_sensors + sensor) of recent gated pairs ...
        self._heard_t = np.zeros(0)  # ... and when
        self._silence_t = -np.inf
        self.tracks = TrackArrays()
        K = len(self.models) if self.use_imm else 0  # no model-conditioned states to carry without the IMM
        self.tracks.mu, self.tracks.xm, self.tracks.Pm = np.zeros((0, K)), np.zeros((0, K, 6)), np.zeros(
            (0, K, 6, 6))
        self._names: dict[int, str] = {}
        self.next_id = 1
        self.buffer: list[MeasBatch] = []
        self.pool = initiation.BearingPool.empty()
        self.n_bins = max(1, int(round(360.0 / self.cfg.clutter_map_bin_deg)))
        self.clutter_map = np.zeros((len(sensors), self.n_bins))
        self.clutter_map_t = -np.inf
        self._frame_suppressed = np.zeros(0, dtype=bool)
        self._frame_radius = np.zeros(0)
        self._managed_t = -np.inf  # time of the latest track management
        self._hit_d2 = np.zeros(0)
        self._tentative_taker = np.zeros(0, dtype=bool)
        self.lost = TrackArrays()  # recently deleted confirmed tracks, for re-acquisition (bounded by the window)
        self.lost.mu, self.lost.xm, self.lost.Pm = self.tracks.mu, self.tracks.xm, self.tracks.Pm
        self.t_processed = -np.inf
        self.stats = {"tracks_reacquired": 0, "detections_in": 0, "processed": 0, "assigned": 0, "late_dropped": 0,
                      "tracks_started": 0, "tracks_confirmed": 0, "tracks_deleted": 0, "frames": 0}

    # ------------------------------------------------------------------------------------------------ streaming
    def ingest(self, batch: DetectionBatch) -> None:
        """Accept detections (any order). Reports older than what was already processed are counted as late."""
        if not len(batch):
            return
        self.stats["detections_in"] += len(batch)
        late = batch.t < self.t_processed
        if late.any():
            self.stats["late_dropped"] += int(late.sum())
            batch = batch.take(~late)
        if len(batch):
            self.buffer.append(prepare(batch, self.sensors, self.frame))

    def heartbeat(self, sensor: np.ndarray, t: np.ndarray) -> None:
        """Heartbeats: sensor rows ``sensor`` were alive (and heard nothing) at times ``t``. Only alive sensors'
        silence counts as negative information (``alive_timeout_s``); any report also proves its sensor alive."""
        sensor = np.asarray(sensor, dtype=np.int64).ravel()
        t = np.broadcast_to(np.asarray(t, dtype=float), sensor.shape)
        ok = (sensor >= 0) & (sensor < len(self.sensors)) & np.isfinite(t)
        self.stats["heartbeats"] = self.stats.get("heartbeats", 0) + int(ok.sum())
        self.silence.add_heartbeats(sensor[ok], t[ok])

    def advance(self, t_now: float) -> TrackSnapshot:
        """Process every buffered report with t <= t_now - lag_s; return confirmed tracks predicted to t_now."""
        cutoff = t_now - self.cfg.lag_s
        if self.buffer:
            allm = MeasBatch.concat(self.buffer)
            ready = allm.t <= cutoff
            self.buffer = [allm.take(~ready)] if (~ready).any() else []
            m = allm.take(np.flatnonzero(ready)[np.argsort(allm.t[ready], kind="stable")])
            if len(m):
                # a silence of hours (or one absurd timestamp) costs nothing: no frame is stepped through
                start = self.t_processed if np.isfinite(self.t_processed) else m.t[0]
                # frames (start + (k - 1) frame_s, start + k frame_s], k >= 0: reports dated exactly at the last
                # processed instant (they arrived just after it) form their own frame (k = 0) rather than joining the
                # next look of the same sensor; only frames holding reports are visited
                fs = self.cfg.frame_s
                k = np.maximum(np.ceil((m.t - start) / fs), 0).astype(np.int64)
                bounds = np.flatnonzero(np.diff(k)) + 1
                for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(m)], strict=True):
                    self._process_frame(m.take(slice(int(lo), int(hi))), float(start + k[lo] * fs))
        if cutoff > self.t_processed:
            # the last frame was managed at its end; within a twentieth of a frame of that, nothing can change
            if cutoff - self._managed_t > 0.05 * self.cfg.frame_s:
                self._manage(cutoff, merge=False)
            self.t_processed = cutoff
        return self.snapshot(t_now)

    # ------------------------------------------------------------------------------------------------- frame
    def _process_frame(self, m: MeasBatch, t_end: float) -> None:
        self.stats["frames"] += 1
        self.stats["processed"] += len(m)
        np.maximum.at(self.sensor_last_t, m.sensor, m.t)
        self.silence.note_reports(m.sensor, m.t)
        self.silence.apply_heartbeats(t_end)
        assigned = np.zeros(len(m), dtype=bool)
        suppressed, bins = self._clutter_lookup(m, t_end)
        self._frame_suppressed = suppressed
        self._tentative_taker = np.zeros(len(m), dtype=bool)
        centre, radius = self._gate_regions(m)
        self._frame_radius = radius
        if len(self.tracks):
            ti, dj, cost = self._gate(m, t_end, centre, radius)
            self._note_heard(ti, dj, m, t_end)
            keep = ~(suppressed[dj] & ~self.tracks.confirmed[ti])
            ti, dj, cost = ti[keep], dj[keep], cost[keep]
            if ti.size:
                at, ad = self._associate(ti, dj, cost, m)
                if at.size:
                    self._tentative_taker[ad] = ~self.tracks.confirmed[at]
                    self._update_rounds(at, ad, m)
                    self._silence_hits(at, m.sensor[ad])
                    assigned[ad] = True
                    self.stats["assigned"] += int(ad.size)
        self._observe_clutter_density(m, centre, ~assigned | self._tentative_taker)
        # the map learns from bearings nothing confirmed explains (unassigned, or taken by a tentative track)
        unexplained = (~assigned | self._tentative_taker) & self._clutter_kinds[m.kind]
        if unexplained.any():
            np.add.at(self.clutter_map, (m.sensor[unexplained], bins[unexplained]), 1.0)
        un = np.flatnonzero(~assigned & ~suppressed)
        if un.size:
            self._initiate(m.take(un), t_end)
        self._silence_update(t_end)
        self._manage(t_end)
        self._managed_t = t_end

    def _silence_hits(self, at: np.ndarray, sensor: np.ndarray) -> None:
        """Detections cancel silence: each gives back ``silence_hit_nats``; a hit of a scanning sensor (one with a
        ``pd``: a radar) clears it, since a radar also sees a target that is quiet (an electric drone) where
        acoustic nodes, rightly, hear nothing. The score never goes above 0."""
        sil = self.tracks.silence
        np.add.at(sil, at, self.cfg.silence_hit_nats)
        sil[at[np.isfinite(self.pd[sensor])]] = 0.0
        np.minimum(sil, 0.0, out=sil)

    def _note_heard(self, ti: np.ndarray, dj: np.ndarray, m: MeasBatch, t_end: float) -> None:
        """Remember the (track, sensor) pairs with a gated detection: for ``silence_grace_s`` they are not silent."""
        keep = self._heard_t >= t_end - self.cfg.silence_grace_s
        key = self.tracks.id[ti] * len(self.sensors) + m.sensor[dj]
        self._heard_key = np.concatenate([self._heard_key[keep], key])
        self._heard_t = np.concatenate([self._heard_t[keep], np.full(key.size, t_end)])

    def _silence_update(self, t_end: float) -> None:
        """Forget old silence and add this frame's: alive sensors that should hear a track but did not
        (:mod:`skytrace.tracking.silence`)."""
        cfg, tr = self.cfg, self.tracks
        dt = min(t_end - self._silence_t, 10.0 * cfg.frame_s) if np.isfinite(self._silence_t) else cfg.frame_s
        self._silence_t = max(self._silence_t, t_end)
        if not (cfg.silence and len(tr) and len(self.silence)) or dt <= 0:
            return
        tr.silence *= np.exp(-dt / cfg.silence_memory_s)
        t_mid = t_end - 0.5 * dt
        pe, var_h = self._predict_horizontal(np.maximum(t_mid - tr.t, 0.0))
        agl = (self.frame.alt0_m + tr.x[:, 2] + (tr.x[:, 0] ** 2 + tr.x[:, 1] ** 2) / (2 * geo.EARTH_RADIUS_M)
               - self.ground_alt_m)  # as in _bound_altitude (spherical Earth)
        recent = self._heard_t >= t_end - cfg.silence_grace_s
        missed, power = self.silence.missed_llr(
            pe, tr.x[:, 3:5], agl, np.sqrt(np.maximum(var_h, 0.0)), np.sqrt(np.maximum(tr.P[:, 2, 2], 0.0)),
            tr.id, self._heard_key[recent], t_mid, dt)
        # a track a scanning sensor (radar) still sees is left to that sensor's own missed looks (existence): it may
        # be a quiet target that acoustic nodes cannot hear
        scan = (tr.seen >= 0) & np.isfinite(self.pd[np.maximum(tr.seen, 0)])
        look = np.where(np.isfinite(tr.seen_dt), 3.0 * tr.seen_dt, 12.0)
        radar_held = (scan & (tr.seen_t >= t_end - np.maximum(look, cfg.silence_grace_s))).any(axis=1)
        tr.silence += np.where(radar_held, 0.0, missed)
        tr.silence_power += power

    def _clutter_lookup(self, m: MeasBatch, t_now: float) -> tuple[np.ndarray, np.ndarray]:
        """Decay the bearing clutter map to ``t_now``; which bearings (of families with a clutter map) fall in a
        hot (confuser) bin."""
        if np.isfinite(self.clutter_map_t) and t_now > self.clutter_map_t:
            self.clutter_map *= np.exp(-(t_now - self.clutter_map_t) / self.cfg.clutter_map_tau_s)
        self.clutter_map_t = max(self.clutter_map_t, t_now)
        bins = np.zeros(len(m), dtype=np.int64)
        ac = self._clutter_kinds[m.kind]
        bins[ac] = (np.floor(np.degrees(np.mod(m.z[ac, 0], 2 * np.pi)) / self.cfg.clutter_map_bin_deg)
                    ).astype(np.int64) % self.n_bins
        suppressed = ac & (self.clutter_map[m.sensor, bins] > self.cfg.clutter_map_threshold)
        self.stats["clutter_suppressed"] = self.stats.get("clutter_suppressed", 0) + int(suppressed.sum())
        return suppressed, bins

    def _gate_regions(self, m: MeasBatch) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal discs (centres, radii) that hold every track that could have produced each detection."""
        centre = np.zeros((len(m), 2))
        radius = np.zeros(len(m))
        for family, rows in registry.groups(m.kind):
            centre[rows], radius[rows] = family.gate_region(m.z[rows], m.R[rows], m.sensor[rows], self.geom)
        return centre, radius

    def _observe_clutter_density(self, m: MeasBatch, centre: np.ndarray, unexplained: np.ndarray) -> None:
        """Feed the per-sensor density of plots no confirmed track explains (the track score's pf)."""
        plots = self._plot_kinds[m.kind]
        if plots.any():
            self.clutter_density.observe(m.sensor[plots], m.t[plots], centre[plots], unexplained[plots])

    def _gate(self, m: MeasBatch, t_ref: float, centre: np.ndarray, radius: np.ndarray):
        tr = self.tracks
        pe, var_h = self._predict_horizontal(np.maximum(t_ref - tr.t, 0.0))
        sig_tr = np.sqrt(np.maximum(var_h, 0.0))
        # tracks in tiers of position uncertainty, each with its own KD-tree and slack: one coasting track with a
        # wide sigma no longer widens every detection's query (the pair count drives the cost of a frame)
        tiers = np.digitize(sig_tr, GATE_SIGMA_TIERS_M)
        speed = np.maximum(np.hypot(tr.x[:, 3], tr.x[:, 4]), 60.0)  # reports up to a frame (+1 s) off t_ref
        ti_parts, dj_parts = [], []
        for tier in np.unique(tiers):
            members = np.flatnonzero(tiers == tier)
            slack = (min(4.0 * float(np.max(sig_tr[members])), 20_000.0)
                     + float(np.max(speed[members])) * (self.cfg.frame_s + 1.0))
            hits = cKDTree(pe[members]).query_ball_point(centre, radius + slack, return_sorted=False)
            lens = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
            if lens.sum():
                ti_parts.append(members[np.concatenate([np.asarray(h, dtype=np.int64) for h in hits if h])])
                dj_parts.append(np.repeat(np.arange(len(m)), lens))
        if not ti_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        ti, dj = np.concatenate(ti_parts), np.concatenate(dj_parts)
        d2, logdet, dof = self._mahalanobis(ti, dj, m)
        thr = np.array([0.0, self.gate[1], self.gate[2], self.gate[3]])[dof]
        ok = d2 < thr
        cost = d2 + logdet + self.cfg.tentative_penalty * (~tr.confirmed[ti])
        return ti[ok], dj[ok], cost[ok]

    def _predict(self, ti: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted combined states and covariances of tracks ``ti`` over dt: the motion model, or with the IMM
        the moment-matched mixture of every model's prediction (model probabilities held)."""
        tr = self.tracks
        if not self.use_imm:
            return self.models[0].predict(tr.x[ti], tr.P[ti], dt)
        xm, Pm = np.empty_like(tr.xm[ti]), np.empty_like(tr.Pm[ti])
        for k, model in enumerate(self.models):
            xm[:, k], Pm[:, k] = model.predict(tr.xm[ti, k], tr.Pm[ti, k], dt)
        return imm.combine(tr.mu[ti], xm, Pm)

    def _predict_horizontal(self, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal positions and position variances of every track predicted over dt (gating, deletion)."""
        tr = self.tracks
        if not self.use_imm:
            return self.models[0].predict_horizontal(tr.x, tr.P, dt)
        x, P = self._predict(np.arange(len(tr)), dt)
        return x[:, :2], P[:, 0, 0] + P[:, 1, 1]

    def _pair_predict(self, ti: np.ndarray, t: np.ndarray):
        return self._predict(ti, np.maximum(t - self.tracks.t[ti], 0.0))

    def _innovation(self, x, P, m: MeasBatch, dj: np.ndarray):
        kind = m.kind[dj]
        h, H = predict_measurements(x, kind, m.sensor[dj], self.geom, m.has_el[dj])
        nu = innovation(m.z[dj], h, kind)
        S = H @ P @ np.swapaxes(H, 1, 2) + m.R[dj]
        return nu, H, S

    def _mahalanobis(self, ti, dj, m: MeasBatch):
        x, P = self._pair_predict(ti, m.t[dj])
        nu, _, S = self._innovation(x, P, m, dj)
        L = np.linalg.cholesky(S)
        y = np.linalg.solve(L, nu[:, :, None])[:, :, 0]
        d2 = np.einsum("ni,ni->n", y, y)
        logdet = 2 * np.log(np.abs(np.diagonal(L, axis1=1, axis2=2))).sum(axis=1)
        return d2, logdet, measured_dof(m.kind[dj], m.has_el[dj])

    def _associate(self, ti, dj, cost, m: MeasBatch):
        """GNN: one detection per (track, sensor), one track per detection; uncontested pairs directly, the
        contested ones in one sparse LAP."""
        row_key = ti * len(self.sensors) + m.sensor[dj]
        rk, row = np.unique(row_key, return_inverse=True)
        n_r, n_c = rk.size, len(m)
        row_deg = np.bincount(row, minlength=n_r)
        col_deg = np.bincount(dj, minlength=n_c)
        simple = (row_deg[row] == 1) & (col_deg[dj] == 1)
        at = [ti[simple]]
        ad = [dj[simple]]
        hard = np.flatnonzero(~simple)
        if hard.size:  # contested pairs: one sparse LAP over all components (assignment.py)
            pick = hard[assignment.assign(row[hard], dj[hard], cost[hard])]
            at.append(ti[pick])
            ad.append(dj[pick])
        return np.concatenate(at), np.concatenate(ad)

    def _update_rounds(self, at: np.ndarray, ad: np.ndarray, m: MeasBatch) -> None:
        order = np.lexsort((m.t[ad], at))
        at, ad = at[order], ad[order]
        first = np.concatenate([[True], at[1:] != at[:-1]])
        start_idx = np.maximum.accumulate(np.where(first, np.arange(at.size), 0))
        rank = np.arange(at.size) - start_idx
        tr = self.tracks
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            ti, dj = at[sel], ad[sel]
            _, var_pred = self.models[0].predict_horizontal(tr.x[ti], tr.P[ti], np.maximum(m.t[dj] - tr.t[ti], 0.0))
            if self.use_imm:
                self._imm_update(ti, dj, m)
            else:
                x, P = self._pair_predict(ti, m.t[dj])
                tr.x[ti], tr.P[ti], _ = self._kalman_update(x, P, m, dj, likelihood=False)
            tr.t[ti] = m.t[dj]
            classified = m.cls[dj] >= 0  # the latest classified report gives the track its class
            tr.cls[ti[classified]] = m.cls[dj][classified]
            # a bearing from a confuser direction updates the state but does not keep the track alive
            live = ~self._frame_suppressed[dj] if len(self._frame_suppressed) == len(m) else np.ones(dj.size, bool)
            tr.hits[ti[live]] += 1
            tr.last_update[ti[live]] = m.t[dj][live]
            s = m.sensor[dj]
            crossed = (s != tr.last_sensor[ti]) & live
            tr.last_cross[ti[crossed]] = m.t[dj][crossed]
            tr.last_sensor[ti[live]] = s[live]
            seen, sh = tr.seen[ti], tr.seen_hits[ti]
            match = seen == s[:, None]
            new = ~match.any(axis=1)
            free = (seen < 0).any(axis=1)
            slot = np.argmax(seen < 0, axis=1)
            add = new & free
            seen[add, slot[add]] = s[add]
            mine = (match | ((seen == s[:, None]) & add[:, None])) & live[:, None]
            sh[mine] += 1
            tr.seen[ti], tr.seen_hits[ti] = seen, sh
            # look interval of each sensor on this track (its scan period, or its reporting cadence)
            st, sdt = tr.seen_t[ti], tr.seen_dt[ti]
            t_upd = np.broadcast_to(m.t[dj][:, None], st.shape)
            gap = t_upd - st
            first = ~np.isfinite(sdt)
            upd = mine & (gap > 0.5 * self.cfg.frame_s) & np.isfinite(st)
            # the sensor's look interval on this track; a track's first gap is read with the sensor's own look
            # interval (learnt over all its tracks), so that a tentative track fed twice 10 looks apart counts
            # the 9 looks it missed in between
            ref = np.where(first, self.sensor_look_s[np.maximum(seen, 0)], sdt)
            known = upd & np.isfinite(ref)
            missed = np.where(known, np.maximum(np.round(gap / np.where(known, ref, 1.0)) - 1, 0), 0.0)
            # SPRT: this hit, and the looks of the same sensor missed since its previous hit
            pd = np.where(seen >= 0, self.pd[np.maximum(seen, 0)], np.nan)
            scanning = mine & np.isfinite(pd)
            if scanning.any():
                pdc = np.clip(np.where(scanning, pd, 0.5), 1e-3, 0.999)
                hit, miss = self._track_score(m, dj, var_pred, np.where(np.isfinite(ref), ref, gap), pdc)
                step = hit + missed * miss
                tr.llr[ti] += np.sum(np.where(scanning, step, 0.0), axis=1)
            # the look interval: the gap since this sensor's previous hit over the looks it spans (missed looks
            # must not stretch the interval, or the misses that follow would be undercounted)
            per_look = gap / (missed + 1.0)
            sdt[upd & first] = per_look[upd & first]
            est = upd & ~first
            sdt[est] = 0.7 * sdt[est] + 0.3 * np.minimum(per_look[est], 3 * sdt[est])
            if est.any():
                self._learn_look_interval(seen[est], per_look[est])
            st[mine] = t_upd[mine]
            tr.seen_t[ti], tr.seen_dt[ti] = st, sdt

    def _learn_look_interval(self, sensor: np.ndarray, per_look: np.ndarray) -> None:
        """Each sensor's look interval (its scan period or reporting cadence), averaged over its tracks."""
        S = len(self.sensor_look_s)
        cnt = np.bincount(sensor, minlength=S)
        mean = np.bincount(sensor, weights=per_look, minlength=S) / np.maximum(cnt, 1)
        ok = cnt > 0
        old = self.sensor_look_s[ok]
        self.sensor_look_s[ok] = np.where(np.isfinite(old), 0.9 * old + 0.1 * mean[ok], mean[ok])

    def _track_score(self, m: MeasBatch, dj: np.ndarray, var_pred: np.ndarray, look_s: np.ndarray, pd: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihood ratios of each hit and of each missed look, per row (hit) and sensor slot (columns):
        the plot's likelihood against the sensor's clutter density, and (1 - pd) / (1 - pf) with pf the chance
        that a false track finds clutter in this gate (:mod:`skytrace.tracking.score`); with the fixed
        ``sprt_false_continuation`` until the sensor's clutter density is known."""
        var_h = (var_pred + (self._frame_radius[dj] / 4.0) ** 2)[:, None]  # + the plot's horizontal variance
        lam = self.clutter_density.density(m.sensor[dj])[:, None]
        look = np.where(np.isfinite(look_s) & (look_s > 0), look_s, np.nan)
        fallback = self.cfg.sprt_false_continuation
        pf = score.false_continuation(lam, look, var_h, self.gate[2], fallback)
        hit = score.hit_llr(pd, self._hit_d2[:, None], var_h, lam * look, fallback)
        return hit, np.log((1 - pd) / (1 - np.minimum(pf, 0.5 * (1 + pd))))

    def _kalman_update(self, x: np.ndarray, P: np.ndarray, m: MeasBatch, dj: np.ndarray, likelihood: bool = True):
        """EKF update of predicted pairs; returns x, P (Joseph form, symmetrised) and the log-likelihood (or None
        when ``likelihood`` is False: the single-model filter does not need it)."""
        nu, H, S = self._innovation(x, P, m, dj)
        PHt = P @ np.swapaxes(H, 1, 2)
        K = np.swapaxes(np.linalg.solve(S, np.swapaxes(PHt, 1, 2)), 1, 2)
        x = x + np.einsum("nij,nj->ni", K, nu)
        IKH = np.eye(6)[None] - K @ H
        P = IKH @ P @ np.swapaxes(IKH, 1, 2) + K @ m.R[dj] @ np.swapaxes(K, 1, 2)
        # padded rows (H = 0, nu = 0, S = R = 1) add nothing to the distance or the log-likelihood
        maha = np.einsum("ni,ni->n", nu, np.linalg.solve(S, nu[:, :, None])[:, :, 0])
        self._hit_d2 = maha  # the hits' squared Mahalanobis distances (track score)
        if not likelihood:
            return x, 0.5 * (P + np.swapaxes(P, 1, 2)), None
        _, logdet = np.linalg.slogdet(S)
        return x, 0.5 * (P + np.swapaxes(P, 1, 2)), -0.5 * (maha + logdet)

    def _imm_update(self, ti: np.ndarray, dj: np.ndarray, m: MeasBatch) -> None:
        """IMM cycle (mixing, per-model prediction and EKF update, model probabilities, combination)."""
        cfg, tr = self.cfg, self.tracks
        dt = np.maximum(m.t[dj] - tr.t[ti], 0.0)
        c, x0, P0 = imm.mix(tr.mu[ti], tr.xm[ti], tr.Pm[ti], dt, np.asarray(cfg.imm_sojourn_s))
        xm, Pm, ll = np.empty_like(x0), np.empty_like(P0), np.empty(c.shape)
        d2 = None
        for k, model in enumerate(self.models):
            xk, Pk = model.predict(x0[:, k], P0[:, k], dt)
            xm[:, k], Pm[:, k], ll[:, k] = self._kalman_update(xk, Pk, m, dj)
            d2 = self._hit_d2 if d2 is None else d2
        self._hit_d2 = d2  # the first (cruise) model's distances
        mu = imm.posterior_probabilities(c, ll)
        tr.mu[ti], tr.xm[ti], tr.Pm[ti] = mu, xm, Pm
        tr.x[ti], tr.P[ti] = imm.combine(mu, xm, Pm)

    # ------------------------------------------------------------------------------------------- initiation
    def _new_tracks(self, x: np.ndarray, P: np.ndarray, t: np.ndarray, hits: np.ndarray, seen: np.ndarray,
                    cls: np.ndarray | None = None) -> None:
        n = x.shape[0]
        if n == 0:
            return
        new = TrackArrays(x=x, P=P, t=t, id=np.arange(self.next_id, self.next_id + n, dtype=np.int64),
                          confirmed=np.zeros(n, bool), hits=hits.astype(np.int32), last_update=t.copy(),
                          born=t.copy(), seen=seen.astype(np.int32), seen_hits=(seen >= 0).astype(np.int32),
                          seen_t=np.where(seen >= 0, t[:, None], -np.inf), seen_dt=np.full(seen.shape, np.nan),
                          llr=self._first_llr(seen),
                          last_sensor=seen[:, 0].astype(np.int32), last_cross=t.copy(), silence=np.zeros(n),
                          silence_power=np.zeros(n),
                          cls=np.full(n, -1, np.int16) if cls is None else cls.astype(np.int16),
                          # IMM model states only when the IMM is on (zero models otherwise: nothing to copy)
                          mu=np.tile(np.asarray(self.cfg.imm_mu0, dtype=float), (n, 1)) if self.use_imm
                          else np.zeros((n, 0)),
                          xm=np.repeat(x[:, None], len(self.models) if self.use_imm else 0, axis=1),
                          Pm=np.repeat(P[:, None], len(self.models) if self.use_imm else 0, axis=1))
        self.next_id += n
        self.tracks.append(new)
        self.stats["tracks_started"] += n

    def _initiate(self, m: MeasBatch, t_end: float) -> None:
        cfg = self.cfg
        direct = self._plot_kinds[m.kind]
        if cfg.init_from_position and direct.any():
            d = m.take(np.flatnonzero(direct))
            pos, cov = initiation.cartesian_from_plots(d, self.geom)
            n = len(d)
            x = np.zeros((n, 6))
            x[:, :3] = pos
            P = np.zeros((n, 6, 6))
            P[:, :3, :3] = cov
            P[:, 3, 3] = P[:, 4, 4] = self._class_limits(d.cls)["init_vel_sigma_mps"] ** 2
            P[:, 5, 5] = cfg.init_vu_sigma_mps**2
            seen = np.full((n, 4), -1)
            seen[:, 0] = d.sensor
            self._new_tracks(x, P, d.t.copy(), np.ones(n), seen, d.cls)
        ac = self._bearing_kinds[m.kind]
        if ac.any():
            self.pool = self.pool.add(m.take(np.flatnonzero(ac)), self.M, self.sensor_pos)
        self.pool = self.pool.expire(t_end - cfg.init_window_s)
        if len(self.pool) >= cfg.init_min_nodes:
            found = initiation.triangulate(self.pool, self.M, self.b, self.sensor_pos, cfg)
            if found is not None:
                x, P, t, hits, seen, used = found
                self._new_tracks(x, P, t, hits, seen)
                self.pool = self.pool.drop(used)

    # ------------------------------------------------------------------------------------------- management
    def _manage(self, t_now: float, merge: bool = True) -> None:
        tr = self.tracks
        if not len(tr):
            return
        cfg = self.cfg
        # a track only one (untrusted) sensor keeps updating is not corroborated: a confuser (a generator, a road)
        # or a spoofed node holds a bearing steady forever; such updates do not keep a track alive
        hold = np.where(self.trusted[tr.last_sensor], np.inf, cfg.single_sensor_hold_s)
        r_exist = self.existence(t_now)
        silent = t_now - np.minimum(tr.last_update, tr.last_cross + hold)
        _, var_h = self._predict_horizontal(np.maximum(t_now - tr.t, 0.0))
        sig = np.sqrt(np.maximum(var_h, 0.0))
        speed = np.hypot(tr.x[:, 3], tr.x[:, 4])
        lim = self._class_limits(tr.cls)
        dead = (np.where(tr.confirmed, silent > cfg.confirmed_timeout_s, silent > cfg.tentative_timeout_s)
                | (sig > cfg.max_pos_sigma_m) | (speed > lim["delete_speed_mps"])
                | (r_exist < cfg.existence_min)
                # refuted by silent bearing nodes: deleted when no longer reported (no plot will bring it back)
                | ((r_exist < cfg.existence_report_min) & (tr.silence < 0.0)))
        self._bound_altitude()
        sprt = tr.llr >= np.log((1 - 0.01) / cfg.sprt_alpha)
        plausible = self._moving_enough(lim["min_speed_mps"], speed) & (speed <= lim["max_speed_mps"])
        # a new track must also be known to move (a continuation of a lost track, below, is already known to),
        # unless the sequential test of a scanning sensor (which weighs target against clutter) passed
        moving = sprt | (lim["min_speed_mps"] <= 0) | (self._motion_d2() >= cfg.confirm_motion_chi2)
        promote = (~tr.confirmed) & (~dead) & ((tr.hits >= cfg.confirm_hits) | sprt) & self._corroborated(sprt) & (
            sig < cfg.confirm_max_sigma_m) & plausible & moving & (r_exist >= cfg.confirm_min_existence) & (
            self._silence_tested(t_now))
        tr.confirmed[promote] = True
        self.stats["tracks_confirmed"] += int(promote.sum())
        if promote.any() and len(self.lost):
            self._reacquire(np.flatnonzero(promote), t_now)
        # early re-acquisition: a tentative track that continues a recently lost confirmed track (same gate as
        # above) takes its id and confirmed status after ``reacquire_min_hits`` updates from two sensors (or a
        # trusted one), instead of waiting for full confirmation: the gap in the picture is shorter
        early = (~tr.confirmed) & (~dead) & (tr.hits >= cfg.reacquire_min_hits) & (
            (tr.n_sensors(1) >= 2) | (self.trusted[np.maximum(tr.seen, 0)] & (tr.seen >= 0)).any(axis=1)) & (
            sig < cfg.confirm_max_sigma_m) & plausible & (r_exist >= cfg.confirm_min_existence) & self._silence_tested(
            t_now)
        if early.any() and len(self.lost) and cfg.reacquire_min_hits > 0:
            back = self._reacquire(np.flatnonzero(early), t_now)
            tr.confirmed[back] = True
            self.stats["tracks_reacquired_early"] = self.stats.get("tracks_reacquired_early", 0) + int(back.size)
        lost = dead & tr.confirmed & (speed <= lim["max_speed_mps"])  # not duplicates (merged below)
        lost &= ~((r_exist < cfg.existence_min) & (tr.silence < np.log(0.1)))  # refuted by silence: not lost, gone
        if merge:
            dead |= self._duplicates(t_now, dead)
        if dead.any():
            self.stats["tracks_deleted"] += int(dead.sum())
            if lost.any():
                keep = lost.copy()
                self.lost.append(_subset(tr, keep))
            if len(self.lost):
                self.lost.keep(self.lost.last_update >= t_now - cfg.reacquire_window_s)
            for i in tr.id[dead]:
                self._names.pop(int(i), None)
            tr.keep(~dead)

    def _moving_enough(self, min_speed: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """The minimum-speed rule of confirmation. A track of a class that cannot hover (a Shahed) must show its
        speed beyond its velocity uncertainty (speed - sigma_v >= the class minimum: the noisy early estimate of
        a hovering object does not pass); an unclassified track must reach ``confirm_min_speed_mps`` (a still
        "track" is a confuser) — only a report's class (a multirotor) lets a track hover."""
        tr = self.tracks
        sig_v = np.sqrt(np.maximum(0.5 * (tr.P[:, 3, 3] + tr.P[:, 4, 4]), 0.0))
        return np.where(tr.cls >= 0, speed - sig_v >= min_speed, speed >= min_speed)

    def _motion_d2(self) -> np.ndarray:
        """Squared Mahalanobis distance of each track's horizontal velocity from zero: how sure the track is that
        it moves. A crossing of two stationary confusers' bearings gets a noisy first velocity whose *value* may
        pass the speed window, but not with this certainty; a drone's does after a few updates."""
        tr = self.tracks
        v = tr.x[:, 3:5]
        Pv = tr.P[:, 3:5, 3:5] + 1e-6 * np.eye(2)[None]
        return np.einsum("ni,ni->n", v, np.linalg.solve(Pv, v[:, :, None])[:, :, 0])

    def _class_limits(self, cls: np.ndarray) -> dict[str, np.ndarray]:
        """Motion limits of tracks or reports of class codes ``cls`` (skytrace.target_classes); unclassified
        ones (-1) get the tracker's own settings."""
        cfg = self.cfg
        return target_classes.limits(cls, {
            "min_speed_mps": cfg.confirm_min_speed_mps, "max_speed_mps": cfg.confirm_max_speed_mps,
            "delete_speed_mps": cfg.max_speed_mps, "init_vel_sigma_mps": cfg.init_vel_sigma_mps,
            "max_agl_m": cfg.max_agl_m})

    def _silence_tested(self, t_now: float) -> np.ndarray:
        """Tracks that may be confirmed as far as silence goes: supported by a scanning or trusted sensor, or the
        silence test has had ``confirm_silence_power`` nats of power, or ``confirm_silence_wait_s`` have passed."""
        tr, cfg = self.tracks, self.cfg
        if not cfg.silence or not len(self.silence):
            return np.ones(len(tr), bool)
        slot = np.maximum(tr.seen, 0)
        strong = ((tr.seen >= 0) & (np.isfinite(self.pd[slot]) | self.trusted[slot])).any(axis=1)
        return strong | (tr.silence_power >= cfg.confirm_silence_power) | (
            t_now - tr.born >= cfg.confirm_silence_wait_s)

    def _first_llr(self, seen: np.ndarray) -> np.ndarray:
        """SPRT log-likelihood ratio of new tracks: one hit of each scanning sensor that started them."""
        pd = np.where(seen >= 0, self.pd[np.maximum(seen, 0)], np.nan)
        pd = np.clip(pd, 1e-3, 0.999)
        return np.sum(np.where(np.isfinite(pd), np.log(pd / self.cfg.sprt_false_continuation), 0.0), axis=1)

    def _reacquire(self, new: np.ndarray, t_now: float) -> np.ndarray:
        """Give newly confirmed tracks the id of the recently lost confirmed track they continue (track-to-track
        association: the lost track's prediction and the new estimate agree within the chi-square gate of their
        summed horizontal covariances, and their velocities within ``reacquire_max_dv_mps``); greedy by distance,
        each lost track used once. Returns the rows of ``new`` that took a lost track's id."""
        tr, lo = self.tracks, self.lost
        xl, Pl = self.models[0].predict(lo.x, lo.P, np.maximum(t_now - lo.t, 0.0))
        xn, Pn = self._predict(new, np.maximum(t_now - tr.t[new], 0.0))
        d = xn[:, None, :2] - xl[None, :, :2]  # (new, lost, 2)
        S = Pn[:, None, :2, :2] + Pl[None, :, :2, :2]
        d2 = np.einsum("abi,abi->ab", d, np.linalg.solve(S, d[..., None])[..., 0])
        dv = np.linalg.norm(xn[:, None, 3:5] - xl[None, :, 3:5], axis=2)
        older = lo.born[None, :] < tr.born[new][:, None]
        ok = (d2 < self.gate[2]) & (dv < self.cfg.reacquire_max_dv_mps) & older
        taken: list[int] = []
        if not ok.any():
            return np.zeros(0, np.int64)
        cost = np.where(ok, d2, np.inf)
        used_lost = np.zeros(len(lo), bool)
        for a, b in zip(*np.unravel_index(np.argsort(cost, axis=None), cost.shape), strict=True):
            if not np.isfinite(cost[a, b]):
                break
            if used_lost[b] or tr.id[new[a]] == lo.id[b]:
                continue
            if np.any(tr.id == lo.id[b]):  # already re-used
                continue
            self._names.pop(int(tr.id[new[a]]), None)
            tr.id[new[a]] = lo.id[b]
            tr.born[new[a]] = lo.born[b]
            used_lost[b] = True
            taken.append(int(new[a]))
            self.stats["tracks_reacquired"] += 1
            cost[a, :] = np.inf
        if used_lost.any():
            lo.keep(~used_lost)
        return np.array(taken, dtype=np.int64)

    def existence(self, t_now: float) -> np.ndarray:
        """Existence probability of each track at ``t_now`` from negative information (IPDA-style, simplified).

        After an update the track exists with probability r0 (``existence_after_update`` when confirmed, 0.8 when
        tentative). Every sensor with a detection probability ``pd`` (a scanning sensor) that has updated this
        track at least twice has a look interval (the mean time between its updates: its scan period); each of its
        looks since the track's last update by *any* sensor that found nothing is a miss, counted only while that
        sensor is still reporting (a silent or dead sensor says nothing). With k_s misses of sensor s:
        r = r0 L / (r0 L + 1 - r0), L = prod_s (1 - pd_s)^k_s (Musicki, Evans & Stankovic, "Integrated
        probabilistic data association", IEEE TAC 39(6), 1994 — here without the detection-likelihood term: a
        detection resets r to r0 and confirmation stays the M-of-N rule).
        """
        tr, cfg = self.tracks, self.cfg
        r0 = np.where(tr.confirmed, cfg.existence_after_update, 0.8)
        slot = np.maximum(tr.seen, 0)
        pd = np.where(tr.seen >= 0, self.pd[slot], np.nan)
        usable = np.isfinite(pd) & np.isfinite(tr.seen_dt) & (tr.seen_dt > 0)
        if not usable.any():
            L = np.exp(tr.silence)
            return r0 * L / (r0 * L + 1 - r0)
        heard_until = np.minimum(self.sensor_last_t[slot], t_now)
        span = heard_until - tr.last_update[:, None]
        k = np.where(usable & (span > 0), np.floor(span / np.where(usable, tr.seen_dt, 1.0) + 0.05), 0.0)
        logL = np.sum(np.where(k > 0, k * np.log1p(-np.where(usable, np.minimum(pd, 0.999), 0.0)), 0.0), axis=1)
        logL += tr.silence
        L = np.exp(logL)
        return r0 * L / (r0 * L + 1 - r0)

    def _corroborated(self, sprt: np.ndarray | None = None) -> np.ndarray:
        """Tracks supported by ``confirm_min_sensors`` distinct sensors, or by one trusted sensor, each with at
        least ``confirm_hits_per_sensor`` updates (anti-spoofing: an untrusted sensor never confirms alone). A
        scanning sensor of a track that passed the sequential test needs two hits only: its hits' fit against
        its own clutter density is already in the test (one plot never confirms anything)."""
        tr, cfg = self.tracks, self.cfg
        solid = (tr.seen >= 0) & (tr.seen_hits >= cfg.confirm_hits_per_sensor)
        if sprt is not None:
            scanning = (tr.seen >= 0) & np.isfinite(self.pd[np.maximum(tr.seen, 0)])
            solid |= sprt[:, None] & scanning & (tr.seen_hits >= 2)
        trusted = solid & self.trusted[np.maximum(tr.seen, 0)]
        return (solid.sum(axis=1) >= cfg.confirm_min_sensors) | trusted.any(axis=1)

    def _bound_altitude(self) -> None:
        """Keep altitudes physical: a track below ground or above the ceiling is moved back, its vertical
        velocity zeroed and its vertical uncertainty kept wide (bearing-only geometry does not observe height)."""
        tr = self.tracks
        # height above the ellipsoid, spherical-Earth approximation (metres off at hundreds of km: enough here)
        alt = self.frame.alt0_m + tr.x[:, 2] + (tr.x[:, 0] ** 2 + tr.x[:, 1] ** 2) / (2 * geo.EARTH_RADIUS_M)
        lo = self.ground_alt_m + self.cfg.min_agl_m
        hi = self.ground_alt_m + self._class_limits(tr.cls)["max_agl_m"]
        np.clip(tr.x[:, 5], -self.cfg.max_vu_mps, self.cfg.max_vu_mps, out=tr.x[:, 5])
        bad = (alt < lo) | (alt > hi)
        if bad.any():
            target = np.clip(alt[bad], lo + 50.0, hi[bad] - 50.0)
            tr.x[bad, 2] += target - alt[bad]
            tr.x[bad, 5] = 0.0
            tr.P[bad, 2, 2] = np.maximum(tr.P[bad, 2, 2], self.cfg.init_alt_sigma_m**2)
            if self.use_imm:
                tr.xm[bad], tr.Pm[bad] = tr.x[bad, None], tr.P[bad, None]  # IMM: restart the models from the fix
        if self.use_imm:
            np.clip(tr.xm[:, :, 5], -self.cfg.max_vu_mps, self.cfg.max_vu_mps, out=tr.xm[:, :, 5])

    def _duplicates(self, t_now: float, dead: np.ndarray) -> np.ndarray:
        """Tracks that follow the same object: the one with fewer updates goes (confirmed ones win)."""
        tr = self.tracks
        out = np.zeros(len(tr), bool)
        if len(tr) < 2:
            return out
        dt = t_now - tr.t
        p = tr.x[:, :2] + tr.x[:, 3:5] * dt[:, None]
        pairs = cKDTree(p).query_pairs(self.cfg.merge_distance_m, output_type="ndarray")
        if pairs.size == 0:
            return out
        a, b = pairs[:, 0], pairs[:, 1]
        close_v = np.hypot(*(tr.x[a, 3:5] - tr.x[b, 3:5]).T) < self.cfg.merge_speed_mps
        close_u = np.abs(tr.x[a, 2] - tr.x[b, 2]) < 800
        a, b = a[close_v & close_u], b[close_v & close_u]
        score = tr.confirmed * 1e6 + tr.hits
        loser = np.where(score[a] >= score[b], b, a)
        out[loser] = True
        return out & ~dead

    # ------------------------------------------------------------------------------------------------ output
    def snapshot(self, t_now: float) -> TrackSnapshot:
        """Tracks predicted to ``t_now`` with their status: ``confirmed``; ``coasting`` (confirmed, no update for
        ``coast_status_s``); ``tentative`` (not yet confirmed, at least ``report_tentative_min_hits`` updates;
        only with ``report_tentative``). Tracks whose position sigma exceeds ``report_max_sigma_m`` are left out."""
        tr, cfg = self.tracks, self.cfg
        shown = tr.confirmed.copy()
        if cfg.report_tentative:
            shown |= tr.hits >= cfg.report_tentative_min_hits
        if len(tr) and cfg.existence_report_min > 0:
            shown &= self.existence(t_now) >= cfg.existence_report_min
        sel = np.flatnonzero(shown)
        if sel.size:
            x, P = self._predict(sel, np.maximum(t_now - tr.t[sel], 0.0))
            useful = np.sqrt(P[:, 0, 0] + P[:, 1, 1]) < cfg.report_max_sigma_m
            sel, x, P = sel[useful], x[useful], P[useful]
        if sel.size == 0:
            z = np.zeros(0)
            return TrackSnapshot(float(t_now), [], [], z, z, z, z, z, z, z)
        lat, lon, alt = self.frame.to_geodetic(x[:, 0], x[:, 1], x[:, 2])
        lat, lon, alt = np.atleast_1d(lat), np.atleast_1d(lon), np.atleast_1d(alt)
        alt = np.clip(alt, self.ground_alt_m + cfg.min_agl_m,
                      self.ground_alt_m + self._class_limits(tr.cls[sel])["max_agl_m"])
        v = self.frame.vector_from_local(lat, lon, x[:, 3:])
        sig = np.sqrt(P[:, 0, 0] + P[:, 1, 1])
        coast = (t_now - tr.last_update[sel]) > cfg.coast_status_s
        status = np.where(tr.confirmed[sel], np.where(coast, "coasting", "confirmed"), "tentative").tolist()
        return TrackSnapshot(
            t=float(t_now), track=[self._name(int(i)) for i in tr.id[sel]], status=status,
            lat=lat, lon=lon, alt_m=alt, ve=v[:, 0], vn=v[:, 1], vu=v[:, 2], pos_sigma_m=sig,
            sensor_rows=tr.seen[sel].copy(), sensor_names=self.sensors.ids)

    def _name(self, i: int) -> str:
        name = self._names.get(i)
        if name is None:
            name = self._names[i] = f"T{i:06d}"
        return name
