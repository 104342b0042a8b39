"""``skytrace forensics ...``: link debris to tracks and launch areas, custody log, evidence registry,
component attribution, sanctions screening, the investigator's report.

Top-level imports stay light (typer, stdlib): the work happens in :mod:`skytrace.forensics`, imported inside each
command so that ``skytrace --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

forensics_app = typer.Typer(name="forensics", no_args_is_help=True, add_completion=False,
                            help="Document downed drones: link debris to tracks and launch areas, custody log, "
                                 "evidence registry, component attribution, sanctions screening, report.")


@forensics_app.command("link")
def link(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl (the whole history of each track)."),
    debris: Path = typer.Option(..., "--debris", help="debris.jsonl: one {\"id\", \"t\", \"lat\", \"lon\"} a line "
                                                     "(recovery time and place)."),
    launch_areas: Path | None = typer.Option(None, "--launch-areas",
                                             help="Launch-area catalogue (places.json layout); default built-in."),
    out: Path = typer.Option(..., "--out", help="links.jsonl to write."),
) -> None:
    """Link each debris item to the tracks that ended where it was found, and back-project to launch areas."""
    from skytrace.forensics.linkrun import link_files

    lines = link_files(tracks, debris, launch_areas, out)
    linked = sum(1 for ln in lines if ln["tracks"])
    typer.echo(f"{len(lines)} debris items, {linked} with candidate tracks -> {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(forensics_app, name="forensics")
