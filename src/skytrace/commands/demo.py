"""``skytrace demo``: the whole chain on the built-in kyiv-night scenario, on embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Output directory."),
    scenario: str = typer.Option("kyiv-night", "--scenario", help="Scenario name or .toml file."),
    seed: int = typer.Option(1, "--seed"),
    live: bool = typer.Option(True, "--live/--no-live", help="Then replay the night through the live service and "
                              "serve the web map on 127.0.0.1."),
    speed: float = typer.Option(60.0, "--speed", help="Live replay speed (x real time)."),
    port: int = typer.Option(8080, "--port", help="Web map port (127.0.0.1 only)."),
    headless: bool = typer.Option(False, "--headless", help="Do not keep the map up after the replay (scripts)."),
    loop: bool = typer.Option(False, "--loop", help="Play the night again each time it ends (Ctrl-C to stop)."),
) -> None:
    """Simulate kyiv-night and serve its live replay on the web map at once; meanwhile track every drone offline,
    score the tracks, raise zone alerts (CAP) and draw the picture (Ctrl-C to stop)."""
    import dataclasses

    import numpy as np

    from skytrace.batch import ACOUSTIC, SensorTable
    from skytrace.commands.alerts import run_alerts
    from skytrace.config import load_config, load_zones
    from skytrace.errors import SkytraceError
    from skytrace.evaluation.alerts import expand_to_children, leaf_periods, oblast_baseline, score_alerts, zone_entries
    from skytrace.evaluation.tracking import confirmation_report, evaluate_tracks, heard_targets, observed_times
    from skytrace.io import formats
    from skytrace.pipeline import track_files
    from skytrace.plot import overview_png
    from skytrace.sim.engine import simulate as run_simulation
    from skytrace.sim.scenario import load_scenario
    from skytrace.zones import builtin_oblasts, read_zones

    conf = load_config()
    if speed <= 0 or not 0 < port < 65536:
        raise typer.BadParameter("--speed must be > 0 and --port in 1..65535")
    sc = load_scenario(scenario)
    if live:  # a busy port is reported now, not after minutes of batch work
        from skytrace.service.runner import ensure_port_free

        ensure_port_free(port)
    typer.echo(f"[1/5] simulating {sc.name}: {sc.description}")
    res = run_simulation(sc, out, seed=seed, progress=True)
    what = "drones (incl. decoys and jets)" if sc.type == "wave" else "targets"
    typer.echo(f"      {res.n_drones} {what} seen by {res.n_sensors} sensors, which "
               f"reported {res.n_detections:,} detections {res.detections_by_kind} ({res.wall_s:.1f} s)")
    live_demo = None
    if live:
        from skytrace.service.live_demo import LiveDemo

        live_demo = LiveDemo(out, speed=speed, port=port, echo=typer.echo, loop=loop)
        if live_demo.dets:
            live_demo.start()
            hours = (res.t_end - res.t_start) / 3600
            typer.echo(f"[live] map: {live_demo.url}/  replaying {hours:.1f} h of the night at {speed:g}x "
                       f"(~{hours * 60 / speed:.0f} min) while the offline chain below runs")
        else:
            live_demo = None
    typer.echo("[2/5] tracking (skytrace track)")
    tracker_conf = conf.tracker
    if res.n_sensors == 1:  # single-sensor data (bench2d): one sensor must be enough to confirm a track
        tracker_conf = dataclasses.replace(tracker_conf, confirm_min_sensors=1)
    tr = track_files(out / "sensors.json", out / "detections.jsonl", out / "tracks.jsonl", 1.0, tracker_conf,
                     progress=True, pipeline_config=conf.pipeline,
                     heartbeats_path=out / "heartbeats.jsonl" if (out / "heartbeats.jsonl").is_file() else None)
    st = tr["tracker"]
    typer.echo(f"      {st['processed']:,} detections used ({tr['cpu_s']:.1f} s CPU); "
               f"{st['late_dropped']:,} arrived later than the tracker's {tracker_conf.lag_s:g} s lag and were "
               f"not used")
    typer.echo(f"      {st['tracks_confirmed']} track ids confirmed: one drone can hold several ids over the night "
               f"(a new id after each gap in coverage), and decoys and jets are tracked too")
    if tr["track_points"] == 0:
        raise SkytraceError(f"scenario {sc.name}: the tracker confirmed no track ({st['processed']} detections "
                            f"used), so there is nothing to alert on or show; a longer scenario or more sensors "
                            f"would help")
    typer.echo("[3/5] scoring against truth (skytrace evaluate)")
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
        delay = rep.get("median_delay_s")
        typer.echo(f"      {rep['tracked']} of the {rep['qualifying']} drones heard by >= 2 acoustic nodes for 30 s "
                   "got a confirmed track" + (f", a median {delay:.0f} s after the second node first heard them"
                                          if delay is not None else ""))
        typer.echo(f"      position error while a drone was localisable: RMSE {_fmt(s['rmse_m'], '.0f')} m "
                   f"(GOSPA {_fmt(s['mean_gospa_m'], '.0f')} m, which also counts misses and false tracks)")
        typer.echo(f"      per step: {_fmt(s['mean_missed_targets'], '.2f')} localisable drones without a track, "
                   f"{_fmt(s['mean_false_tracks'], '.2f')} tracks on nothing; over the night {s['track_breaks']} "
                   f"track breaks and {s['id_switches']} id swaps between drones")
    typer.echo("[4/5] alerts (skytrace alerts): oblasts + 15 km grid cells, CAP 1.2 messages")
    zones = load_zones(conf)
    al = run_alerts(out / "tracks.jsonl", zones, out / "alerts", 10.0, conf.alerting,
                    sensors_path=out / "sensors.json", detections_path=out / "detections.jsonl",
                    assess_config=conf.assess)
    alerted = {a.zone for a in al["periods"]}
    summary["alerts"] = {"raised": sum(e.kind == "raise" for e in al["events"]), "cap_messages": len(al["cap_files"])}
    if sc.type == "wave":
        entries = zone_entries(truth, zones)
        cells = {z.id for z in zones if z.parent}
        ours = score_alerts(leaf_periods(al["periods"], zones), entries, zones, zone_ids=cells).summary()
        base = score_alerts(expand_to_children(oblast_baseline(tracks, builtin_oblasts(), step_s=10.0), zones),
                            entries, zones, zone_ids=cells).summary()
        summary["alerts"].update({"skytrace": ours, "oblast_baseline": base})
        typer.echo(f"      {summary['alerts']['raised']} zone alerts raised, {len(al['cap_files'])} CAP messages "
                   "(raise, update, clear) written")
        typer.echo(f"      drones entering a 15 km cell: {ours['entries']}; warned beforehand by a median "
                   f"{_fmt(ours['median_lead_s'], '.0f')} s; {ours['missed']} entries had no alert in time (these "
                   f"include decoys and drones no sensor could place)")
        typer.echo(f"      needless alerting (area x minutes alerted with no drone inside): "
                   f"{ours['false_alert_km2_min']:,} km2-min, vs {base['false_alert_km2_min']:,} km2-min when "
                   f"whole oblasts are alerted as today")
    else:
        typer.echo(f"      {summary['alerts']['raised']} zone alerts raised, {len(al['cap_files'])} CAP messages "
                   "written (no truth zone entries to score for this scenario type)")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    typer.echo("[5/5] drawing")
    zones_path = out / "zones.geojson"
    bbox = (28.5, 49.3, 37.0, 53.0)
    if sc.type != "wave" and truth:  # bench2d: a 40 km square near Kyiv; frame the data, not the region
        lats, lons = [p.lat for p in truth], [p.lon for p in truth]
        bbox = (min(lons) - 0.1, min(lats) - 0.1, max(lons) + 0.1, max(lats) + 0.1)
    png = overview_png(out / "overview.png", read_zones(zones_path) if zones_path.exists() else builtin_oblasts(),
                       formats.read_sensors(out / "sensors.json"), truth[:: max(1, int(10 / sc.truth_interval_s))],
                       tracks=tracks[::5], title=f"skytrace demo: {sc.name}, seed {seed} (truth, tracks, "
                       f"zones that were alerted)", bbox=bbox,
                       alerted=alerted, alert_zones=zones)
    typer.echo(f"wrote {out}/tracks.jsonl, {out}/alerts/ (alerts.jsonl, cap/), {out}/summary.json, {png}")
    if live_demo is not None:
        typer.echo(f"[live] the map is at {live_demo.url}/ (Ctrl-C to stop)")
        try:
            live_demo.wait(keep_up=not headless)
        finally:
            live_demo.close()
        live_summary = live_demo.last_summary
        summary["live"] = live_summary
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        typer.echo(f"[live] {live_summary}")


def _fmt(value, spec: str) -> str:
    """A figure for the summary lines: ``n/a`` when it could not be computed (e.g. a very short scenario)."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(value, spec)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
