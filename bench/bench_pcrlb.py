"""Single-target accuracy of skytrace's tracker against the posterior Cramér–Rao lower bound (PCRLB).

Case: one radar (azimuth, elevation, slant range; 0.5 deg, 0.5 deg, 30 m at 1 sigma) sees one drone 12-25 km away
every ``scan_s`` seconds; the drone follows exactly the tracker's motion model (3-D nearly constant velocity,
discrete white-noise acceleration with the tracker's q_h, q_v), so the bound is the one for a matched model. The
full tracker runs (ingest, gating, initiation from the first plot, EKF updates); its state is read after each scan.

The bound (Tichavsky, Muravchik, Nehorai, "Posterior Cramér–Rao bounds for discrete-time nonlinear filtering",
IEEE TSP 46(5), 1998), for linear-Gaussian motion and additive Gaussian measurement noise:

    J_{k+1} = (Q + F J_k^{-1} F^T)^{-1} + E[ H(x_{k+1})^T R^{-1} H(x_{k+1}) ]

with the expectation taken over the Monte Carlo truths. J_0 carries the same prior as the tracker's initiation
(no position prior, the tracker's initial velocity sigmas) plus the information of the first plot.

Reported: per scan the position RMSE over runs and sqrt(trace of the position block of J^-1); the ratio averaged
over the second half of the run (steady state). Target: <= 1.3.

    python bench/bench_pcrlb.py [--runs 200] [--scans 60] [--scan-s 2] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.geo import LocalFrame, aer_from_ecef, enu_rotation
from skytrace.model import Sensor
from skytrace.tracking import Tracker, TrackerConfig
from skytrace.tracking.measurement import predict_measurements

FRAME = LocalFrame(50.45, 30.52, 150.0)
T0 = 1_763_850_000.0
AZ_SIGMA_DEG, EL_SIGMA_DEG, RANGE_SIGMA_M = 0.5, 0.5, 30.0


def truth_paths(rng: np.random.Generator, runs: int, scans: int, dt: float, q_h: float, q_v: float) -> np.ndarray:
    """(runs, scans, 6) states following the tracker's own discrete white-noise-acceleration model."""
    x = np.zeros((runs, scans, 6))
    heading = rng.uniform(0, 2 * np.pi, runs)
    speed = rng.uniform(40.0, 55.0, runs)
    x[:, 0, :3] = np.column_stack([rng.uniform(8_000, 12_000, runs), rng.uniform(8_000, 12_000, runs),
                                   rng.uniform(300, 1500, runs)])
    x[:, 0, 3:5] = np.column_stack([speed * np.sin(heading), speed * np.cos(heading)])
    for axis, q in ((0, q_h), (1, q_h), (2, q_v)):
        qd = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        L = np.linalg.cholesky(qd)
        for k in range(1, scans):
            w = rng.standard_normal((runs, 2)) @ L.T
            x[:, k, axis] = x[:, k - 1, axis] + dt * x[:, k - 1, axis + 3] + w[:, 0]
            x[:, k, axis + 3] = x[:, k - 1, axis + 3] + w[:, 1]
    return x


def radar_table() -> SensorTable:
    lat, lon, alt = FRAME.to_geodetic(0.0, 0.0, 10.0)
    return SensorTable.from_sensors([Sensor(id="radar", kind="radar", lat=float(lat), lon=float(lon),
                                            alt_m=float(alt), bearing_sigma_deg=AZ_SIGMA_DEG,
                                            elevation_sigma_deg=EL_SIGMA_DEG, range_sigma_m=RANGE_SIGMA_M,
                                            max_range_m=60_000.0)])


def measure(table: SensorTable, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noisy (az deg, el deg, range m) of (n, 6) states from the radar."""
    ecef = FRAME.enu_to_ecef(states[:, :3])
    rot = np.broadcast_to(enu_rotation(table.lat[0], table.lon[0]), (len(states), 3, 3))
    az, el, r = aer_from_ecef(np.broadcast_to(table.ecef_m[0], ecef.shape), rot, ecef)
    n = len(states)
    return np.column_stack([np.mod(az + rng.normal(0, AZ_SIGMA_DEG, n), 360.0),
                            el + rng.normal(0, EL_SIGMA_DEG, n), r + rng.normal(0, RANGE_SIGMA_M, n)])


def run_tracker(table: SensorTable, truth: np.ndarray, meas: np.ndarray, dt: float, cfg: TrackerConfig) -> np.ndarray:
    """Position error (scans, 3) of the tracker's estimate after each scan (NaN before a track exists)."""
    tr = Tracker(table, frame=FRAME, config=cfg)
    scans = truth.shape[0]
    err = np.full((scans, 3), np.nan)
    for k in range(scans):
        b = DetectionBatch.empty(1)
        b.t[:] = T0 + k * dt
        b.sensor[:] = 0
        b.bearing_deg[:], b.elevation_deg[:], b.range_m[:] = meas[k]
        tr.ingest(b)
        tr.advance(T0 + k * dt + 1e-6)
        if len(tr.tracks):
            best = int(np.argmax(tr.tracks.hits))
            err[k] = tr.tracks.x[best, :3] - truth[k, :3]
    return err


def pcrlb(table: SensorTable, truth: np.ndarray, dt: float, cfg: TrackerConfig, tracker: Tracker) -> np.ndarray:
    """sqrt(trace(position block of J_k^-1)) per scan, expectation over the truths (runs, scans, 6)."""
    runs, scans, _ = truth.shape
    F = np.eye(6)
    F[:3, 3:] = dt * np.eye(3)
    q = np.diag([cfg.q_h, cfg.q_h, cfg.q_v])
    Q = np.block([[q * dt**3 / 3, q * dt**2 / 2], [q * dt**2 / 2, q * dt]])
    Rinv = np.diag(1.0 / np.array([np.radians(AZ_SIGMA_DEG) ** 2, np.radians(EL_SIGMA_DEG) ** 2,
                                   RANGE_SIGMA_M**2]))

    def info(k: int) -> np.ndarray:
        x = truth[:, k]
        kind = np.full(runs, table.kind[0])
        _, H = predict_measurements(x, kind, np.zeros(runs, np.int64), tracker.geom, np.ones(runs, bool))
        return np.mean(np.swapaxes(H, 1, 2) @ Rinv @ H, axis=0)

    J = np.diag([1e-12] * 3 + [cfg.init_vel_sigma_mps**-2] * 2 + [cfg.init_vu_sigma_mps**-2]) + info(0)
    out = np.zeros(scans)
    for k in range(scans):
        if k:
            J = np.linalg.inv(Q + F @ np.linalg.inv(J) @ F.T) + info(k)
        out[k] = np.sqrt(np.trace(np.linalg.inv(J)[:3, :3]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--scans", type=int, default=60)
    ap.add_argument("--scan-s", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cfg = TrackerConfig(lag_s=0.0, frame_s=args.scan_s)  # the radar is trusted by default: it confirms alone
    table = radar_table()
    truth = truth_paths(rng, args.runs, args.scans, args.scan_s, cfg.q_h, cfg.q_v)
    sq = np.zeros(args.scans)
    count = np.zeros(args.scans)
    for r in range(args.runs):
        err = run_tracker(table, truth[r], measure(table, truth[r], rng), args.scan_s, cfg)
        ok = np.isfinite(err[:, 0])
        sq[ok] += np.sum(err[ok] ** 2, axis=1)
        count[ok] += 1
    rmse = np.sqrt(sq / np.maximum(count, 1))
    bound = pcrlb(table, truth, args.scan_s, cfg, Tracker(table, frame=FRAME, config=cfg))
    ratio = rmse / bound
    print(f"{'scan':>5} {'t_s':>6} {'RMSE_m':>8} {'sqrt(PCRLB)_m':>14} {'ratio':>6}")
    for k in [*range(0, args.scans, max(1, args.scans // 12)), args.scans - 1]:
        print(f"{k:>5} {k * args.scan_s:>6.0f} {rmse[k]:>8.1f} {bound[k]:>14.1f} {ratio[k]:>6.2f}")
    half = slice(args.scans // 2, None)
    print(f"steady state (second half): mean RMSE / sqrt(PCRLB) = {np.mean(ratio[half]):.3f} "
          f"({args.runs} runs, tracks present in {np.mean(count[half] / args.runs):.1%} of run-scans)")


if __name__ == "__main__":
    main()
