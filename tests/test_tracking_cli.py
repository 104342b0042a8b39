"""``skytrace track`` and ``skytrace evaluate`` end to end on the 2-D benchmark scenario written as files."""

from __future__ import annotations

import json
import sys

import msgspec
import pytest
from typer.testing import CliRunner

from skytrace.cli import app, main
from skytrace.io import formats
from skytrace.sim.bench2d import Bench2DConfig, generate, to_formats


@pytest.fixture(scope="module")
def bench_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench2d")
    cfg = Bench2DConfig(n_targets=6, duration_s=120.0, birth_window_s=10.0, lifetime_s=(200.0, 300.0))
    sensors, dets, truth = to_formats(generate(cfg, seed=2))
    formats.write_sensors(d / "sensors.json", sensors)
    formats.write_jsonl(d / "detections.jsonl", dets)
    formats.write_jsonl(d / "truth.jsonl", truth)
    return d


def test_track_then_evaluate(bench_files):
    d = bench_files
    runner = CliRunner()
    res = runner.invoke(app, ["track", "--sensors", str(d / "sensors.json"), "--detections",
                              str(d / "detections.jsonl"), "--out", str(d / "tracks.jsonl"), "--every", "2",
                              "--lag", "0"])  # the benchmark's one sensor is declared trusted in sensors.json
    assert res.exit_code == 0, res.output
    tracks = formats.read_tracks(d / "tracks.jsonl")
    assert tracks and all(abs(tp.t / 2.0 - round(tp.t / 2.0)) < 1e-6 for tp in tracks)
    res = runner.invoke(app, ["evaluate", "--truth", str(d / "truth.jsonl"), "--tracks", str(d / "tracks.jsonl"),
                              "--json", "--every", "2"])
    assert res.exit_code == 0, res.output
    score = json.loads(res.output)["all_flying"]
    # six targets in 50 m noise: every one gets a track, filtered below the noise
    assert score["targets_tracked"] == 6
    assert score["rmse_m"] < 50.0
    (d / "empty.jsonl").write_text("")
    res = runner.invoke(app, ["evaluate", "--truth", str(d / "truth.jsonl"), "--tracks", str(d / "empty.jsonl"),
                              "--json", "--every", "2"])
    empty = json.loads(res.output)["all_flying"]
    assert empty["mean_missed_targets"] > 5.0 and empty["rmse_m"] is None  # nothing assigned
    assert score["mean_gospa_m"] < 0.5 * empty["mean_gospa_m"]


def test_single_untrusted_sensor_confirms_nothing_unless_min_sensors_is_one(bench_files, tmp_path):
    d = bench_files
    untrusted = [msgspec.structs.replace(s, trusted=False) for s in formats.read_sensors(d / "sensors.json")]
    formats.write_sensors(tmp_path / "sensors.json", untrusted)
    args = ["track", "--sensors", str(tmp_path / "sensors.json"), "--detections", str(d / "detections.jsonl"),
            "--lag", "0"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 0, res.output
    points = formats.read_tracks(tmp_path / "none.jsonl")
    assert points and {tp.status for tp in points} == {"tentative"}  # seen, never confirmed
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "one.jsonl"), "--min-sensors", "1"])
    assert res.exit_code == 0, res.output
    assert {tp.status for tp in formats.read_tracks(tmp_path / "one.jsonl")} >= {"confirmed"}


def test_evaluate_bad_input_is_one_line_exit_2(bench_files, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "tracks.jsonl"
    bad.write_text('{"t": 1, "track": "T1", "status": "confirmed", "lat": 95, "lon": 30, "alt_m": 0, "ve": 0, '
                   '"vn": 0, "vu": 0, "pos_sigma_m": 1}\n')
    monkeypatch.setattr(sys, "argv", ["skytrace", "evaluate", "--truth", str(bench_files / "truth.jsonl"),
                                      "--tracks", str(bad)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "line 1" in err and "lat" in err
