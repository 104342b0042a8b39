"""``skytrace alerts``: tracks.jsonl (and optionally the reports) -> per-zone alerts (alerts.jsonl, events.jsonl,
CAP 1.2 files).

Runs the same :class:`skytrace.pipeline.Pipeline` as live tracking, with the recorded tracks as its track source;
the reports, when given, are pushed into it in the step in which they arrived, so that a policy can alert from
reports no track explains (lone bearings, single-radar plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _load_reports(sensors_path: Path | None, detections_path: Path | None) -> tuple[Any, Any, Any]:
    """The sensor table and every report sorted by arrival time (None, None, None when not given)."""
    import numpy as np

    from skytrace.batch import DetectionBatch, SensorTable
    from skytrace.errors import SkytraceError
    from skytrace.io import formats

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


def _load_heartbeats(table: Any, heartbeats_path: Path | None) -> tuple[Any, Any, Any]:
    """Sensor rows, times and arrival times of every heartbeat, sorted by arrival (empty arrays when none)."""
    import numpy as np

    from skytrace.errors import SkytraceError
    from skytrace.io import formats

    if heartbeats_path is None:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    if table is None or not len(table):
        raise SkytraceError("--heartbeats needs --sensors")
    parts = list(formats.iter_heartbeat_batches(heartbeats_path, table, batch_size=50_000))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    t = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    ta = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
    ta = np.where(np.isfinite(ta), ta, t)
    order = np.argsort(ta, kind="stable")
    return rows[order].astype(np.int64), t[order], ta[order]


def _not_quiet_cooperative(det, table, detections_path: Path, recs: list, alert_cooperative: bool):
    """Mask of the reports that are not from believed cooperative transmitters that may not alert (their reports
    would otherwise alert as lone trusted reports); a transmitter whose track the tracker flagged
    (``identity_flag``) keeps its reports."""
    import numpy as np

    from skytrace.io.identity import IdentityMap, may_alert

    identities = IdentityMap.scan(detections_path)
    if not identities:
        return np.ones(len(det), bool)
    flagged = {r.target_id for r in recs if r.identity_flag and r.target_id}
    quiet = np.zeros(len(table), bool)
    for sid, ident in identities.by_sensor.items():
        row = table.index.get(sid)
        if row is not None and ident.target_id not in flagged and not may_alert(ident.cls, alert_cooperative):
            quiet[row] = True
    return ~quiet[det.sensor]


def run_alerts(tracks_path: Path, zones: Any, out: Path, every_s: float = 10.0, policy: Any = None,
               write_cap: bool = True, cap_status: str = "Exercise", sensors_path: Path | None = None,
               detections_path: Path | None = None, policy_name: str | None = None,
               assess_config: Any = None, alert_cooperative: bool = False,
               heartbeats_path: Path | None = None) -> dict:
    """Replay a tracks file (and the reports, when given) through an alert policy every ``every_s``.

    ``policy`` is a policy's config (its class selects the policy) and ``policy_name`` a registered name; by
    default the ``evidence`` policy with its defaults. Writes alerts.jsonl, events.jsonl and (``write_cap``) one
    CAP 1.2 message per event. Tracks of known manned aircraft never alert, identified cooperative drones only
    with ``alert_cooperative`` (:func:`skytrace.io.identity.may_alert`, docs/interop.md). ``heartbeats_path``: the
    sensors' heartbeats.jsonl (needs ``sensors_path``), handed to the policy in the step in which each arrived, so
    that only sensors known alive count as negative information.
    """
    import numpy as np

    from skytrace.alerting import create_policy
    from skytrace.alerting.sinks import CapFileSink
    from skytrace.batch import SensorTable
    from skytrace.errors import SkytraceError
    from skytrace.io import formats
    from skytrace.io.identity import may_alert
    from skytrace.io.sinks import AlertPeriodSink, EventFileSink
    from skytrace.pipeline import Pipeline, PipelineConfig, RecordedTracks

    recs = formats.read_tracks(tracks_path)
    if not recs:
        raise SkytraceError(f"{tracks_path}: no track points")
    table, det, det_ta = _load_reports(sensors_path, detections_path)
    # a claim the tracker flagged (identity_flag: spoofed transponder) is not believed: that track alerts
    source = RecordedTracks([r for r in recs if r.identity_flag or may_alert(r.cls, alert_cooperative)])
    source.times = np.array(sorted({float(r.t) for r in recs}))  # the clock keeps every instant of the file
    out.mkdir(parents=True, exist_ok=True)
    periods, events = AlertPeriodSink(out / "alerts.jsonl"), EventFileSink(out / "events.jsonl")
    sinks: list = [periods, events]
    cap = CapFileSink(zones, out / "cap", status=cap_status) if write_cap else None
    if cap is not None:
        sinks.insert(0, cap)
    if det is not None and detections_path is not None:
        keep = _not_quiet_cooperative(det, table, detections_path, recs, alert_cooperative)
        det, det_ta = det.take(keep), det_ta[keep]
    table = table if table is not None else SensorTable.from_sensors([])
    hb_rows, hb_t, hb_ta = _load_heartbeats(table, heartbeats_path)
    engine = create_policy(policy_name, zones, table, policy, assess_config=assess_config)
    pipe = Pipeline(table, zones, tracker=source, policy=engine, sinks=sinks,
                    config=PipelineConfig(step_s=every_s, alert_every_s=every_s, max_age_s=float("inf"),
                                          max_future_s=float("inf")))
    t_next = float(source.times[0])
    k0 = h0 = 0
    for t in source.times:
        if t + 1e-9 < t_next:
            continue
        t_next = t + every_s
        h1 = int(np.searchsorted(hb_ta, t, side="right"))
        if h1 > h0:
            pipe.heartbeat(hb_rows[h0:h1], hb_t[h0:h1])
            h0 = h1
        if det is not None:
            k1 = int(np.searchsorted(det_ta, t, side="right"))
            pipe.push(det.take(np.arange(k0, k1)))
            k0 = k1
        pipe.step(float(t))
    # the end of a recording: every alert still raised gets its all-clear
    t_end = float(source.times[-1]) + every_s
    pipe.close(t_end)
    return {"events": events.events, "periods": periods.periods, "engine": engine,
            "cap_files": cap.files if cap is not None else []}


def alerts(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl"),
    zones: Path | None = typer.Option(None, "--zones", help="zones.geojson (default: the configured zones, "
                                                            "built in: oblasts + 15 km grid cells)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    every: float = typer.Option(10.0, "--every", help="Re-assess every N seconds of track time."),
    lead: float | None = typer.Option(None, "--lead", help="Lead time wanted before arrival, on top of "
                                                           "shelter_s (s; default from the configuration)."),
    sensors: Path | None = typer.Option(None, "--sensors", help="sensors.json (with --detections: lone reports)."),
    detections: Path | None = typer.Option(None, "--detections", help="detections.jsonl, to alert on reports "
                                           "no track explains (lone bearings, single-radar plots)."),
    policy: str | None = typer.Option(None, "--policy", help="Alert policy: evidence (all evidence, default) or "
                                                             "zone (confirmed tracks only); default [alerting]."),
    alert_cooperative: bool = typer.Option(False, "--alert-cooperative",
                                           help="Also alert on identified cooperative drones (Remote ID)."),
    heartbeats: Path | None = typer.Option(None, "--heartbeats", help="heartbeats.jsonl of the sensors: only "
                                           "sensors known alive count as negative information. Default: "
                                           "heartbeats.jsonl next to the detections, if present."),
) -> None:
    """Raise and clear alerts for exactly the zones under threat."""
    import dataclasses

    from skytrace.alerting import policy as policies
    from skytrace.config import load_config, load_zones

    if every <= 0 or (lead is not None and lead < 0):
        raise typer.BadParameter("--every must be > 0 and --lead >= 0")
    conf = load_config()
    zs = load_zones(conf, zones)
    name = policy or conf.alerting_policy
    cfg = conf.alerting if name == conf.alerting_policy else policies.policy_class(name).config_class()
    if lead is not None:
        cfg = dataclasses.replace(cfg, lead_target_s=lead)
    if heartbeats is None and sensors is not None and detections is not None and \
            (detections.parent / "heartbeats.jsonl").is_file():
        heartbeats = detections.parent / "heartbeats.jsonl"
    res = run_alerts(tracks, zs, out, every, cfg, sensors_path=sensors, detections_path=detections,
                     policy_name=name, assess_config=conf.assess, alert_cooperative=alert_cooperative,
                     heartbeats_path=heartbeats)
    n_raise = sum(e.kind == "raise" for e in res["events"])
    typer.echo(f"{len(zs)} zones, policy {name}; {n_raise} alerts raised, {len(res['periods'])} alert periods -> "
               f"{out}/alerts.jsonl, {len(res['cap_files'])} CAP 1.2 messages -> {out}/cap/")


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts)
