"""Audio for real node positions from a simulated drone trajectory: the end-to-end check of the acoustic chain.

``skytrace simulate`` gives the truth of every drone (truth.jsonl) and the acoustic nodes (sensors.json). For one
drone and the nodes near its path, :func:`render_node_audio` synthesises the engine once (one emission signal,
shared by all nodes, so their reports are of the same source) and propagates it to every microphone of each node
(spherical spreading, exact delays and so Doppler, ground reflection), adds the node's own background, and
returns what each node's sound card would have recorded with the UNIX time of its first sample. Then
``skytrace node`` runs on each WAV and ``skytrace track`` on the merged detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace import geo
from skytrace.model import Sensor, TruthPoint
from skytrace.node import synth
from skytrace.node.array import ArrayConfig, load_preset


@dataclass
class Case:
    target: str
    t_start: float
    t_end: float
    nodes: list[Sensor]
    truth: list[TruthPoint]  # of the target, sorted by time


def pick_case(truth: list[TruthPoint], sensors: list[Sensor], n_nodes: int = 4, max_range_m: float = 2500.0,
              dur_s: float = 60.0, kind: str = "shahed") -> Case:
    """The (target, time) where the most acoustic nodes are within ``max_range_m`` of a ``kind`` drone; returns
    the ``n_nodes`` nearest of them and a ``dur_s`` window centred there."""
    ac = [s for s in sensors if s.kind == "acoustic"]
    s_ecef = np.column_stack(geo.geodetic_to_ecef(np.array([s.lat for s in ac]), np.array([s.lon for s in ac]),
                                                  np.array([s.alt_m for s in ac])))
    by_target: dict[str, list[TruthPoint]] = {}
    for p in truth:
        if p.kind == kind:
            by_target.setdefault(p.target, []).append(p)
    best = (-1, "", 0.0, None)
    for tgt, pts in by_target.items():
        lat = np.array([p.lat for p in pts])
        lon = np.array([p.lon for p in pts])
        alt = np.array([p.alt_m for p in pts])
        e = np.column_stack(geo.geodetic_to_ecef(lat, lon, alt))
        d = np.linalg.norm(e[:, None, :] - s_ecef[None, :, :], axis=2)  # (T, S)
        cnt = (d < max_range_m).sum(1)
        i = int(np.argmax(cnt))
        if cnt[i] > best[0]:
            best = (int(cnt[i]), tgt, pts[i].t, d[i])
    if best[0] < 1:
        raise ValueError(f"no {kind} drone passes within {max_range_m} m of an acoustic node")
    _, tgt, t_c, d = best
    order = np.argsort(d)[:n_nodes]
    pts = sorted(by_target[tgt], key=lambda p: p.t)
    return Case(target=tgt, t_start=t_c - dur_s / 2, t_end=t_c + dur_s / 2, nodes=[ac[i] for i in order],
                truth=pts)


def node_array(sensor: Sensor, preset: str = "circle4-32mm", sample_rate_hz: int = 16000,
               rotation_deg: float = 0.0) -> ArrayConfig:
    """The node's array: a preset placed at the sensor (ground-level mast) and rotated by ``rotation_deg``."""
    arr = load_preset(preset, sensor.id, sensor.lat, sensor.lon, sensor.alt_m)
    a = np.radians(rotation_deg)
    rot = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])  # clockwise, seen from above
    doc = {**arr.to_json(), "sample_rate_hz": sample_rate_hz, "mics_m": (arr.mics_m @ rot.T).tolist()}
    from skytrace.node.array import parse_array

    return parse_array(doc, f"node {sensor.id}")


def render_node_audio(case: Case, array: ArrayConfig, engine_signal: np.ndarray, fs: int, rng: np.random.Generator,
                      noise_rms: float, mast_m: float = 2.0) -> tuple[np.ndarray, float]:
    """(audio (n, M), t0 UNIX s of sample 0) heard by ``array`` during the case window.

    ``engine_signal`` is the emission at 1 m, sampled at ``fs`` from ``case.t_start`` (emission time).
    """
    n = engine_signal.size
    tau = case.t_start + np.arange(n) / fs
    tt = np.array([p.t for p in case.truth])
    lat = np.interp(tau, tt, [p.lat for p in case.truth])
    lon = np.interp(tau, tt, [p.lon for p in case.truth])
    alt = np.interp(tau, tt, [p.alt_m for p in case.truth])
    e, nn, u = geo.geodetic_to_enu(lat, lon, alt, array.lat, array.lon, array.alt_m + mast_m)
    pos = np.column_stack([e, nn, u])
    r0 = float(np.linalg.norm(pos[0]))
    off = max(r0 / array.sound_speed_mps - 0.5, 0.0)
    sig = synth.render_point(engine_signal, pos, array.mics_m, fs, c=array.sound_speed_mps, ground_z_m=-mast_m,
                             reflection=0.6, delay_offset_s=off)
    noise = synth.render_diffuse(rng, n, fs, array.mics_m) + 0.1 * rng.standard_normal((n, array.n_mics))
    noise *= noise_rms / noise.std()
    return sig + noise, case.t_start + off


def run_case(run_dir, out_dir, n_nodes: int = 4, dur_s: float = 60.0, fs: int = 16000, seed: int = 0,
             snr_1km_db: float = 5.0, max_range_m: float = 2500.0, progress=None) -> dict:
    """Simulated run directory -> WAVs of ``n_nodes`` nodes -> node detections -> tracks; returns figures.

    ``snr_1km_db``: band SNR of the engine at 1 km (spreading only; no atmospheric absorption).
    """
    import json
    from pathlib import Path

    from skytrace.batch import SensorTable
    from skytrace.io import formats
    from skytrace.node.run import DetectionSink, run_wav
    from skytrace.node.wav import write_wav
    from skytrace.pipeline import track_files
    from skytrace.tracking import TrackerConfig

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sensors = formats.read_sensors(run_dir / "sensors.json")
    truth = formats.read_truth(run_dir / "truth.jsonl")
    case = pick_case(truth, sensors, n_nodes, max_range_m, dur_s)
    rng = np.random.default_rng(seed)
    engine = synth.engine(rng, dur_s, fs, f0_hz=rng.uniform(60, 100))
    noise_rms = float(engine.std()) / 1000.0 / 10 ** (snr_1km_db / 20)
    dets_all = []
    node_info = []
    table = SensorTable.from_sensors(case.nodes)
    for k, s in enumerate(case.nodes):
        arr = node_array(s, "circle4-32mm" if k % 2 == 0 else "circle6-46mm", fs, rotation_deg=rng.uniform(0, 360))
        audio, t0 = render_node_audio(case, arr, engine, fs, rng, noise_rms)
        peak = np.abs(audio).max()
        wav = out_dir / f"{s.id}.wav"
        write_wav(wav, audio / peak * 0.9, fs)
        (out_dir / f"{s.id}.array.json").write_text(json.dumps(arr.to_json()))
        det_path = out_dir / f"{s.id}.detections.jsonl"
        sink = DetectionSink(det_path, None, s.id)
        res = run_wav(arr, wav, t0, sink)
        sink.close()
        dets = list(formats.iter_detections(det_path, table))
        dets_all += dets
        node_info.append({"id": s.id, "detections": len(dets), "cpu_s": round(res.cpu_s, 2),
                          "array": "4-mic" if k % 2 == 0 else "6-mic"})
        if progress:
            progress(f"{s.id}: {len(dets)} detections")
    dets_all.sort(key=lambda d: d.t)
    formats.write_sensors(out_dir / "sensors.json", case.nodes)
    formats.write_jsonl(out_dir / "detections.jsonl", dets_all)
    track_files(out_dir / "sensors.json", out_dir / "detections.jsonl", out_dir / "tracks.jsonl", every_s=1.0,
                config=TrackerConfig(confirm_min_sensors=2))
    tracks = formats.read_tracks(out_dir / "tracks.jsonl")
    # distance of each confirmed track point to the truth of the drone at that time
    tt = np.array([p.t for p in case.truth])
    errs: dict[str, list[float]] = {}
    for p in tracks:
        if p.status != "confirmed":
            continue
        lat_t = np.interp(p.t, tt, [q.lat for q in case.truth])
        lon_t = np.interp(p.t, tt, [q.lon for q in case.truth])
        alt_t = np.interp(p.t, tt, [q.alt_m for q in case.truth])
        e, n, u = geo.geodetic_to_enu(p.lat, p.lon, p.alt_m, lat_t, lon_t, alt_t)
        errs.setdefault(p.track, []).append(float(np.hypot(e, n)))
    best = min(errs, key=lambda k: np.median(errs[k])) if errs else None
    return {"target": case.target, "window_s": [case.t_start, case.t_end], "nodes": node_info,
            "detections": len(dets_all), "tracks": len(errs),
            "best_track": best, "best_track_points": len(errs[best]) if best else 0,
            "best_track_horizontal_error_m_median": round(float(np.median(errs[best])), 1) if best else None,
            "best_track_horizontal_error_m_p90": round(float(np.percentile(errs[best], 90)), 1) if best else None}
