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
    from skytrace.sim.scenario import load_scenario

    if speed <= 0 or not 0 < port < 65536:
        raise typer.BadParameter("--speed must be > 0 and --port in 1..65535")
    sc = load_scenario(scenario)
    if not live:
        from skytrace.sim.engine import simulate as run_simulation

        typer.echo(f"[1/5] simulating {sc.name}: {sc.description}")
        res = _sim_info(run_simulation(sc, out, seed=seed, progress=True))
        _echo_sim(res, sc.type)
        offline_chain(out, scenario, seed, res)
        return
    _live_demo(out, scenario, sc, seed, speed, port, headless, loop)


def _live_demo(out: Path, scenario: str, sc, seed: int, speed: float, port: int, headless: bool,
               loop: bool) -> None:
    """The live demo: the map is served as soon as the simulator has placed the sensors; the simulation and then
    the offline chain run in their own processes, so that their CPU-bound Python never holds the map's process
    (one interpreter lock: a batch run in the same process stalled the map's steps for tens of seconds)."""
    import multiprocessing
    import threading
    import time

    from skytrace.errors import SkytraceError
    from skytrace.service.live_demo import LiveDemo
    from skytrace.service.runner import ensure_port_free

    ensure_port_free(port)  # a busy port is reported now, not after minutes of work
    out.mkdir(parents=True, exist_ok=True)
    for name in ("sensors.json", "detections.jsonl", "truth.jsonl", "summary.json"):  # never replay an old night
        (out / name).unlink(missing_ok=True)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    sim = ctx.Process(target=_sim_worker, args=(scenario, str(out), seed, results), name="skytrace-simulate")
    t0 = time.monotonic()
    typer.echo(f"[1/5] simulating {sc.name} in the background: {sc.description}")
    sim.start()
    from skytrace.config import load_config, load_zones

    zones = load_zones(load_config())  # meanwhile: the map's zones (the simulator is still starting)
    while not _sensors_ready(out / "sensors.json") and sim.exitcode is None:
        time.sleep(0.1)
    if sim.exitcode not in (None, 0) or not _sensors_ready(out / "sensors.json"):
        sim.join()
        raise SkytraceError(f"the simulation of {sc.name} failed (exit code {sim.exitcode}); see above")
    # Only this thread polls or joins the child processes: two threads reaping one child race (the loser of
    # waitpid sees no child and reads exit code None), so the others learn of the ends through events.
    sim_done = threading.Event()
    live_demo = LiveDemo(out, speed=speed, port=port, echo=typer.echo, loop=loop,
                         source_done=sim_done.is_set, zones=zones)
    live_demo.start()
    length = f" ({sc.duration_s / 3600:.1f} h in ~{sc.duration_s / speed / 60:.0f} min)" if sc.type == "wave" else ""
    typer.echo(f"[live] map: {live_demo.url}/  up {time.monotonic() - t0:.1f} s after start; the night plays at "
               f"{speed:g}x while it is being simulated{length}")
    chain = None
    try:
        sim.join()
        sim_done.set()
        if sim.exitcode != 0:
            raise SkytraceError(f"the simulation of {sc.name} failed (exit code {sim.exitcode}); see above")
        res = results.get(timeout=30)
        _echo_sim(res, sc.type)
        typer.echo("      steps 2-5 (tracking, scoring, alerts, drawing) run in a separate process; the map stays live")
        chain = ctx.Process(target=_chain_worker, args=(str(out), scenario, seed, res), name="skytrace-offline")
        chain.start()
        chain_done = threading.Event()

        def announce() -> None:  # the one place that joins the chain
            chain.join()
            chain_done.set()
            if chain.exitcode == 0:
                typer.echo(f"[live] offline chain done; the map is at {live_demo.url}/ (Ctrl-C to stop)")

        threading.Thread(target=announce, name="skytrace-offline-watch", daemon=True).start()
        live_demo.wait(keep_up=not headless)
        if not live_demo.interrupted:  # headless: the run ends when both halves have
            chain_done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        live_demo.close()
        for proc in (sim, chain):
            if proc is not None and proc.is_alive():
                proc.terminate()
                proc.join(10)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary["live"] = live_demo.last_summary
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    typer.echo(f"[live] {live_demo.last_summary}")
    if chain is not None and chain.exitcode not in (0, None, -15):
        raise SkytraceError(f"the offline chain failed (exit code {chain.exitcode}); see above")


def _sensors_ready(path: Path) -> bool:
    """sensors.json written completely (the simulator writes it first, in one piece)."""
    try:
        return bool(json.loads(path.read_bytes())["sensors"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _sim_info(res) -> dict:
    """What the demo needs of a SimResult (plain data: it crosses a process boundary)."""
    return {"n_drones": res.n_drones, "n_sensors": res.n_sensors, "n_detections": res.n_detections,
            "detections_by_kind": res.detections_by_kind, "wall_s": res.wall_s, "t_start": res.t_start,
            "t_end": res.t_end}


def _echo_sim(res: dict, sc_type: str) -> None:
    what = "drones (incl. decoys and jets)" if sc_type == "wave" else "targets"
    typer.echo(f"      {res['n_drones']} {what} seen by {res['n_sensors']} sensors, which "
               f"reported {res['n_detections']:,} detections {res['detections_by_kind']} ({res['wall_s']:.1f} s)")


def _worker(fn, *args) -> None:
    """A child process's body: a SkytraceError is one line and exit code 2, Ctrl-C exits quietly."""
    import sys

    from skytrace.errors import SkytraceError

    sys.stdout.reconfigure(line_buffering=True)  # its lines reach the user (or a pipe) as they are printed
    try:
        fn(*args)
    except SkytraceError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _sim_worker(scenario: str, out: str, seed: int, results) -> None:
    def run() -> None:
        from skytrace.sim.engine import simulate as run_simulation
        from skytrace.sim.scenario import load_scenario

        results.put(_sim_info(run_simulation(load_scenario(scenario), Path(out), seed=seed, progress=False)))

    _worker(run)


def _chain_worker(out: str, scenario: str, seed: int, res: dict) -> None:
    _worker(offline_chain, Path(out), scenario, seed, res, False)


def offline_chain(out: Path, scenario: str, seed: int, res: dict, progress: bool = True) -> dict:
    """Steps 2-5 of the demo on a simulated night in ``out``: track, score against truth, alert, draw.

    Writes tracks.jsonl, alerts/, summary.json and overview.png; returns the summary."""
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
    from skytrace.sim.scenario import load_scenario
    from skytrace.zones import builtin_oblasts, read_zones

    conf = load_config()
    sc = load_scenario(scenario)
    typer.echo("[2/5] tracking (skytrace track)")
    tracker_conf = conf.tracker
    if res["n_sensors"] == 1:  # single-sensor data (bench2d): one sensor must be enough to confirm a track
        tracker_conf = dataclasses.replace(tracker_conf, confirm_min_sensors=1)
    tr = track_files(out / "sensors.json", out / "detections.jsonl", out / "tracks.jsonl", 1.0, tracker_conf,
                     progress=progress, pipeline_config=conf.pipeline,
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
    return summary


def _fmt(value, spec: str) -> str:
    """A figure for the summary lines: ``n/a`` when it could not be computed (e.g. a very short scenario)."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(value, spec)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
