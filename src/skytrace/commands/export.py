"""``skytrace export``: tracks.jsonl (and zones/alerts) -> CoT, ASTERIX CAT062, GeoJSON or KML (docs/interop.md)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import typer

FORMATS = ("cot", "cat062", "geojson", "kml")


def _update_period_s(times: list[float], default_s: float) -> float:
    """Median interval between a track's successive points (its update period)."""
    if len(times) < 2:
        return default_s
    d = sorted(b - a for a, b in pairwise(times) if b > a)
    return d[len(d) // 2] if d else default_s


def export_tracks(tracks_path: Path, fmt: str, out: Path, zones_path: Path | None = None,
                  alerts_path: Path | None = None, stale_periods: float = 3.0, sac: int = 0, sic: int = 1) -> dict:
    """Write ``out`` in ``fmt``; returns counts."""
    import json

    from skytrace.errors import SkytraceError
    from skytrace.interop import geo_export
    from skytrace.io import formats

    if fmt not in FORMATS:
        raise SkytraceError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    points = formats.read_tracks(tracks_path)
    alerts = formats.read_alerts(alerts_path) if alerts_path is not None else None
    zones = None
    if zones_path is not None:
        from skytrace.zones import read_zones

        zones = read_zones(zones_path)
    elif alerts is not None:
        from skytrace.zones_grid import default_zones

        zones = default_zones()
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        doc = geo_export.to_geojson(points, zones, alerts)
        out.write_text(json.dumps(doc, separators=(",", ":")))
        return {"features": len(doc["features"]), "points": len(points)}
    if fmt == "kml":
        out.write_bytes(geo_export.to_kml(points, zones, alerts))
        return {"tracks": len(geo_export.tracks_by_id(points)), "points": len(points)}
    by_track = geo_export.tracks_by_id(points)
    period = {tid: _update_period_s([p.t for p in pts], 1.0) for tid, pts in by_track.items()}
    ordered = sorted(points, key=lambda p: (p.t, p.track))
    if fmt == "cot":
        from skytrace.interop import cot

        n = 0
        with out.open("wb") as fh:
            events = []
            for p in ordered:
                stale = max(5.0, stale_periods * period[p.track])
                events.append((p.t, cot.to_bytes(cot.track_event(p, stale))))
            for z, periods in geo_export.export_zones(zones, alerts) if alerts is not None else []:
                for a in periods:
                    stale = (a.end if a.end is not None else a.start + 3600.0) - a.start
                    events.append((a.start, cot.to_bytes(cot.zone_event(z, a.start, max(stale, 1.0), True))))
            events.sort(key=lambda e: e[0])
            for _, ev in events:
                fh.write(ev + b"\n")
                n += 1
        return {"events": n, "points": len(points)}
    from skytrace.interop import asterix
    cfg = asterix.Cat062Config(sac=sac, sic=sic)
    numbers = asterix.TrackNumbers()
    n_blocks = 0
    with out.open("wb") as fh:
        i = 0
        while i < len(ordered):  # one or more data blocks per instant
            j = i
            while j < len(ordered) and ordered[j].t == ordered[i].t:
                j += 1
            for block in asterix.encode_cat062(ordered[i:j], cfg, numbers):
                fh.write(block)
                n_blocks += 1
            i = j
    return {"blocks": n_blocks, "points": len(points), "track_numbers": numbers.by_id}


def export(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl"),
    fmt: str = typer.Option(..., "--format", help="cot | cat062 | geojson | kml"),
    out: Path = typer.Option(..., "--out", help="File to write."),
    zones: Path | None = typer.Option(None, "--zones", help="zones.geojson to include (GeoJSON/KML; CoT shapes)."),
    alerts: Path | None = typer.Option(None, "--alerts", help="alerts.jsonl: include the alerted zones."),
    stale_periods: float = typer.Option(3.0, "--stale-periods", help="CoT: stale after this many update periods."),
    sac: int = typer.Option(0, "--sac", min=0, max=255, help="CAT062: System Area Code."),
    sic: int = typer.Option(1, "--sic", min=0, max=255, help="CAT062: System Identification Code."),
) -> None:
    """Export tracks (and zones/alerts) for TAK (CoT), ATM systems (ASTERIX CAT062) and GIS (GeoJSON, KML)."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if stale_periods <= 0:
        raise typer.BadParameter("--stale-periods must be > 0")
    res = export_tracks(tracks, fmt, out, zones, alerts, stale_periods, sac, sic)
    what = ", ".join(f"{v} {k}" for k, v in res.items() if isinstance(v, int))
    typer.echo(f"wrote {out} ({fmt}: {what})")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
