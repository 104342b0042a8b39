"""``skytrace check``: validate interchange files and summarise them."""

from __future__ import annotations

from pathlib import Path

import typer


def check(
    directory: Path = typer.Argument(..., help="Directory with sensors.json, detections.jsonl, ... to validate."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad lines instead of stopping."),
) -> None:
    """Validate every interchange file found in DIRECTORY; print counts, stop at the first error."""
    from skytrace.batch import SensorTable
    from skytrace.io import formats
    from skytrace.model import Alert, TrackPoint, TruthPoint
    from skytrace.zones import read_zones

    on_error = "skip" if skip_bad else "raise"
    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory")
    table = None
    if (directory / "sensors.json").exists():
        sensors = formats.read_sensors(directory / "sensors.json")
        table = SensorTable.from_sensors(sensors)
        kinds: dict[str, int] = {}
        for s in sensors:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        typer.echo(f"sensors.json: {len(sensors)} sensors {kinds}")
    if (directory / "detections.jsonl").exists():
        if table is None:
            raise typer.BadParameter("detections.jsonl needs sensors.json beside it")
        stats = formats.ReadStats()
        n = sum(1 for _ in formats.iter_detections(directory / "detections.jsonl", table, on_error, stats))
        typer.echo(stats.summary() if n == stats.records else f"{n} detections")
    for name, rtype in (("truth.jsonl", TruthPoint), ("tracks.jsonl", TrackPoint), ("alerts.jsonl", Alert)):
        if (directory / name).exists():
            stats = formats.ReadStats()
            for _ in formats.iter_jsonl(directory / name, rtype, on_error, stats):
                pass
            typer.echo(stats.summary())
    if (directory / "zones.geojson").exists():
        typer.echo(f"zones.geojson: {len(read_zones(directory / 'zones.geojson'))} zones")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
