"""``skytrace alerts``: tracks.jsonl -> per-zone alerts (alerts.jsonl, events.jsonl)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import typer

from skytrace.alerting import AlertEngine, AlertPolicy
from skytrace.alerting.cap import CapWriter
from skytrace.batch import TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.io import formats
from skytrace.zones import ZoneSet, read_zones
from skytrace.zones_grid import default_zones


def run_alerts(tracks_path: Path, zones: ZoneSet, out: Path, every_s: float = 10.0,
               policy: AlertPolicy | None = None, write_cap: bool = True, cap_status: str = "Exercise",
               alert_cooperative: bool = False) -> dict:
    """Replay a tracks file through the alert engine every ``every_s``; write alerts.jsonl and events.jsonl.

    Tracks of known manned aircraft never alert, cooperative drones only with ``alert_cooperative``
    (:func:`skytrace.interop.identity.may_alert`).
    """
    from skytrace.interop.identity import may_alert

    recs = formats.read_tracks(tracks_path)
    by_t: dict[float, list] = defaultdict(list)
    for r in recs:
        if r.status in ("confirmed", "coasting") and may_alert(r.cls, alert_cooperative):
            by_t[r.t].append(r)
    if not recs:
        raise SkytraceError(f"{tracks_path}: no track points")
    times = sorted({r.t for r in recs})
    engine = AlertEngine(zones, policy)
    out.mkdir(parents=True, exist_ok=True)
    events = []
    t_next = times[0]
    for t in times:
        if t + 1e-9 < t_next:
            continue
        t_next = t + every_s
        events.extend(engine.update(t, TrackSnapshot.from_records(t, by_t.get(t, []))))
    events.extend(engine.close(times[-1] + every_s))
    formats.write_jsonl(out / "alerts.jsonl", sorted(engine.periods, key=lambda a: (a.start, a.zone)))
    with (out / "events.jsonl").open("w") as fh:
        for e in events:
            fh.write(json.dumps(e.__dict__) + "\n")
    cap_files = CapWriter(zones, status=cap_status).write(events, out / "cap") if write_cap else []
    return {"events": events, "periods": engine.periods, "engine": engine, "cap_files": cap_files}


def alerts(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl"),
    zones: Path | None = typer.Option(None, "--zones", help="zones.geojson (default: oblasts + 15 km grid)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    every: float = typer.Option(10.0, "--every", help="Re-assess every N seconds of track time."),
    lead: float = typer.Option(300.0, "--lead", help="Lead time wanted before arrival, on top of shelter_s (s)."),
    alert_cooperative: bool = typer.Option(False, "--alert-cooperative",
                                           help="Also alert on identified cooperative drones (Remote ID)."),
) -> None:
    """Raise and clear alerts for exactly the zones under threat."""
    if every <= 0 or lead < 0:
        raise typer.BadParameter("--every must be > 0 and --lead >= 0")
    zs = read_zones(zones) if zones is not None else default_zones()
    res = run_alerts(tracks, zs, out, every, AlertPolicy(lead_target_s=lead), alert_cooperative=alert_cooperative)
    n_raise = sum(e.kind == "raise" for e in res["events"])
    typer.echo(f"{len(zs)} zones; {n_raise} alerts raised, {len(res['periods'])} periods -> {out}/alerts.jsonl, "
               f"{len(res['cap_files'])} CAP 1.2 messages -> {out}/cap/")


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
