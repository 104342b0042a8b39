"""End to end: a kyiv-night drone's engine rendered for the real positions of three acoustic nodes ->
`skytrace node` processing of each WAV -> `skytrace track` gives a confirmed track of that drone."""

from __future__ import annotations

import subprocess

import numpy as np

from skytrace.io import formats
from skytrace.node.e2e import run_case
from test_node import _skytrace


def test_node_detections_track_a_simulated_drone(tmp_path):
    sim = tmp_path / "sim"
    res = subprocess.run([_skytrace(), "simulate", "kyiv-night", "--out", str(sim), "--duration", "3600", "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = run_case(sim, tmp_path / "e2e", n_nodes=3, dur_s=30.0, fs=8000, seed=1)
    assert sum(n["detections"] >= 10 for n in out["nodes"]) >= 2, out  # bearings from two nodes at least
    # every line the nodes wrote is a valid detection of its own sensor (read back through the public reader)
    table = formats.load_sensor_table(tmp_path / "e2e" / "sensors.json")
    dets = list(formats.iter_detections(tmp_path / "e2e" / "detections.jsonl", table))
    assert len(dets) == out["detections"]
    assert all(d.cls in ("uav-engine", "uav-multirotor") and d.bearing_sigma_deg > 0 for d in dets)
    assert out["best_track"] is not None, out
    assert out["best_track_points"] >= 10, out
    assert out["best_track_horizontal_error_m_median"] < 500.0, out
    assert np.isfinite(out["best_track_horizontal_error_m_p90"])
