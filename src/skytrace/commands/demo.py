"""``skytrace demo``: the whole chain on the built-in kyiv-night scenario, on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

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
    """Simulate kyiv-night and draw the picture (truth, sensors, detections) as PNG."""
    sc = load_scenario(scenario)
    typer.echo(f"[1/2] simulating {sc.name} ({sc.description})")
    res = run_simulation(sc, out, seed=seed, progress=True)
    typer.echo(f"      {res.n_drones} drones, {res.n_sensors} sensors, {res.n_detections} detections "
               f"{res.detections_by_kind} in {res.wall_s:.1f} s")
    typer.echo("[2/2] drawing")
    sensors = formats.read_sensors(out / "sensors.json")
    truth = formats.read_truth(out / "truth.jsonl")[:: max(1, int(10 / sc.truth_interval_s))]
    png = overview_png(out / "overview.png", read_zones(out / "zones.geojson"), sensors, truth,
                       title=f"skytrace demo: {sc.name}, seed {seed}", bbox=(28.5, 49.3, 37.0, 53.0))
    typer.echo(f"wrote {png}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
