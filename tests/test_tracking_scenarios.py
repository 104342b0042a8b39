"""Tracker: motion and measurement models, multi-sensor initiation and confirmation, streaming with lag."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from skytrace.batch import ACOUSTIC, RADAR, DetectionBatch, SensorTable, TrackSnapshot
from skytrace.geo import LocalFrame, aer_from_ecef, enu_rotation
from skytrace.model import Sensor
from skytrace.tracking import Tracker, TrackerConfig

FRAME = LocalFrame(50.45, 30.52, 150.0)
T0 = 1_763_850_000.0


# ----------------------------------------------------------------------------------------------- helpers
def _node(i: str, e: float, n: float, kind: str = "acoustic", **kw) -> Sensor:
    lat, lon, alt = FRAME.to_geodetic(e, n, 0.0)
    base = {"bearing_sigma_deg": 2.0, "max_range_m": 5000.0}
    if kind == "radar":
        base = {"bearing_sigma_deg": 0.5, "elevation_sigma_deg": 0.5, "range_sigma_m": 30.0, "max_range_m": 40_000.0}
    base.update(kw)
    return Sensor(id=i, kind=kind, lat=float(lat), lon=float(lon), alt_m=float(alt), **base)


def _truth(t: np.ndarray, p0, v) -> np.ndarray:
    """Straight-line truth in the frame: (n, 3) positions at times t (s after T0)."""
    return np.asarray(p0, float)[None, :] + (t - T0)[:, None] * np.asarray(v, float)[None, :]


def _observe(table: SensorTable, rows: list[int], times: np.ndarray, p0, v, rng, with_delay: bool = True,
             el: bool = True) -> DetectionBatch:
    """Noisy detections of a straight-line target by the given sensors at the given reception times."""
    ts, ss, az_l, el_l, r_l = [], [], [], [], []
    for s in rows:
        ecef_s = table.ecef_m[s]
        rot = enu_rotation(table.lat[s], table.lon[s])
        c = table.sound_speed_mps[s]
        for t in times:
            tau = 0.0
            if table.kind[s] == ACOUSTIC and with_delay:
                for _ in range(30):  # exact retarded time by fixed point (contraction v/c)
                    p = _truth(np.array([t - tau]), p0, v)[0]
                    tau = np.linalg.norm(FRAME.enu_to_ecef(p) - ecef_s) / c
            p = _truth(np.array([t - tau]), p0, v)[0]
            az, elv, rng_m = aer_from_ecef(ecef_s[None], rot[None], FRAME.enu_to_ecef(p)[None])
            sb = table.bearing_sigma_deg[s]
            ts.append(t)
            ss.append(s)
            az_l.append(float(np.mod(az[0] + rng.normal(0, sb), 360.0)))
            el_l.append(float(elv[0] + rng.normal(0, sb)) if el else np.nan)
            r_l.append(float(rng_m[0] + rng.normal(0, table.range_sigma_m[s])) if table.kind[s] == RADAR
                       else np.nan)
    b = DetectionBatch.empty(len(ts))
    b.t = np.array(ts)
    b.sensor = np.array(ss, dtype=np.int32)
    b.bearing_deg, b.elevation_deg, b.range_m = np.array(az_l), np.array(el_l), np.array(r_l)
    return b


def _run(tracker: Tracker, batch: DetectionBatch, t_end: float, step_s: float = 1.0,
         statuses: tuple[str, ...] = ("confirmed", "coasting")) -> list[TrackSnapshot]:
    """Feed detections in time order (one second at a time) and step the clock; return the snapshots (only the
    tracks of ``statuses``: confirmed ones by default)."""
    order = np.argsort(batch.t, kind="stable")
    batch = batch.take(order)
    snaps = []
    lo = 0
    for t in np.arange(batch.t.min(), t_end, step_s):
        hi = int(np.searchsorted(batch.t, t, side="right"))
        if hi > lo:
            tracker.ingest(batch.take(slice(lo, hi)))
            lo = hi
        snaps.append(tracker.advance(float(t)).with_status(*statuses))
    return snaps


def _enu(snap: TrackSnapshot) -> np.ndarray:
    return np.column_stack(FRAME.to_enu(snap.lat, snap.lon, snap.alt_m)).reshape(-1, 3)


# ------------------------------------------------------------------------------------------------ models
def _table_and_tracker():
    sensors = [_node("mic-a", 0.0, 0.0), _node("mic-b", 3000.0, 500.0), _node("mic-c", -1500.0, 2500.0),
               _node("radar", 20_000.0, -5000.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    return table, Tracker(table, frame=FRAME)


# ------------------------------------------------------------------------------------------ whole tracker
def test_two_radars_track_one_drone_accurately():
    sensors = [_node("r1", 0.0, 0.0, kind="radar"), _node("r2", 30_000.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    rng = np.random.default_rng(3)
    p0, v = [10_000.0, -8000.0, 800.0], [-10.0, 45.0, 0.0]
    times = T0 + np.arange(0, 200, 4.0)
    det = DetectionBatch.concat([_observe(table, [0], times, p0, v, rng),
                                 _observe(table, [1], times + 2.0, p0, v, rng)])
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    snaps = _run(tr, det, T0 + 200)
    confirmed = [s for s in snaps if len(s)]
    assert confirmed and len(confirmed[-1]) == 1
    errs = [np.linalg.norm(_enu(s)[0] - _truth(np.array([s.t]), p0, v)[0]) for s in confirmed[-20:]]
    # a single radar plot at ~15 km is ~130 m (0.5 deg cross-range) off: filtering must do clearly better
    assert np.sqrt(np.mean(np.square(errs))) < 90.0
    speed = np.hypot(confirmed[-1].ve[0], confirmed[-1].vn[0])
    assert speed == pytest.approx(np.hypot(*v[:2]), abs=5.0)


def test_single_untrusted_radar_never_confirms_on_its_own_a_trusted_one_does():
    sensors = [_node("r1", 0.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors([msgspec.structs.replace(sensors[0], trusted=False)])
    det = _observe(table, [0], T0 + np.arange(0, 200, 4.0), [10_000.0, -8000.0, 800.0], [-10.0, 45.0, 0.0],
                   np.random.default_rng(4))
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0))
    snaps = _run(tr, det, T0 + 200)
    assert all(len(s) == 0 for s in snaps)
    assert tr.stats["tracks_started"] >= 1  # it was tracked, only never confirmed
    # radars are trusted by default: the same plots give one confirmed track ...
    trusted = Tracker(SensorTable.from_sensors(sensors), frame=FRAME, config=TrackerConfig(lag_s=0.0))
    assert max(len(s) for s in _run(trusted, det, T0 + 200)) == 1
    # ... unless trust is switched off for the whole tracker
    off = Tracker(SensorTable.from_sensors(sensors), frame=FRAME,
                  config=TrackerConfig(lag_s=0.0, trust_sensors=False))
    assert all(len(s) == 0 for s in _run(off, det, T0 + 200))


def test_three_acoustic_nodes_confirm_a_drone_and_one_node_alone_does_not():
    table, _ = _table_and_tracker()
    rng = np.random.default_rng(5)
    p0, v = [-3000.0, -2000.0, 400.0], [35.0, 30.0, 0.0]  # passes between the three nodes
    times = T0 + np.arange(0, 150, 2.0)
    det = _observe(table, [0, 1, 2], times, p0, v, rng)
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    snaps = _run(tr, det, T0 + 150)
    confirmed = [s for s in snaps if len(s)]
    assert confirmed, tr.stats
    assert max(len(s) for s in snaps) == 1  # no ghost or duplicate confirmed
    last = confirmed[-1]
    err_h = np.linalg.norm((_enu(last)[0] - _truth(np.array([last.t]), p0, v)[0])[:2])
    assert err_h < 250.0

    one = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    snaps = _run(one, _observe(table, [0], times, p0, v, rng), T0 + 150)
    assert all(len(s) == 0 for s in snaps)


def test_reports_later_than_the_lag_are_counted_not_lost():
    sensors = [_node("r1", 0.0, 0.0, kind="radar")]
    table = SensorTable.from_sensors(sensors)
    det = _observe(table, [0], T0 + np.arange(0, 20, 2.0), [10_000.0, 0.0, 800.0], [0.0, 40.0, 0.0],
                   np.random.default_rng(7))
    tr = Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=2.0))
    tr.ingest(det.take(slice(5, None)))
    tr.advance(T0 + 30)
    tr.ingest(det.take(slice(0, 5)))  # all older than what was processed
    tr.advance(T0 + 31)
    assert tr.stats["late_dropped"] == 5
    assert tr.stats["detections_in"] == len(det)


def test_two_drones_heard_by_three_nodes_give_two_tracks_and_no_ghost_crossing():
    """Two drones flying towards each other, both heard by the same three nodes: each node's bearings to the two
    drones cross the other nodes' bearings at ghost points too. Exactly two tracks are confirmed, each on a
    drone, and no confirmed point is ever more than 1 km from both drones (a ghost needs the third node's bearing
    through it as well, which a crossing of two different drones' bearings does not get)."""
    table = SensorTable.from_sensors([_node("a", 0.0, 0.0), _node("b", 6000.0, 0.0), _node("c", 3000.0, 6000.0)])
    drones = [([-1000.0, 1500.0, 300.0], [45.0, 5.0, 0.0]), ([7000.0, 3500.0, 300.0], [-45.0, 0.0, 0.0])]
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        batch = DetectionBatch.concat([
            _observe(table, [s], T0 + np.arange(0.0, 180.0, 2.0) + 0.3 * s + rng.uniform(0, 0.2), p0, v, rng)
            for p0, v in drones for s in range(3)])
        snaps = _run(Tracker(table, frame=FRAME, config=TrackerConfig(lag_s=0.0)), batch, T0 + 180)
        ids, near, far = set(), 0, 0
        for snap in snaps:
            ids |= set(snap.track)
            if len(snap):
                truth = np.stack([_truth(np.array([snap.t]), p0, v)[0, :2] for p0, v in drones])
                d = np.min(np.linalg.norm(_enu(snap)[:, None, :2] - truth[None], axis=2), axis=1)
                near, far = near + int((d <= 500).sum()), far + int((d > 1000).sum())
        assert len(ids) == 2
        assert far == 0
        assert near > 250  # both drones tracked for most of the 180 s
