"""``skytrace demo`` as a newcomer meets it: a busy port is reported before any work, with the --port hint;
single-sensor (bench2d) and short scenarios run to the end; flags show no ``<bool>`` placeholder in --help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from skytrace.cli import app

SKYTRACE = str(Path(sys.executable).parent / "skytrace")


def _scenario(tmp_path: Path, name: str, edit) -> Path:
    from importlib import resources

    text = resources.files("skytrace.scenarios").joinpath(f"{name}.toml").read_text()
    path = tmp_path / f"{name}-short.toml"
    path.write_text(edit(text))
    return path


def test_a_busy_port_is_reported_at_once_with_a_hint(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = subprocess.run([SKYTRACE, "demo", "--out", str(tmp_path / "d"), "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert f"port {port}" in res.stderr and "--port" in res.stderr and "Traceback" not in res.stderr
    assert "[1/5]" not in res.stdout and not (tmp_path / "d").exists()  # no batch work was done


def test_flags_show_no_type_placeholder():
    res = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0
    assert "--headless" in res.output and "<bool>" not in res.output
    assert "<int>" in res.output  # options that take a value still say what kind


def test_demo_on_a_single_sensor_scenario(tmp_path):
    """bench2d (one plot sensor) used to fail with "no track points": one sensor must confirm a track there."""
    sc = _scenario(tmp_path, "bench2d", lambda t: t.replace("n_targets = 50", "n_targets = 8")
                   .replace("duration_s = 300", "duration_s = 90"))
    out = tmp_path / "b2"
    res = subprocess.run([SKYTRACE, "demo", "--scenario", str(sc), "--out", str(out), "--no-live"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracker"]["tracks_confirmed"] >= 4
    assert (out / "overview.png").stat().st_size > 10_000


def test_demo_on_a_short_copy_of_kyiv_night(tmp_path):
    """A 30-minute kyiv-night: no drone is heard by 2 nodes for 30 s yet (median delay None): no traceback."""
    sc = _scenario(tmp_path, "kyiv-night", lambda t: t.replace("duration_s = 18000", "duration_s = 1800", 1))
    out = tmp_path / "kn"
    res = subprocess.run([SKYTRACE, "demo", "--scenario", str(sc), "--out", str(out), "--no-live"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "0 of the 0 drones" in res.stdout and "RMSE n/a m" in res.stdout  # figures that do not exist say so
    assert json.loads((out / "summary.json").read_text())["heard_by_2_nodes_30s"]["median_delay_s"] is None


def test_demo_serves_the_map_before_the_batch_work(tmp_path):
    """The map is up as soon as the sensors are placed; the offline chain runs (in its own process) while the
    night plays; the live half stores every report it was fed."""
    sc = _scenario(tmp_path, "bench2d", lambda t: t.replace("n_targets = 50", "n_targets = 5")
                   .replace("duration_s = 300", "duration_s = 60"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "live"
    res = subprocess.run([SKYTRACE, "demo", "--scenario", str(sc), "--out", str(out), "--headless",
                          "--speed", "600", "--port", str(port)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    first_map = next(i for i, ln in enumerate(lines) if f"http://127.0.0.1:{port}/" in ln)
    # the map comes while the simulation runs (before its summary line), the offline chain after it
    assert first_map < next(i for i, ln in enumerate(lines) if "seen by" in ln)
    assert first_map < next(i for i, ln in enumerate(lines) if ln.startswith("[2/5]"))
    live = json.loads((out / "summary.json").read_text())["live"]
    assert live["detections_in"] == live["detections_stored"] > 0


def test_the_replay_clock_stops_when_the_night_ends():
    """After the replay, the demo's clock stops (it used to run on at 60x, pushing the night out of the timeline)."""
    from skytrace.service.clock import ScaledClock

    wall = [1000.0]
    clock = ScaledClock(60.0, t_anchor=5000.0, wall=lambda: wall[0])
    wall[0] += 10.0
    assert clock() == 5600.0
    assert clock.stop() == 5600.0
    wall[0] += 100.0
    assert clock() == 5600.0 and clock.stop() == 5600.0  # stopped for good, idempotent


def test_a_busy_machine_slows_the_replay_instead_of_freezing_the_map():
    """A step that runs long halves the replay's speed (the next step has less to digest); quick steps bring it
    back to the wanted speed. Driven by hand: no timing of this machine is involved."""
    from types import SimpleNamespace

    from skytrace.service.clock import ScaledClock
    from skytrace.service.live_demo import ReplayGovernor

    wall = [0.0]
    clock = ScaledClock(60.0, t_anchor=1000.0, wall=lambda: wall[0])
    stats = SimpleNamespace(n_steps=0, step_started=None, step_ms_last=0.0)
    said: list[str] = []
    gov = ReplayGovernor(clock, stats, step_s=0.25, speed=60.0, echo=said.append, min_speed=2.0)
    stats.step_started = 100.0  # a step began at monotonic 100 s and is still running
    assert gov.check(now=100.5) == 60.0  # half a second: nothing yet
    assert gov.check(now=101.5) == 30.0 and gov.check(now=102.0) == 30.0  # one halving per doubling of the wait
    assert gov.check(now=102.5) == 15.0 and gov.check(now=104.0) == 15.0 and gov.check(now=104.5) == 7.5
    assert said == ["[live] the machine is busy: replay slowed to 30x to keep the map live",
                    "[live] the machine is busy: replay slowed to 15x to keep the map live",
                    "[live] the machine is busy: replay slowed to 7.5x to keep the map live"]
    wall[0] = 10.0
    assert clock() == 1000.0 + 10.0 * 7.5  # the scenario time runs on continuously at the new speed
    for k in range(6):  # slow steps, one after the other
        stats.n_steps += 1
        stats.step_ms_last = 3000.0
        stats.step_started = 110.0 + k
        gov.check(now=110.2 + k)
    assert clock.speed == 2.0  # never below min_speed
    stats.step_started = None
    speeds = []
    for k in range(200):  # quick steps (20 ms each)
        stats.n_steps += 1
        stats.step_ms_last = 20.0
        speeds.append(gov.check(now=200.0 + k))
    assert speeds == sorted(speeds) and speeds[-1] == 60.0 and said[-1] == "[live] replay back at 60x"
    assert gov.speed_min_seen == 2.0
