"""``skytrace track``: detections.jsonl -> tracks.jsonl, streaming in bounded memory."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from skytrace.batch import SensorTable
from skytrace.io import formats
from skytrace.pipeline import Pipeline, run
from skytrace.tracking import TrackerConfig


def track_files(sensors_path: Path, detections_path: Path, out: Path, every_s: float = 1.0,
                config: TrackerConfig | None = None, skip_bad: bool = False, progress: bool = False) -> dict:
    """Run the tracker over a detections file (in file = arrival order); write confirmed tracks every ``every_s``."""
    from skytrace.interop.identity import IdentityMap

    table = SensorTable.from_sensors(formats.read_sensors(sensors_path))
    identities = IdentityMap.scan(detections_path)  # cooperative targets (ADS-B, Remote ID) tag their tracks
    pipe = Pipeline(table, zones=None, tracker_config=config)
    stats = formats.ReadStats()
    batches = formats.iter_detection_batches(detections_path, table, batch_size=20_000,
                                             on_error="skip" if skip_bad else "raise", stats=stats)
    n_points = 0
    cpu0 = time.process_time()
    prog = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Path(detections_path).open("rb") as fh:
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        prog = Progress(TextColumn("tracking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        transient=True)
        prog.start()
        task = prog.add_task("track", total=total)

        def counted(it):
            for b in it:
                yield b
                prog.update(task, completed=stats.lines)

        batches = counted(batches)
    with formats.JsonlWriter(out) as w:
        def on_step(res) -> None:
            nonlocal n_points
            recs = res.tracks.to_records()
            identities.tag(recs)
            w.write_many(recs)
            n_points += len(recs)

        # flush the lag at the end: keep stepping until every buffered report is processed
        steps = run(pipe, batches, every_s, on_step=on_step)
        last = pipe.tracker.t_processed + pipe.tracker.cfg.lag_s
        for k in range(1, int(pipe.tracker.cfg.lag_s / every_s) + 2):
            on_step(pipe.step(last + k * every_s))
            steps += 1
    if prog is not None:
        prog.stop()
    return {"read": stats, "tracker": dict(pipe.tracker.stats), "track_points": n_points, "steps": steps,
            "cpu_s": time.process_time() - cpu0}


def track(
    sensors: Path = typer.Option(..., "--sensors", help="sensors.json"),
    detections: Path = typer.Option(..., "--detections", help="detections.jsonl (any order; arrival order best)"),
    out: Path = typer.Option(..., "--out", help="tracks.jsonl to write"),
    every: float = typer.Option(1.0, "--every", help="Write every confirmed track at each multiple of DT seconds."),
    lag: float = typer.Option(5.0, "--lag", help="Seconds reports may arrive late and still be used in order."),
    min_sensors: int = typer.Option(2, "--min-sensors", min=1,
                                    help="Distinct sensors needed to confirm a track (1 only for single-sensor "
                                         "data such as the bench2d scenario)."),
    use_imm: bool = typer.Option(False, "--imm", help="IMM of a cruise and a manoeuvring model (dog-legs, dives)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad lines instead of stopping."),
) -> None:
    """Track every drone: fuse all sensors' detections into 3-D tracks (tracks.jsonl)."""
    if every <= 0 or lag < 0:
        raise typer.BadParameter("--every must be > 0 and --lag >= 0")
    cfg = TrackerConfig(lag_s=lag, confirm_min_sensors=min_sensors, imm=use_imm)
    res = track_files(sensors, detections, out, every, cfg, skip_bad)
    st = res["tracker"]
    typer.echo(res["read"].summary())
    typer.echo(f"tracker: {st['processed']} detections processed, {st['assigned']} assigned, "
               f"{st['late_dropped']} later than the lag, {st['tracks_confirmed']} tracks confirmed")
    typer.echo(f"wrote {res['track_points']} track points to {out} in {res['cpu_s']:.1f} s CPU")


def register(app: typer.Typer) -> None:
    app.command("track")(track)
