"""Side by side on the same measurements: Stone Soup 1.9.1's GNN tracker vs skytrace's tracker.

The 2-D benchmark scenario (skytrace.sim.bench2d): N targets at nearly constant velocity, Pd 0.9, Poisson clutter
(10 per scan over a 40 km square), 50 m position noise, one scan a second for 300 s. Stone Soup runs its best
standard multi-target tracker: GNNWith2DAssignment over a Mahalanobis DistanceHypothesiser, with KD-tree gating
(DetectionKDTreeGNN2D), a MultiMeasurementInitiator and an update-time-steps deleter, with the matched motion
model. skytrace runs its 3-D tracker with its DEFAULT configuration (``TrackerConfig()``: q_h 0.5 m^2/s^3, not the
benchmark's 0.05; confirmation by the track score against the sensor's learnt clutter density; deletion by
existence), only ``lag_s`` 0 (offline data in time order) and one frame per scan; the one plot sensor is declared
trusted with its pd, as in the benchmark's sensors.json (``skytrace simulate bench2d``).

Reported per N: measurements per CPU-second (time.process_time around the tracking loop only; measurement
generation and scoring excluded) and mean GOSPA (c = 500 m, p = 2, alpha = 2) over all scans, computed with the
same function for both (skytrace.evaluation.gospa, which tests/test_evaluation.py cross-checks against Stone Soup's
GOSPAMetric).

    python bench/bench_vs_stonesoup.py [--n 10 50 200] [--seeds 0 1 2] [--repeat 5] [--skip-stonesoup]

``--repeat R`` runs both trackers R times on the first seed and reports the median rate of each (the CPU-second
rates move by tens of per cent between runs on a shared machine); GOSPA is deterministic per seed.
"""

from __future__ import annotations

import argparse
import datetime
import time

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.evaluation import gospa
from skytrace.geo import LocalFrame
from skytrace.model import Sensor
from skytrace.sim.bench2d import Bench2DConfig, generate
from skytrace.tracking import Tracker, TrackerConfig


def skytrace_config(cfg: Bench2DConfig, tuned: bool = False) -> TrackerConfig:
    """The tracker's defaults (offline data in time order: no lag; one processing frame per scan); ``tuned``: the
    earlier benchmark-specific settings, kept for comparison."""
    if not tuned:
        return TrackerConfig(lag_s=0.0, frame_s=cfg.scan_s)
    return TrackerConfig(lag_s=0.0, frame_s=cfg.scan_s, q_h=cfg.q_m2s3, q_v=0.01,
                         confirm_hits=3, tentative_timeout_s=2.5 * cfg.scan_s, confirmed_timeout_s=2.5 * cfg.scan_s,
                         init_vel_sigma_mps=45.0, tentative_penalty=2.0, max_pos_sigma_m=1500.0,
                         confirm_hits_per_sensor=3, single_sensor_hold_s=float("inf"), confirm_min_speed_mps=0.0)


def run_skytrace(data, cfg: Bench2DConfig, tuned: bool = False) -> tuple[float, list[np.ndarray], int]:
    frame = LocalFrame(cfg.origin[0], cfg.origin[1], 0.0)
    # the one plot sensor is declared trusted with its Pd (as in the benchmark's sensors.json): it may confirm
    # tracks alone, and its missed scans count against a track
    table = SensorTable.from_sensors([Sensor(id="plot-sensor", kind="position", max_range_m=cfg.area_m,
                                             trusted=True, pd=cfg.pd)])
    # convert every scan to the public form (lat/lon) before timing, as a file reader would have
    batches = []
    for t, ms in zip(data.scan_times, data.meas_scan, strict=True):
        n = ms.shape[0]
        b = DetectionBatch.empty(n)
        lat, lon, alt = frame.to_geodetic(ms[:, 0], ms[:, 1], np.full(n, cfg.altitude_m))
        b.t[:] = t
        b.lat, b.lon, b.alt_m = np.atleast_1d(lat), np.atleast_1d(lon), np.atleast_1d(alt)
        b.pos_sigma_m[:] = cfg.noise_m
        b.alt_sigma_m[:] = cfg.noise_m
        batches.append(b)
    tracker = Tracker(table, frame=frame, config=skytrace_config(cfg, tuned))
    estimates = []
    n_meas = 0
    cpu0 = time.process_time()
    snaps = []
    for t, b in zip(data.scan_times, batches, strict=True):
        tracker.ingest(b)
        snaps.append(tracker.advance(float(t) + 1e-6))
        n_meas += len(b)
    cpu = time.process_time() - cpu0
    for s in snaps:
        s = s.with_status("confirmed", "coasting")
        if len(s):
            e, n, _ = frame.to_enu(s.lat, s.lon, s.alt_m)
            estimates.append(np.column_stack([np.atleast_1d(e), np.atleast_1d(n)]))
        else:
            estimates.append(np.zeros((0, 2)))
    return n_meas / cpu, estimates, n_meas


def run_stonesoup(data, cfg: Bench2DConfig) -> tuple[float, list[np.ndarray], int]:
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.dataassociator.tree import DetectionKDTreeGNN2D
    from stonesoup.deleter.time import UpdateTimeStepsDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import CombinedLinearGaussianTransitionModel, ConstantVelocity
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.detection import Clutter, Detection
    from stonesoup.types.state import GaussianState
    from stonesoup.updater.kalman import KalmanUpdater

    t0 = datetime.datetime(2026, 11, 22, 21, 0, 0)
    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(cfg.q_m2s3), ConstantVelocity(cfg.q_m2s3)])
    meas_model = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.diag([cfg.noise_m**2] * 2))
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(meas_model)
    hypothesiser = DistanceHypothesiser(predictor, updater, measure=Mahalanobis(), missed_distance=3)
    associator = DetectionKDTreeGNN2D(hypothesiser=hypothesiser, predictor=predictor, updater=updater,
                                      max_distance=1000.0)
    deleter = UpdateTimeStepsDeleter(time_steps_since_update=3)
    init_assoc = GNNWith2DAssignment(hypothesiser)
    prior = GaussianState([[0], [0], [0], [0]], np.diag([0, 45.0**2, 0, 45.0**2]))
    initiator = MultiMeasurementInitiator(prior_state=prior, measurement_model=meas_model,
                                          deleter=UpdateTimeStepsDeleter(time_steps_since_update=2),
                                          data_associator=init_assoc, updater=updater, min_points=3)
    scans = []
    for t, ms in zip(data.scan_times, data.meas_scan, strict=True):
        ts = t0 + datetime.timedelta(seconds=float(t - data.scan_times[0]))
        dets = set()
        for row in ms:
            cls = Clutter if row[2] else Detection
            dets.add(cls(np.array([[row[0]], [row[1]]]), timestamp=ts, measurement_model=meas_model))
        scans.append((ts, dets))

    class Feeder:
        def __iter__(self):
            return iter(scans)

    tracker = MultiTargetTracker(initiator=initiator, deleter=deleter, detector=Feeder(),
                                 data_associator=associator, updater=updater)
    n_meas = sum(len(d) for _, d in scans)
    estimates = []
    cpu0 = time.process_time()
    snaps = []
    for _, tracks in tracker:
        snaps.append([tr.state_vector[[0, 2], 0].astype(float) for tr in tracks])
    cpu = time.process_time() - cpu0
    for s in snaps:
        estimates.append(np.array(s).reshape(-1, 2))
    return n_meas / cpu, estimates, n_meas


def mean_gospa(data, estimates) -> dict:
    vals, miss, false = [], [], []
    for tr, est in zip(data.truth_scan, estimates, strict=True):
        g = gospa(tr[:, 1:3], est, c=500.0, p=2.0)
        vals.append(g["distance"])
        miss.append(g["n_missed"])
        false.append(g["n_false"])
    return {"gospa": float(np.mean(vals)), "missed": float(np.mean(miss)), "false": float(np.mean(false))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tracker for the median rate (first seed)")
    ap.add_argument("--skip-stonesoup", action="store_true")
    ap.add_argument("--tuned", action="store_true", help="the old benchmark-specific tracker settings")
    args = ap.parse_args()
    print(f"{'N':>4} {'seed':>4} {'tracker':>10} {'meas':>7} {'meas/CPU-s':>11} {'GOSPA m':>8} {'missed':>7} "
          f"{'false':>6}")
    for n in args.n:
        cfg = Bench2DConfig(n_targets=n)
        for k, seed in enumerate(args.seeds):
            data = generate(cfg, seed=seed)
            runs = args.repeat if k == 0 else 1
            rates_s, rates_ss = [], []
            for _ in range(runs):
                rate_s, est_s, nm = run_skytrace(data, cfg, args.tuned)
                rates_s.append(rate_s)
                if not args.skip_stonesoup:
                    rate_ss, est_ss, _ = run_stonesoup(data, cfg)
                    rates_ss.append(rate_ss)
            gs = mean_gospa(data, est_s)
            print(f"{n:>4} {seed:>4} {'skytrace':>10} {nm:>7} {np.median(rates_s):>11.0f} {gs['gospa']:>8.1f} "
                  f"{gs['missed']:>7.2f} {gs['false']:>6.2f}", flush=True)
            if not args.skip_stonesoup:
                gss = mean_gospa(data, est_ss)
                print(f"{n:>4} {seed:>4} {'stonesoup':>10} {nm:>7} {np.median(rates_ss):>11.0f} "
                      f"{gss['gospa']:>8.1f} {gss['missed']:>7.2f} {gss['false']:>6.2f}   speed-up "
                      f"x{np.median(rates_s) / np.median(rates_ss):.0f} (median of {runs})", flush=True)


if __name__ == "__main__":
    main()
