"""The 2-D benchmark scenario: targets at nearly constant velocity, position reports with Poisson clutter.

A deliberately generic multi-target tracking problem that any tracker (Stone Soup included) can run on the
same measurements: one sensor reports (x, y) positions in a flat local frame every ``scan_s`` seconds with
detection probability ``pd`` and Gaussian noise ``noise_m``; clutter is Poisson with mean ``clutter_per_scan``
per scan, uniform over the surveillance square. Targets follow the discrete white-noise-acceleration model
(Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and Navigation*, 2001, sec. 6.3.2)
with spectral density ``q``, and are born and die inside the run so that track initiation and deletion count.

The same data is also written in the public formats (a single ``position`` sensor, lat/lon about an origin,
constant altitude) so that skytrace's 3-D tracker runs it through its ordinary file path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace.geo import LocalFrame
from skytrace.model import Detection, Sensor, TruthPoint

BENCH_SENSOR_ID = "plot-sensor"


@dataclass(frozen=True)
class Bench2DConfig:
    n_targets: int = 50
    duration_s: float = 300.0
    scan_s: float = 1.0
    pd: float = 0.9
    noise_m: float = 50.0
    clutter_per_scan: float = 10.0
    area_m: float = 40_000.0  # side of the surveillance square
    speed_mps: tuple[float, float] = (30.0, 60.0)  # Shahed-class cruise speeds
    q_m2s3: float = 0.05  # white-noise acceleration spectral density
    birth_window_s: float = 60.0  # targets appear within the first minute
    lifetime_s: tuple[float, float] = (180.0, 300.0)
    altitude_m: float = 500.0
    origin: tuple[float, float] = (50.45, 30.52)
    t0: float = 1_763_850_000.0


@dataclass
class Bench2DData:
    """Truth and measurements as arrays (local metres) plus the scan times."""

    config: Bench2DConfig
    scan_times: np.ndarray  # (K,)
    truth_scan: list[np.ndarray]  # per scan: (n_alive, 5) columns id, x, y, vx, vy
    meas_scan: list[np.ndarray]  # per scan: (m, 3) columns x, y, is_clutter


def generate(cfg: Bench2DConfig, seed: int = 0) -> Bench2DData:
    rng = np.random.default_rng(seed)
    k = int(round(cfg.duration_s / cfg.scan_s))
    times = cfg.t0 + cfg.scan_s * np.arange(k)
    dt = cfg.scan_s
    birth = rng.uniform(0, cfg.birth_window_s, cfg.n_targets)
    death = birth + rng.uniform(*cfg.lifetime_s, cfg.n_targets)
    half = cfg.area_m / 2
    # start inside the inner 60 % of the square, heading roughly across it
    pos = rng.uniform(-0.3 * half, 0.3 * half, (cfg.n_targets, 2))
    heading = rng.uniform(0, 2 * np.pi, cfg.n_targets)
    speed = rng.uniform(*cfg.speed_mps, cfg.n_targets)
    vel = np.column_stack([speed * np.sin(heading), speed * np.cos(heading)])
    q = cfg.q_m2s3
    # discrete white noise acceleration: covariance of (pos, vel) increments per axis
    qd = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    chol = np.linalg.cholesky(qd)
    truth_scan: list[np.ndarray] = []
    meas_scan: list[np.ndarray] = []
    for i in range(k):
        ts = i * dt
        if i > 0:
            w = rng.standard_normal((cfg.n_targets, 2, 2)) @ chol.T  # (n, axis, [dp, dv])
            pos = pos + vel * dt + w[:, :, 0]
            vel = vel + w[:, :, 1]
        alive = (birth <= ts) & (death > ts) & (np.abs(pos) < half).all(axis=1)
        ids = np.flatnonzero(alive)
        truth_scan.append(np.column_stack([ids, pos[ids], vel[ids]]))
        det = ids[rng.random(ids.size) < cfg.pd]
        z = pos[det] + rng.normal(0, cfg.noise_m, (det.size, 2))
        n_clutter = rng.poisson(cfg.clutter_per_scan)
        c = rng.uniform(-half, half, (n_clutter, 2))
        m = np.vstack([np.column_stack([z, np.zeros(det.size)]), np.column_stack([c, np.ones(n_clutter)])])
        meas_scan.append(m[rng.permutation(m.shape[0])])
    return Bench2DData(cfg, times, truth_scan, meas_scan)


def to_formats(data: Bench2DData) -> tuple[list[Sensor], list[Detection], list[TruthPoint]]:
    """The benchmark as public-format records (lat/lon about ``config.origin``; altitude constant)."""
    cfg = data.config
    frame = LocalFrame(cfg.origin[0], cfg.origin[1], 0.0)
    # one plot sensor (a radar's plot feed): declared trusted, so that it may confirm tracks on its own, and with
    # its detection probability per scan, so that its missed scans count against a track
    sensors = [Sensor(id=BENCH_SENSOR_ID, kind="position", max_range_m=cfg.area_m, trusted=True, pd=cfg.pd)]
    dets: list[Detection] = []
    truth: list[TruthPoint] = []
    for t, tr, ms in zip(data.scan_times, data.truth_scan, data.meas_scan, strict=True):
        if ms.size:
            lat, lon, alt = frame.to_geodetic(ms[:, 0], ms[:, 1], np.full(ms.shape[0], cfg.altitude_m))
            for j in range(ms.shape[0]):
                dets.append(Detection(t=float(t), sensor=BENCH_SENSOR_ID, lat=float(lat[j]), lon=float(lon[j]),
                                      alt_m=float(alt[j]), pos_sigma_m=cfg.noise_m, alt_sigma_m=cfg.noise_m,
                                      t_arrival=float(t)))
        if tr.size:
            lat, lon, alt = frame.to_geodetic(tr[:, 1], tr[:, 2], np.full(tr.shape[0], cfg.altitude_m))
            for j in range(tr.shape[0]):
                truth.append(TruthPoint(t=float(t), target=f"T{int(tr[j, 0]):04d}", lat=float(lat[j]),
                                        lon=float(lon[j]), alt_m=float(alt[j]), ve=float(tr[j, 3]),
                                        vn=float(tr[j, 4]), vu=0.0, kind="benchmark"))
    return sensors, dets, truth


def run_bench2d(sc, out_dir, seed: int = 0):
    """Write the 2-D benchmark scenario described by a scenario file's ``[benchmark2d]`` table."""
    import time
    from pathlib import Path

    from skytrace.io.formats import write_jsonl, write_sensors
    from skytrace.sim.engine import SimResult

    wall0, cpu0 = time.perf_counter(), time.process_time()
    b = sc.benchmark2d
    cfg = Bench2DConfig(n_targets=b.n_targets, duration_s=b.duration_s, pd=b.pd, noise_m=b.noise_m,
                        clutter_per_scan=b.clutter_per_scan, area_m=b.area_m, t0=sc.start_t)
    data = generate(cfg, seed)
    sensors, dets, truth = to_formats(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_sensors(out / "sensors.json", sensors)
    write_jsonl(out / "detections.jsonl", dets)
    write_jsonl(out / "truth.jsonl", truth)
    return SimResult(out, b.n_targets, 1, len(truth), {"position": len(dets)}, float(data.scan_times[0]),
                     float(data.scan_times[-1]), time.perf_counter() - wall0, time.process_time() - cpu0)
