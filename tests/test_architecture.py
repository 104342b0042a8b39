"""The architecture's contracts: one pipeline (plausibility at the edge, gaps, sinks), one configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.cli import app as cli_app
from skytrace.config import load_config, parse_config, show_markdown, show_toml
from skytrace.errors import SkytraceError
from skytrace.model import Sensor
from skytrace.pipeline import CallbackSink, Pipeline, PipelineConfig, run

ROOT = Path(__file__).resolve().parents[1]


def _radar_table() -> SensorTable:
    return SensorTable.from_sensors([Sensor(id="r1", kind="radar", lat=50.0, lon=30.0, alt_m=100.0,
                                            bearing_sigma_deg=0.5, range_sigma_m=50.0)])


def _batch(t, t_arrival=None) -> DetectionBatch:
    b = DetectionBatch.empty(len(t))
    b.t = np.asarray(t, dtype=float)
    b.t_arrival = np.asarray(t_arrival if t_arrival is not None else np.full(len(t), np.nan), dtype=float)
    b.bearing_deg = np.full(len(t), 45.0)
    b.elevation_deg = np.full(len(t), 2.0)
    b.range_m = np.full(len(t), 8000.0)
    return b


def test_reports_from_the_future_or_too_old_are_rejected_and_counted():
    pipe = Pipeline(_radar_table(), config=PipelineConfig(max_future_s=30.0, max_age_s=300.0))
    now = 1.8e9
    n = pipe.push(_batch([now, now + 10, now + 3600, now - 1000, 0.0], [now, now, now, now, now]))
    assert n == 2
    assert pipe.stats["rejected_future"] == 1 and pipe.stats["rejected_old"] == 2
    # live, a report with no arrival time is judged against the wall clock
    assert pipe.push(_batch([now + 120]), t_clock=now) == 0
    assert pipe.stats["rejected_future"] == 2


def test_a_gap_of_decades_is_jumped_not_stepped_through(tmp_path):
    """One report at t = 0 and one at t = 1.8e9: the run ends at once (it used to step 1.8e9 frames)."""
    sensors = tmp_path / "sensors.json"
    sensors.write_text(json.dumps({"sensors": [{"id": "r1", "kind": "radar", "lat": 50.0, "lon": 30.0,
                                                "alt_m": 100.0, "bearing_sigma_deg": 0.5, "range_sigma_m": 50}]}))
    dets = tmp_path / "detections.jsonl"
    dets.write_text('{"t": 0.0, "sensor": "r1", "bearing_deg": 10, "elevation_deg": 1, "range_m": 5000}\n'
                    '{"t": 1800000000.0, "sensor": "r1", "bearing_deg": 10, "elevation_deg": 1, "range_m": 5000}\n')
    res = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "track", "--sensors",
                          str(sensors), "--detections", str(dets), "--out", str(tmp_path / "t.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "2 detections processed" in res.stdout


def test_every_sink_sees_every_step_and_the_end_clears_every_alert():
    from skytrace.io.sinks import AlertPeriodSink

    seen: list = []
    periods = AlertPeriodSink()
    pipe = Pipeline(_radar_table(), config=PipelineConfig(step_s=1.0), sinks=[CallbackSink(seen.append), periods])
    steps = run(pipe, [_batch(np.arange(1000.0, 1030.0))], 1.0)
    assert len(seen) == steps and seen[-1].t > 1030.0
    assert pipe.tracker.stats["processed"] == 30  # the end flushes what the lag held back


def test_a_failing_sink_does_not_stop_the_pipeline_unless_critical():
    class Broken:
        critical = False

        def on_step(self, result):
            raise RuntimeError("store down")

        def close(self):
            pass

    after: list = []
    pipe = Pipeline(_radar_table(), sinks=[Broken(), CallbackSink(after.append)])
    pipe.step(10.0)
    assert pipe.stats["sink_errors"] == 1 and len(after) == 1
    Broken.critical = True
    with pytest.raises(RuntimeError):
        pipe.step(11.0)


def test_alert_period_keeps_the_highest_level():
    from skytrace.alerting import AlertEvent
    from skytrace.batch import TrackSnapshot
    from skytrace.io.sinks import AlertPeriodSink
    from skytrace.pipeline import StepResult

    snap = TrackSnapshot.from_records(0.0, [])
    sink = AlertPeriodSink()
    mk = lambda t, kind, level: AlertEvent(t, "Z", kind, level, ["T1"], 0.9, 60.0, "r", "a1", 0.0)  # noqa: E731
    for ev in (mk(0, "raise", "warning"), mk(10, "update", "imminent"), mk(20, "update", "warning"),
               mk(30, "clear", "clear")):
        sink.on_step(StepResult(ev.t, snap, [ev]))
    assert [(p.level, p.start, p.end) for p in sink.periods] == [("imminent", 0.0, 30)]


def test_configuration_rejects_unknown_keys_and_bad_types():
    conf = parse_config("[tracker]\nlag_s = 8\n[alerting]\nlead_target_s = 600.0\n")
    assert conf.tracker.lag_s == 8.0 and conf.alerting.lead_target_s == 600.0
    assert conf.pipeline.step_s == PipelineConfig().step_s  # untouched sections default
    with pytest.raises(SkytraceError, match="lag_sec"):
        parse_config("[tracker]\nlag_sec = 8\n")
    with pytest.raises(SkytraceError, match="unknown section"):
        parse_config("[trackers]\nlag_s = 8\n")
    with pytest.raises(SkytraceError, match="tracker"):
        parse_config("[tracker]\nlag_s = 'five'\n")
    with pytest.raises(SkytraceError, match="TOML"):
        parse_config("[tracker\n")


def test_every_mode_reads_the_same_file(tmp_path, monkeypatch):
    cfg = tmp_path / "skytrace.toml"
    cfg.write_text("[tracker]\nlag_s = 7.5\n[zones]\nsource = 'oblasts'\n")
    monkeypatch.chdir(tmp_path)
    conf = load_config()
    assert conf.tracker.lag_s == 7.5 and conf.zones.source == "oblasts"
    shown = show_toml(conf)
    assert "lag_s = 7.5" in shown and "skytrace.toml" in shown
    res = CliRunner().invoke(cli_app, ["--config", str(cfg), "config", "show"])
    assert res.exit_code == 0 and "lag_s = 7.5" in res.output
    # the shown configuration is itself a valid configuration that gives the same values
    again = parse_config(shown.replace('"none"  # (unset)', '"none"'))
    assert again.tracker.lag_s == 7.5


def test_configuration_reference_in_docs_is_current():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.strip() == show_markdown().strip(), "run: skytrace config show --markdown --out docs/configuration.md"


def test_every_config_field_is_documented():
    import dataclasses

    from skytrace.config import SECTIONS, field_comments, section_class

    missing = [f"{name}.{f.name}" for name in SECTIONS for f in dataclasses.fields(section_class(name))
               if f.name not in field_comments(section_class(name))]
    assert not missing, f"fields without a '# unit; why' comment: {missing}"


def test_night_objects_read_like_the_domain(kyiv_short):
    import shapely.geometry

    from skytrace import Night

    night = Night.load(kyiv_short)
    text = repr(night)
    assert text.startswith(f"Night({kyiv_short.name}:") and "sensors" in text and "truth targets" in text
    tracks = night.tracks or night.track()
    assert len(tracks) >= 1 and repr(tracks).startswith("Tracks(tracks:")
    first = tracks.confirmed()[0]
    assert tracks[first.id] is first and first.length_km > 0 and "km" in repr(first)
    geom = shapely.geometry.shape(first.__geo_interface__["geometry"])  # any geo tool takes it as it is
    assert geom.geom_type == "LineString" and geom.length > 0
    fc = night.__geo_interface__
    assert fc["type"] == "FeatureCollection" and {f["properties"]["layer"] for f in fc["features"]} >= {
        "sensor", "truth", "tracks"}
    ax = night.plot()
    assert ax.get_title() == repr(night)
    with pytest.raises(KeyError):
        tracks["no-such-track"]
    with pytest.raises(SkytraceError):
        Night.load(kyiv_short / "missing")


def test_a_failing_alert_policy_does_not_stop_tracking_or_the_sinks():
    class Broken:
        def update(self, t, tracks, detections):
            raise ValueError("bug in a policy")

        def active(self):
            return []

        def close(self, t):
            return []

    seen: list = []
    pipe = Pipeline(_radar_table(), policy=Broken(), sinks=[CallbackSink(seen.append)])
    pipe.step(10.0, _batch([9.5]))
    pipe.step(11.0)
    assert len(seen) == 2 and pipe.stats["policy_errors"] == 2 and pipe.stats["admitted"] == 1
