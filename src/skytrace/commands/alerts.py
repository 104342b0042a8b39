"""``skytrace alerts``: tracks.jsonl (and optionally the reports) -> per-zone alerts (alerts.jsonl, events.jsonl)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import typer

from skytrace.alerting import create_policy
from skytrace.alerting.cap import CapWriter
from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.io import formats
from skytrace.zones import ZoneSet, read_zones
from skytrace.zones_grid import default_zones


def _load_reports(sensors_path: Path | None, detections_path: Path | None
                  ) -> tuple[SensorTable | None, DetectionBatch | None, object]:
    """The sensor table and every report sorted by arrival time (None, None when not given)."""
    import numpy as np

    if sensors_path is None:
        if detections_path is not None:
            raise SkytraceError("--detections needs --sensors")
        return None, None, None
    table = SensorTable.from_sensors(formats.read_sensors(sensors_path))
    if detections_path is None:
        return table, None, None
    det = DetectionBatch.concat(list(formats.iter_detection_batches(detections_path, table, batch_size=50_000)))
    ta = np.where(np.isfinite(det.t_arrival), det.t_arrival, det.t)
    order = np.argsort(ta, kind="stable")
    return table, det.take(order), ta[order]


def run_alerts(tracks_path: Path, zones: ZoneSet, out: Path, every_s: float = 10.0,
               policy: object | None = None, write_cap: bool = True, cap_status: str = "Exercise",
               sensors_path: Path | None = None, detections_path: Path | None = None,
               policy_name: str | None = None) -> dict:
    """Replay a tracks file (and the reports, when given) through an alert policy every ``every_s``.

    ``policy`` is a policy's config (its class selects the policy) and ``policy_name`` a registered name; by
    default the ``evidence`` policy with its defaults. Reports (``sensors_path`` + ``detections_path``) are
    delivered to the policy in the step in which they arrived, so that lone reports count. Writes alerts.jsonl,
    events.jsonl and (``write_cap``) one CAP 1.2 message per event.
    """
    import numpy as np

    recs = formats.read_tracks(tracks_path)
    by_t: dict[float, list] = defaultdict(list)
    for r in recs:
        by_t[r.t].append(r)
    if not recs:
        raise SkytraceError(f"{tracks_path}: no track points")
    table, det, det_ta = _load_reports(sensors_path, detections_path)
    times = sorted(by_t)
    engine = create_policy(policy_name, zones, table, policy)
    out.mkdir(parents=True, exist_ok=True)
    events = []
    t_next = times[0]
    k0 = 0
    for t in times:
        if t + 1e-9 < t_next:
            continue
        t_next = t + every_s
        batch = None
        if det is not None:
            k1 = int(np.searchsorted(det_ta, t, side="right"))
            batch = det.take(np.arange(k0, k1))
            k0 = k1
        events.extend(engine.update(t, TrackSnapshot.from_records(t, by_t.get(t, [])), batch))
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
    lead: float | None = typer.Option(None, "--lead",
                                      help="Lead time wanted before arrival, on top of shelter_s (s)."),
    sensors: Path | None = typer.Option(None, "--sensors", help="sensors.json (with --detections: lone reports)."),
    detections: Path | None = typer.Option(None, "--detections", help="detections.jsonl, to alert on reports "
                                           "no track explains (lone bearings, single-radar plots)."),
    policy: str = typer.Option("evidence", "--policy", help="Alert policy: evidence (all evidence) or zone "
                               "(confirmed tracks only)."),
) -> None:
    """Raise and clear alerts for exactly the zones under threat."""
    from skytrace.alerting import policy as policies

    if every <= 0 or (lead is not None and lead < 0):
        raise typer.BadParameter("--every must be > 0 and --lead >= 0")
    zs = read_zones(zones) if zones is not None else default_zones()
    cfg = policies.policy_class(policy).config_class()
    if lead is not None:
        cfg.lead_target_s = lead
    res = run_alerts(tracks, zs, out, every, cfg, sensors_path=sensors, detections_path=detections,
                     policy_name=policy)
    n_raise = sum(e.kind == "raise" for e in res["events"])
    typer.echo(f"{len(zs)} zones; {n_raise} alerts raised, {len(res['periods'])} periods -> {out}/alerts.jsonl, "
               f"{len(res['cap_files'])} CAP 1.2 messages -> {out}/cap/")


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
