"""``skytrace demo``: the whole chain on the built-in kyiv-night scenario, on embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from skytrace.batch import ACOUSTIC, SensorTable
from skytrace.commands.track import track_files
from skytrace.evaluation.tracking import confirmation_report, evaluate_tracks, heard_targets, observed_times
from skytrace.io import formats
from skytrace.plot import overview_png
from skytrace.sim.engine import simulate as run_simulation
from skytrace.sim.scenario import load_scenario
from skytrace.zones import read_zones


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Output directory."),
    scenario: str = typer.Option("kyiv-night", "--scenario", help="Scenario name or .toml file."),
    seed: int = typer.Option(1, "--seed"),
) -> None:
    """Simulate kyiv-night, track every drone, score the tracks against truth and draw the picture."""
    sc = load_scenario(scenario)
    typer.echo(f"[1/4] simulating {sc.name}: {sc.description}")
    res = run_simulation(sc, out, seed=seed, progress=True)
    typer.echo(f"      {res.n_drones} drones, {res.n_sensors} sensors, {res.n_detections} detections "
               f"{res.detections_by_kind} in {res.wall_s:.1f} s")
    typer.echo("[2/4] tracking (skytrace track)")
    tr = track_files(out / "sensors.json", out / "detections.jsonl", out / "tracks.jsonl", 1.0, progress=True)
    st = tr["tracker"]
    typer.echo(f"      {st['processed']} detections processed in {tr['cpu_s']:.1f} s CPU, "
               f"{st['tracks_confirmed']} tracks confirmed, {st['late_dropped']} reports later than the lag")
    typer.echo("[3/4] scoring against truth (skytrace evaluate)")
    truth = formats.read_truth(out / "truth.jsonl")
    tracks = formats.read_tracks(out / "tracks.jsonl")
    summary: dict = {"scenario": sc.name, "seed": seed, "tracker": st}
    if sc.type == "wave":
        table = SensorTable.from_sensors(formats.read_sensors(out / "sensors.json"))
        dets = formats.read_detections(out / "detections.jsonl", table)
        labels = np.load(out / "detection_labels.npy")
        ids = [t["target"] for t in json.loads((out / "meta.json").read_text())["targets"]]
        score = evaluate_tracks(truth, tracks, dt=1.0,
                                observed=observed_times(labels, dets.t, ids, dets.sensor, min_sensors=2))
        rep = confirmation_report(score, heard_targets(labels, dets.t, dets.sensor, table.kind == ACOUSTIC, ids))
        s = score.summary()
        summary.update({"localisable": s, "heard_by_2_nodes_30s": rep})
        typer.echo(f"      drones heard by >= 2 nodes for 30 s: {rep['qualifying']}, given a confirmed track: "
                   f"{rep['tracked']} (median delay {rep['median_delay_s']:.0f} s)")
        typer.echo(f"      while localisable: mean GOSPA {s['mean_gospa_m']:.0f} m, RMSE {s['rmse_m']:.0f} m, "
                   f"missed {s['mean_missed_targets']:.2f}, false {s['mean_false_tracks']:.2f} per step, "
                   f"{s['track_breaks']} breaks, {s['id_switches']} ID switches")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    typer.echo("[4/4] drawing")
    png = overview_png(out / "overview.png", read_zones(out / "zones.geojson"),
                       formats.read_sensors(out / "sensors.json"), truth[:: max(1, int(10 / sc.truth_interval_s))],
                       tracks=tracks[::5], title=f"skytrace demo: {sc.name}, seed {seed} (truth and tracks)",
                       bbox=(28.5, 49.3, 37.0, 53.0))
    typer.echo(f"wrote {out}/tracks.jsonl, {out}/summary.json, {png}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
