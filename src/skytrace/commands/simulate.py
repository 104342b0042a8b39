"""``skytrace simulate``: run a scenario and write the interchange files."""

from __future__ import annotations

from pathlib import Path

import typer


def simulate(
    scenario: str = typer.Argument(..., help="Built-in scenario (kyiv-night, national, bench2d) or a "
                                                         "scenario .toml file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same files."),
    duration_s: float | None = typer.Option(None, "--duration", help="Simulate only the first N seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Simulate a night of drone attacks: sensors.json, detections.jsonl, truth.jsonl, zones.geojson, meta.json."""
    from skytrace.sim.engine import simulate as run_simulation
    from skytrace.sim.scenario import load_scenario

    if duration_s is not None and duration_s <= 0:
        raise typer.BadParameter("--duration must be > 0")
    sc = load_scenario(scenario)
    res = run_simulation(sc, out, seed=seed, progress=not quiet, duration_s=duration_s)
    span = res.t_end - res.t_start
    typer.echo(f"{sc.name}: {res.n_drones} drones, {res.n_sensors} sensors, {res.n_detections} detections "
               f"{res.detections_by_kind}, {res.n_truth} truth points -> {out}")
    typer.echo(f"simulated {span / 3600:.2f} h in {res.wall_s:.1f} s wall ({res.cpu_s:.1f} s CPU): "
               f"{span / max(res.cpu_s, 1e-9):.0f}x real time per CPU")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
