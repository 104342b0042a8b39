"""``skytrace alerts``: tracks.jsonl -> per-zone alerts (alerts.jsonl, events.jsonl, CAP 1.2 files).

Runs the same :class:`skytrace.pipeline.Pipeline` as live tracking, with the recorded tracks as its track source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def run_alerts(tracks_path: Path, zones: Any, out: Path, every_s: float = 10.0, policy: Any = None,
               write_cap: bool = True, cap_status: str = "Exercise", assess_config: Any = None) -> dict:
    """Replay a tracks file through the alert policy every ``every_s``; write alerts.jsonl, events.jsonl, cap/."""
    from skytrace.batch import SensorTable
    from skytrace.errors import SkytraceError
    from skytrace.io import formats
    from skytrace.io.sinks import AlertPeriodSink, CapFileSink, EventFileSink
    from skytrace.pipeline import Pipeline, PipelineConfig, RecordedTracks, StepResult

    recs = formats.read_tracks(tracks_path)
    if not recs:
        raise SkytraceError(f"{tracks_path}: no track points")
    source = RecordedTracks(recs, statuses=("confirmed", "coasting"))
    out.mkdir(parents=True, exist_ok=True)
    periods, events = AlertPeriodSink(out / "alerts.jsonl"), EventFileSink(out / "events.jsonl")
    sinks: list = [periods, events]
    cap = CapFileSink(zones, out / "cap", status=cap_status) if write_cap else None
    if cap is not None:
        sinks.insert(0, cap)
    pipe = Pipeline(SensorTable.from_sensors([]), zones, alert_policy=policy, tracker=source, sinks=sinks,
                    config=PipelineConfig(step_s=every_s, alert_every_s=every_s), assess_config=assess_config)
    t_next = float(source.times[0])
    for t in source.times:
        if t + 1e-9 < t_next:
            continue
        t_next = t + every_s
        pipe.step(float(t))
    # the end of a recording: one more assessment without tracks, then every alert is cleared
    t_end = float(source.times[-1]) + every_s
    pipe._emit(StepResult(t_end, pipe.tracker.advance(t_end), list(pipe.alerts.close(t_end)), final=True))
    for s in pipe.sinks:
        s.close()
    return {"events": events.events, "periods": periods.periods, "engine": pipe.alerts,
            "cap_files": cap.files if cap is not None else []}


def alerts(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl"),
    zones: Path | None = typer.Option(None, "--zones", help="zones.geojson (default: the configured zones, "
                                                            "built in: oblasts + 15 km grid cells)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    every: float = typer.Option(10.0, "--every", help="Re-assess every N seconds of track time."),
    lead: float | None = typer.Option(None, "--lead", help="Lead time wanted before arrival, on top of "
                                                           "shelter_s (s; default from the configuration)."),
) -> None:
    """Raise and clear alerts for exactly the zones under threat."""
    import dataclasses

    from skytrace.config import load_config, load_zones

    if every <= 0 or (lead is not None and lead < 0):
        raise typer.BadParameter("--every must be > 0 and --lead >= 0")
    conf = load_config()
    zs = load_zones(conf, zones)
    pol = dataclasses.replace(conf.alerting, lead_target_s=lead) if lead is not None else conf.alerting
    res = run_alerts(tracks, zs, out, every, pol, assess_config=conf.assess)
    n_raise = sum(e.kind == "raise" for e in res["events"])
    typer.echo(f"{len(zs)} zones; {n_raise} alerts raised, {len(res['periods'])} alert periods -> "
               f"{out}/alerts.jsonl, {len(res['cap_files'])} CAP 1.2 messages -> {out}/cap/")


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
