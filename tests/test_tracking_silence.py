"""Negative information from silent acoustic nodes: forged and ghost tracks die, real drones survive."""

from __future__ import annotations

import numpy as np

from skytrace import geo
from skytrace.batch import DetectionBatch, SensorTable
from skytrace.model import Sensor
from skytrace.sensors import acoustic
from skytrace.tracking import Tracker, TrackerConfig
from skytrace.tracking.silence import _pd_acoustic, _pd_range

LAT0, LON0, GROUND = 50.45, 30.95, 150.0
FRAME = geo.LocalFrame(LAT0, LON0, GROUND)
NOISE_DB = 38.0  # a quiet rural night
RANGE_M = float(acoustic.nominal_range_m(NOISE_DB))  # 50 % detection range of a Shahed at 300 m AGL


def _grid(n: int = 6, spacing_m: float = 3000.0) -> tuple[SensorTable, np.ndarray]:
    """n x n acoustic nodes ``spacing_m`` apart around the frame origin; returns the table and ENU positions."""
    sensors, pos = [], []
    for i in range(n):
        for j in range(n):
            e, nn = (j - (n - 1) / 2) * spacing_m, (i - (n - 1) / 2) * spacing_m
            lat, lon, alt = geo.enu_to_geodetic(e, nn, 6.0, LAT0, LON0, GROUND)
            sensors.append(Sensor(id=f"ac-{i}{j}", kind="acoustic", lat=float(lat), lon=float(lon),
                                  alt_m=float(alt), bearing_sigma_deg=2.5, max_range_m=RANGE_M))
            pos.append((e, nn, 6.0))
    return SensorTable.from_sensors(sensors), np.array(pos)


def _path(t: np.ndarray) -> np.ndarray:
    """A Shahed flying west at 45 m/s, 300 m above ground, 800 m north of the grid's centre line."""
    t = np.asarray(t, dtype=float)
    return np.column_stack([12_000.0 - 45.0 * t, np.full(t.shape, 800.0), np.full(t.shape, 300.0)])


def _bearings(pos: np.ndarray, nodes: np.ndarray, times: np.ndarray, rng: np.random.Generator,
              law: bool = True) -> DetectionBatch:
    """Bearings of ``nodes`` to the path, one look every 2 s per node (own phase), with the sound delay; with
    ``law`` each look is detected with the simulator's SNR law (scintillation included), else always."""
    t = (times[None, :] + (nodes[:, None] % 7) * 0.25).ravel()
    node = np.repeat(nodes, times.size)
    tau = t.copy()
    for _ in range(20):
        tau = t - np.linalg.norm(_path(tau) - pos[node], axis=1) / 343.0
    d = _path(tau) - pos[node]
    rng_m = np.linalg.norm(d, axis=1)
    snr = acoustic.snr_db(rng_m, NOISE_DB) + rng.normal(0.0, acoustic.SCINTILLATION_DB, t.size)
    det = rng.uniform(size=t.size) < acoustic.detection_probability(snr) if law else rng_m < RANGE_M
    az = np.degrees(np.arctan2(d[:, 0], d[:, 1])) + rng.normal(0.0, 2.0, t.size)
    b = DetectionBatch.empty(int(det.sum()))
    b.t, b.sensor, b.bearing_deg = t[det], node[det].astype(np.int32), np.mod(az[det], 360.0)
    b.snr_db = np.clip(snr[det], 0.0, 40.0)
    order = np.argsort(b.t, kind="stable")
    return b.take(order)


def _run(table: SensorTable, batch: DetectionBatch, beating: np.ndarray | None, t_end: float,
         config: TrackerConfig | None = None) -> list:
    """Confirmed snapshots, second by second; ``beating``: rows sending a heartbeat every 60 s."""
    tr = Tracker(table, frame=FRAME, config=config or TrackerConfig(lag_s=2.0))
    if beating is not None:
        beat_t = np.arange(0.0, t_end + 60.0, 60.0)
        tr.heartbeat(np.repeat(beating, beat_t.size), np.tile(beat_t, beating.size))
    snaps = []
    for t in np.arange(1.0, t_end, 1.0):
        tr.ingest(batch.take((batch.t >= t - 1.0) & (batch.t < t)))
        snaps.append(tr.advance(t).with_status("confirmed", "coasting"))
    return snaps


def _coverage(snaps: list, t_from: float, t_to: float) -> float:
    """Share of the seconds in [t_from, t_to) with a confirmed track within 500 m of the drone."""
    ok = []
    for s in snaps:
        if not t_from <= s.t < t_to:
            continue
        e, n, _ = geo.geodetic_to_enu(s.lat, s.lon, s.alt_m, LAT0, LON0, GROUND)
        ok.append(bool(len(s)) and float(np.min(np.hypot(e - _path([s.t])[0, 0], n - 800.0))) < 500.0)
    return float(np.mean(ok))


def test_forged_drone_from_two_nodes_dies_when_honest_neighbours_are_alive_and_silent():
    table, pos = _grid()
    rng = np.random.default_rng(3)
    bad = np.array([table.index["ac-22"], table.index["ac-23"]])
    forged = _bearings(pos, bad, np.arange(0.0, 400.0, 2.0), rng, law=False)
    alive = np.arange(len(table))
    snaps = _run(table, forged, alive, 400.0)
    assert sum(len(s) for s in snaps) == 0  # never a confirmed track
    # the same reports with honest nodes that send nothing at all (offline, or no heartbeat): their silence is not
    # used, and the two nodes' bearings make a confirmed track, as before negative information
    snaps = _run(table, forged, bad, 400.0)
    assert any(len(s) for s in snaps)


def test_a_real_drone_is_tracked_through_the_silence_of_far_nodes():
    table, pos = _grid()
    rng = np.random.default_rng(4)
    real = _bearings(pos, np.arange(len(table)), np.arange(0.0, 400.0, 2.0), rng)
    snaps = _run(table, real, np.arange(len(table)), 400.0)
    first = min(s.t for s in snaps if len(s))
    assert first < 120.0
    assert _coverage(snaps, first, 330.0) > 0.9  # while over the grid (it leaves it at ~ 330 s)
    assert len({tid for s in snaps for tid in s.track}) == 1


def test_a_real_drone_survives_nodes_that_are_alive_but_deaf():
    """A third of the nodes send heartbeats but hear nothing (a failing microphone): the drone is still tracked."""
    table, pos = _grid()
    rng = np.random.default_rng(5)
    deaf = rng.permutation(len(table))[: len(table) // 3]
    hearing = np.setdiff1d(np.arange(len(table)), deaf)
    real = _bearings(pos, hearing, np.arange(0.0, 400.0, 2.0), rng)
    with_silence = _run(table, real, np.arange(len(table)), 400.0)
    first = min(s.t for s in with_silence if len(s))
    without = _run(table, real, np.arange(len(table)), 400.0, TrackerConfig(lag_s=2.0, silence=False))
    cov, cov0 = _coverage(with_silence, first, 330.0), _coverage(without, first, 330.0)
    assert cov > 0.8 and cov > cov0 - 0.1, (cov, cov0)


def test_silence_detection_laws_are_conservative():
    r = np.linspace(100.0, 3 * RANGE_M, 200)
    pd = _pd_acoustic(r, np.full(r.size, RANGE_M), 6.0)
    assert np.all(np.diff(pd) <= 0)  # falls with range
    # at the node's own 50 % range the law used for silence assumes much less than 50 %
    assert _pd_acoustic(np.array([np.hypot(RANGE_M, 300.0)]), np.array([RANGE_M]), 6.0)[0] < 0.2
    # and below the simulator's (true) Pd at every range
    true_pd = acoustic.detection_probability(acoustic.snr_db(np.hypot(r, 300.0), NOISE_DB))
    used = _pd_acoustic(np.hypot(r, 300.0), np.full(r.size, RANGE_M), 6.0)
    assert np.all((used <= true_pd) | (used < 0.02))  # where it is used at all (PD_FLOOR)
    cam = _pd_range(r, np.full(r.size, 5000.0), 6.0)
    assert np.all(np.diff(cam) <= 0) and cam[np.searchsorted(r, 2500.0)] < 0.5


def test_heartbeats_file_is_read_validated_and_fed_in_step(tmp_path):
    import pytest

    from skytrace.errors import FormatError
    from skytrace.io import formats
    from skytrace.pipeline import Pipeline, with_heartbeats

    table, _ = _grid(2)
    p = tmp_path / "heartbeats.jsonl"
    p.write_text('{"t": 10.0, "sensor": "ac-00", "t_arrival": 10.5}\n{"t": 130.0, "sensor": "ac-11"}\n')
    (rows, t, arr), = formats.iter_heartbeat_batches(p, table)
    assert rows.tolist() == [table.index["ac-00"], table.index["ac-11"]] and t.tolist() == [10.0, 130.0]
    assert arr[0] == 10.5 and np.isnan(arr[1])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 10.0, "sensor": "nobody"}\n')
    with pytest.raises(FormatError, match="unknown sensor"):
        list(formats.iter_heartbeat_batches(bad, table))
    # fed to the tracker as the detections pass their arrival times
    pipe = Pipeline(table)
    b1, b2 = DetectionBatch.empty(1), DetectionBatch.empty(1)
    b1.t[:] = b1.t_arrival[:] = 20.0
    b2.t[:] = b2.t_arrival[:] = 200.0
    out = with_heartbeats(pipe, [b1, b2], formats.iter_heartbeat_batches(p, table))
    next(out)
    assert pipe.tracker.stats["heartbeats"] == 1
    next(out)
    assert pipe.tracker.stats["heartbeats"] == 2
