"""The tracker: models against finite differences, delay model, streaming, corroboration, accuracy."""

import msgspec
import numpy as np
import pytest

from skytrace import geo
from skytrace.batch import ACOUSTIC, OPTICAL, POSITION, RADAR, DetectionBatch, SensorTable
from skytrace.model import Sensor
from skytrace.sensors import acoustic
from skytrace.sim.bench2d import Bench2DConfig, generate
from skytrace.tracking import Tracker, TrackerConfig, motion
from skytrace.tracking.measurement import predict_measurements

LAT0, LON0, GROUND = 50.45, 30.52, 150.0


def _sensors():
    out = []
    for i, (e, n) in enumerate([(-3000, -2000), (3000, -2000), (0, 3000), (-2500, 2500)]):
        lat, lon, alt = geo.enu_to_geodetic(e, n, 6.0, LAT0, LON0, GROUND)
        out.append(Sensor(id=f"ac-{i}", kind="acoustic", lat=float(lat), lon=float(lon), alt_m=float(alt),
                          bearing_sigma_deg=2.0, elevation_sigma_deg=3.0, max_range_m=5000.0))
    lat, lon, alt = geo.enu_to_geodetic(8000, 0, 25.0, LAT0, LON0, GROUND)
    out.append(Sensor(id="radar", kind="radar", lat=float(lat), lon=float(lon), alt_m=float(alt),
                      bearing_sigma_deg=0.8, elevation_sigma_deg=1.0, range_sigma_m=30.0, max_range_m=40000.0))
    out.append(Sensor(id="sight", kind="position"))
    return out


def _target(t):
    """Straight flight at 50 m/s, 400 m above ground, in ENU about (LAT0, LON0, GROUND)."""
    t = np.asarray(t, dtype=float)
    return np.column_stack([-6000 + 50.0 * t, 500 + 0 * t, 400 + 0 * t])


def _bearings(table, sensor_ids, times, rng, sigma_deg=2.0, with_el=False):
    """Acoustic bearings with the exact sound delay: t_rx = tau + |p(tau) - s| / c, solved by iteration."""
    rows = []
    for sid in sensor_ids:
        k = table.index[sid]
        s_enu = np.array(geo.geodetic_to_enu(table.lat[k], table.lon[k], table.alt_m[k], LAT0, LON0, GROUND))
        for t in times:
            tau = t
            for _ in range(30):
                tau = t - np.linalg.norm(_target([tau])[0] - s_enu) / 343.0
            lat, lon, alt = geo.enu_to_geodetic(*_target([tau])[0], LAT0, LON0, GROUND)
            az, el, rng_m = geo.aer(table.lat[k], table.lon[k], table.alt_m[k], lat, lon, alt)
            if rng_m > 6000:
                continue
            rows.append((t, k, np.mod(az + rng.normal(0, sigma_deg), 360), el + rng.normal(0, 1.5 * sigma_deg)))
    rows.sort()
    b = DetectionBatch.empty(len(rows))
    b.t = np.array([r[0] for r in rows])
    b.sensor = np.array([r[1] for r in rows], dtype=np.int32)
    b.bearing_deg = np.array([r[2] for r in rows])
    if with_el:
        b.elevation_deg = np.array([r[3] for r in rows])
    return b


def _radar_plots(table, times, rng):
    k = table.index["radar"]
    b = DetectionBatch.empty(len(times))
    for i, t in enumerate(times):
        lat, lon, alt = geo.enu_to_geodetic(*_target([t])[0], LAT0, LON0, GROUND)
        az, el, r = geo.aer(table.lat[k], table.lon[k], table.alt_m[k], lat, lon, alt)
        b.t[i], b.bearing_deg[i] = t, np.mod(az + rng.normal(0, 0.8), 360)
        b.elevation_deg[i], b.range_m[i] = el + rng.normal(0, 1.0), r + rng.normal(0, 30.0)
    b.sensor[:] = k
    return b


def _frame():
    return geo.LocalFrame(LAT0, LON0, GROUND)


def test_cv_prediction_matches_dense_matrices():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 6, 6))
    P = A @ np.swapaxes(A, 1, 2) + np.eye(6)
    x = rng.normal(size=(5, 6))
    dt = rng.uniform(0, 5, 5)
    xp, Pp = motion.predict(x, P, dt, 0.7, 0.1)
    for i in range(5):
        F = np.eye(6)
        F[:3, 3:] = dt[i] * np.eye(3)
        q = np.diag([0.7, 0.7, 0.1])
        Q = np.block([[q * dt[i] ** 3 / 3, q * dt[i] ** 2 / 2], [q * dt[i] ** 2 / 2, q * dt[i]]])
        assert np.allclose(xp[i], F @ x[i])
        assert np.allclose(Pp[i], F @ P[i] @ F.T + Q)


@pytest.mark.parametrize("kind", [ACOUSTIC, RADAR, POSITION, OPTICAL])
def test_measurement_jacobian_matches_finite_differences(kind):
    cam = Sensor(id="cam", kind="optical", lat=LAT0, lon=LON0 + 0.01, alt_m=GROUND + 10, bearing_sigma_deg=0.3)
    table = SensorTable.from_sensors([*_sensors(), cam])
    tr = Tracker(table, frame=_frame())
    s = table.index[{RADAR: "radar", POSITION: "sight", ACOUSTIC: "ac-0", OPTICAL: "cam"}[kind]]
    x = np.array([[1200.0, -800.0, 450.0, 40.0, -20.0, 2.0]])
    args = (np.array([kind]), np.array([s]), tr.geom, np.array([True]))
    h, H = predict_measurements(x, *args)
    num = np.zeros((3, 6))
    for j in range(6):
        dx = np.zeros(6)
        dx[j] = 1e-3
        hp, _ = predict_measurements(x + dx, *args)
        hm, _ = predict_measurements(x - dx, *args)
        num[:, j] = (hp[0] - hm[0]) / 2e-3
    assert np.allclose(H[0], num, atol=1e-3 * np.abs(num).max())  # fixed-point delay solve: ~1e-4 relative


def test_acoustic_model_points_at_the_retarded_position():
    table = SensorTable.from_sensors(_sensors())
    tr = Tracker(table, frame=_frame())
    k = table.index["ac-1"]
    t = 100.0
    p = _target([t])[0]
    x = np.array([[*p, 50.0, 0.0, 0.0]])
    h, _ = predict_measurements(x, np.array([ACOUSTIC]), np.array([k]), tr.geom, np.array([True]))
    b = _bearings(table, ["ac-1"], [t], np.random.default_rng(0), sigma_deg=0.0)
    assert np.degrees(h[0, 0]) % 360 == pytest.approx(b.bearing_deg[0], abs=0.02)
    # ignoring the delay would be off by degrees at these ranges
    tr.geom.sound_speed_mps[k] = 1e12  # light-speed sound: no delay
    h0, _ = predict_measurements(x, np.array([ACOUSTIC]), np.array([k]), tr.geom, np.array([True]))
    assert abs(geo.wrap_deg(np.degrees(h0[0, 0]) - b.bearing_deg[0])) > 1.0


def _run(tracker, batch, t_end, step=1.0, statuses=("confirmed", "coasting")):
    """Snapshots (tracks of ``statuses`` only: confirmed ones by default) of feeding ``batch`` second by second."""
    order = np.argsort(batch.t, kind="stable")
    snaps = []
    for t in np.arange(0.0, t_end, step):
        sel = (batch.t[order] >= t - step) & (batch.t[order] < t) if t > 0 else np.zeros(len(batch), bool)
        tracker.ingest(batch.take(order[sel]))
        snaps.append(tracker.advance(t).with_status(*statuses))
    return snaps


def test_three_acoustic_nodes_track_a_drone_accurately():
    table = SensorTable.from_sensors(_sensors())
    rng = np.random.default_rng(1)
    times = np.arange(0.5, 200, 2.0)
    b = _bearings(table, ["ac-0", "ac-1", "ac-2", "ac-3"], times, rng, with_el=True)
    tr = Tracker(table, frame=_frame(), config=TrackerConfig(lag_s=2.0))
    snaps = _run(tr, b, 200.0)
    confirmed = [(s.t, s) for s in snaps if len(s)]
    assert confirmed, tr.stats
    assert confirmed[0][0] < 40.0  # confirmed within tens of seconds
    errs = []
    for t, s in confirmed:
        e, n, u = geo.geodetic_to_enu(s.lat, s.lon, s.alt_m, LAT0, LON0, GROUND)
        truth = _target([t])[0]
        errs.append(np.hypot(e[0] - truth[0], n[0] - truth[1]))
    assert len({s.track[0] for _, s in confirmed}) == 1  # one track, no breaks
    assert np.sqrt(np.mean(np.square(errs[10:]))) < 150.0
    assert max(len(s) for _, s in confirmed) == 1  # no ghost or duplicate track


def _untrusted(sensors):
    return [msgspec.structs.replace(s, trusted=False) for s in sensors]


def test_a_single_untrusted_sensor_never_confirms_a_track_but_shows_it_as_tentative():
    table = SensorTable.from_sensors(_untrusted(_sensors()))
    rng = np.random.default_rng(2)
    times = np.arange(0.0, 200, 4.0)
    tr = Tracker(table, frame=_frame())
    plots = _radar_plots(table, times, rng)
    snaps = _run(tr, plots, 200.0, statuses=("confirmed", "coasting", "tentative"))
    assert all(s.status.count("tentative") == len(s) for s in snaps)  # nothing confirmed ...
    assert sum(len(s) for s in snaps) > 20  # ... but the track is visible as tentative
    # the same radar, trusted (the default for radars), confirms it alone
    trusted = Tracker(SensorTable.from_sensors(_sensors()), frame=_frame())
    assert any(len(s) for s in _run(trusted, plots, 200.0))
    # the same plots plus a second sensor confirm it
    tr2 = Tracker(table, frame=_frame())
    both = DetectionBatch.concat([_radar_plots(table, times, rng),
                                  _bearings(table, ["ac-0", "ac-1"], np.arange(0.3, 200, 2.0), rng)])
    snaps2 = _run(tr2, both, 200.0)
    assert any(len(s) for s in snaps2)


def test_out_of_order_within_lag_gives_identical_tracks_and_late_reports_are_counted():
    table = SensorTable.from_sensors(_sensors())
    rng = np.random.default_rng(3)
    b = DetectionBatch.concat([_bearings(table, [sid], np.arange(0.5 + 0.6 * k, 120, 2.0), rng)
                               for k, sid in enumerate(["ac-0", "ac-1", "ac-2"])])

    def run(batch_order, lag):
        tr = Tracker(table, frame=_frame(), config=TrackerConfig(lag_s=lag))
        # deliver in chunks of 5 lines in the given order; the clock is the latest report time seen
        clock = 0.0
        for k in range(0, len(batch_order), 5):
            chunk = b.take(batch_order[k:k + 5])
            tr.ingest(chunk)
            clock = max(clock, float(chunk.t.max()))
            tr.advance(clock)
        return tr.advance(clock + 60.0), tr

    ordered = np.argsort(b.t)
    shuffled = ordered.copy()
    for k in range(0, len(shuffled), 3):  # local shuffles: at most a few seconds out of order
        rng.shuffle(shuffled[k:k + 3])
    assert np.mean(np.diff(b.t[shuffled]) < 0) > 0.15
    s1, tr1 = run(ordered, 5.0)
    s2, tr2 = run(shuffled, 5.0)
    assert tr1.stats["late_dropped"] == tr2.stats["late_dropped"] == 0
    assert np.allclose(tr1.tracks.x, tr2.tracks.x)
    _, tr3 = run(shuffled, 0.0)  # no lag: some reports arrive after their time was processed
    assert tr3.stats["late_dropped"] > 0
    assert tr3.stats["detections_in"] == len(b)


def test_bench2d_tracks_every_target():
    cfg = Bench2DConfig(n_targets=10, duration_s=120.0, clutter_per_scan=5.0)
    data = generate(cfg, seed=4)
    frame = geo.LocalFrame(cfg.origin[0], cfg.origin[1], 0.0)
    table = SensorTable.from_sensors([Sensor(id="p", kind="position")])
    tcfg = TrackerConfig(lag_s=0.0, q_h=cfg.q_m2s3, confirm_min_sensors=1, confirm_hits=3,
                         confirm_hits_per_sensor=3, single_sensor_hold_s=float("inf"), confirm_min_speed_mps=0.0,
                         tentative_timeout_s=2.5, confirmed_timeout_s=3.5)
    tr = Tracker(table, frame=frame, config=tcfg)
    from skytrace.evaluation import gospa

    g = []
    for t, ms, truth in zip(data.scan_times, data.meas_scan, data.truth_scan, strict=True):
        b = DetectionBatch.empty(ms.shape[0])
        lat, lon, alt = frame.to_geodetic(ms[:, 0], ms[:, 1], np.full(ms.shape[0], cfg.altitude_m))
        b.t[:], b.lat, b.lon, b.alt_m = t, np.atleast_1d(lat), np.atleast_1d(lon), np.atleast_1d(alt)
        b.pos_sigma_m[:] = b.alt_sigma_m[:] = cfg.noise_m
        tr.ingest(b)
        s = tr.advance(float(t) + 1e-6)
        e, n, _ = frame.to_enu(s.lat, s.lon, s.alt_m)
        g.append(gospa(truth[:, 1:3], np.column_stack([np.atleast_1d(e), np.atleast_1d(n)]).reshape(-1, 2)))
    late = g[30:]  # after initiation
    assert np.mean([x["n_missed"] for x in late]) < 0.5
    assert np.mean([x["n_false"] for x in late]) < 0.5
    loc = [x["localisation"] / max(1, len(x["pairs"])) for x in late]
    assert np.sqrt(np.mean(loc)) < 50.0  # better than the raw 50 m x/y noise (70 m radial)


def test_crossing_confusers_make_no_track_thanks_to_the_bearing_clutter_map():
    """Two nodes each hear a stationary source (a generator, a road) at a fixed bearing: the bearings cross at a
    fixed point. Without the clutter map that crossing becomes a confirmed 'drone'; with it, nothing is reported."""
    table = SensorTable.from_sensors(_sensors())
    frame = _frame()
    a, b = table.index["ac-0"], table.index["ac-1"]
    # a point between the two nodes, north of both: each node's bearing to it
    tgt_lat, tgt_lon, tgt_alt = geo.enu_to_geodetic(0.0, 1500.0, 6.0, LAT0, LON0, GROUND)
    rng = np.random.default_rng(7)
    rows = []
    # node a's confuser runs all along; node b's starts after 300 s (until then nothing can cross it)
    for k, t_on in ((a, 0.0), (b, 300.0)):
        az, _, _ = geo.aer(table.lat[k], table.lon[k], table.alt_m[k], tgt_lat, tgt_lon, tgt_alt)
        for t in np.arange(t_on + 0.3 + 0.7 * k, 900.0, 2.0):
            rows.append((t, k, np.mod(az + rng.normal(0, 2.0), 360.0)))
    rows.sort()
    batch = DetectionBatch.empty(len(rows))
    batch.t = np.array([r[0] for r in rows])
    batch.sensor = np.array([r[1] for r in rows], dtype=np.int32)
    batch.bearing_deg = np.array([r[2] for r in rows])
    batch.snr_db[:] = 12.0

    def confirmed_after(cfg, t_learn):
        snaps = _run(Tracker(table, frame=frame, config=cfg), batch, 900.0)
        return sum(len(s) for s in snaps if s.t > t_learn)

    # the ghost is still, so the speed rule alone would reject it: switch that off to test the clutter map alone
    no_map = TrackerConfig(clutter_map_threshold=float("inf"), confirm_min_speed_mps=0.0)
    assert confirmed_after(no_map, 300.0) > 0
    assert confirmed_after(TrackerConfig(confirm_min_speed_mps=0.0), 0.0) == 0
    assert confirmed_after(TrackerConfig(), 0.0) == 0  # the defaults (both rules) report nothing either


def test_a_still_crossing_with_a_noisy_first_speed_is_not_confirmed():
    """Two nodes hear stationary sources whose bearings cross (low SNR: 3.3-degree bearings, the sensor law's
    own sigma). The crossing's first velocity estimates are noisy and sometimes pass the 12 m/s speed window;
    the motion test (velocity different from zero at 99 %) keeps it from being confirmed. The clutter map is
    switched off to test the motion rule alone."""
    table = SensorTable.from_sensors(_sensors())
    frame = _frame()
    a, b = table.index["ac-0"], table.index["ac-1"]
    tgt_lat, tgt_lon, tgt_alt = geo.enu_to_geodetic(0.0, 1500.0, 6.0, LAT0, LON0, GROUND)
    snr = 6.0
    sigma = acoustic.bearing_sigma_deg(snr, 2.0)
    counts = {0.0: 0, TrackerConfig().confirm_motion_chi2: 0}
    for seed in (1, 3, 5):
        rng = np.random.default_rng(seed)
        rows = []
        for k in (a, b):
            az, _, _ = geo.aer(table.lat[k], table.lon[k], table.alt_m[k], tgt_lat, tgt_lon, tgt_alt)
            rows += [(t, k, np.mod(az + rng.normal(0, sigma), 360.0)) for t in np.arange(0.3 + 0.7 * k, 300.0, 1.0)]
        rows.sort()
        batch = DetectionBatch.empty(len(rows))
        batch.t = np.array([r[0] for r in rows])
        batch.sensor = np.array([r[1] for r in rows], dtype=np.int32)
        batch.bearing_deg = np.array([r[2] for r in rows])
        batch.snr_db[:] = snr
        for chi2 in counts:
            cfg = TrackerConfig(clutter_map_threshold=float("inf"), confirm_motion_chi2=chi2)
            counts[chi2] += sum(len(s) for s in _run(Tracker(table, frame=frame, config=cfg), batch, 300.0))
    assert counts[0.0] > 0  # without the motion test the still crossing becomes a confirmed "drone"
    assert counts[TrackerConfig().confirm_motion_chi2] == 0
