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
) -> None:
    """Simulate kyiv-night, track every drone, score the tracks, raise zone alerts (CAP), draw the picture, then
    replay it through the live service with the web map (Ctrl-C to stop)."""
    import numpy as np

    from skytrace.batch import ACOUSTIC, SensorTable
    from skytrace.commands.alerts import run_alerts
    from skytrace.commands.track import track_files
    from skytrace.config import load_config, load_zones
    from skytrace.evaluation.alerts import expand_to_children, leaf_periods, oblast_baseline, score_alerts, zone_entries
    from skytrace.evaluation.tracking import confirmation_report, evaluate_tracks, heard_targets, observed_times
    from skytrace.io import formats
    from skytrace.plot import overview_png
    from skytrace.sim.engine import simulate as run_simulation
    from skytrace.sim.scenario import load_scenario
    from skytrace.zones import builtin_oblasts, read_zones

    conf = load_config()
    if speed <= 0 or not 0 < port < 65536:
        raise typer.BadParameter("--speed must be > 0 and --port in 1..65535")
    sc = load_scenario(scenario)
    typer.echo(f"[1/5] simulating {sc.name}: {sc.description}")
    res = run_simulation(sc, out, seed=seed, progress=True)
    typer.echo(f"      {res.n_drones} drones, {res.n_sensors} sensors, {res.n_detections} detections "
               f"{res.detections_by_kind} in {res.wall_s:.1f} s")
    typer.echo("[2/5] tracking (skytrace track)")
    tr = track_files(out / "sensors.json", out / "detections.jsonl", out / "tracks.jsonl", 1.0, conf.tracker,
                     progress=True, pipeline_config=conf.pipeline)
    st = tr["tracker"]
    typer.echo(f"      {st['processed']} detections processed in {tr['cpu_s']:.1f} s CPU, "
               f"{st['tracks_confirmed']} tracks confirmed, {st['late_dropped']} reports later than the lag")
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
        typer.echo(f"      drones heard by >= 2 nodes for 30 s: {rep['qualifying']}, given a confirmed track: "
                   f"{rep['tracked']}" + (f" (median {delay:.0f} s after 2 nodes first heard it)"
                                          if delay is not None else ""))
        typer.echo(f"      while localisable: mean GOSPA {s['mean_gospa_m']:.0f} m, RMSE {s['rmse_m']:.0f} m, "
                   f"missed {s['mean_missed_targets']:.2f}, false {s['mean_false_tracks']:.2f} per step, "
                   f"{s['track_breaks']} breaks, {s['id_switches']} ID switches")
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
        typer.echo(f"      {summary['alerts']['raised']} zone alerts, {len(al['cap_files'])} CAP messages; per cell "
                   f"entry: median lead {ours['median_lead_s']} s, {ours['missed']}/{ours['entries']} without alert "
                   f"(incl. drones never localised); false-alert km2-min {ours['false_alert_km2_min']:,} vs "
                   f"{base['false_alert_km2_min']:,} for whole-oblast alerts")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    typer.echo("[5/5] drawing")
    png = overview_png(out / "overview.png", read_zones(out / "zones.geojson"),
                       formats.read_sensors(out / "sensors.json"), truth[:: max(1, int(10 / sc.truth_interval_s))],
                       tracks=tracks[::5], title=f"skytrace demo: {sc.name}, seed {seed} (truth, tracks, "
                       f"zones that were alerted)", bbox=(28.5, 49.3, 37.0, 53.0),
                       alerted=alerted, alert_zones=zones)
    typer.echo(f"wrote {out}/tracks.jsonl, {out}/alerts/ (alerts.jsonl, cap/), {out}/summary.json, {png}")
    if live:
        from skytrace.service.live_demo import run_live_demo

        hours = (res.t_end - res.t_start) / 3600
        typer.echo(f"[live] replaying {hours:.1f} h through the live pipeline at {speed:g}x "
                   f"(~{hours * 60 / speed:.0f} min; SQLite store, in-process feed)")
        live_summary = run_live_demo(out, speed=speed, port=port, headless=headless, echo=typer.echo)
        summary["live"] = live_summary
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        typer.echo(f"[live] {live_summary}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
