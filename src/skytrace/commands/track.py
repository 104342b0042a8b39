"""``skytrace track``: detections.jsonl -> tracks.jsonl, streaming in bounded memory."""

from __future__ import annotations

from pathlib import Path

import typer


def track(
    sensors: Path = typer.Option(..., "--sensors", help="sensors.json"),
    detections: Path = typer.Option(..., "--detections", help="detections.jsonl (any order; arrival order best)"),
    out: Path = typer.Option(..., "--out", help="tracks.jsonl to write"),
    every: float = typer.Option(1.0, "--every", help="Write every reported track (status confirmed, coasting or "
                                "tentative) at each multiple of DT seconds."),
    lag: float | None = typer.Option(None, "--lag", help="Seconds reports may arrive late and still be used in "
                                                         "order (default: [tracker] lag_s of the configuration)."),
    min_sensors: int | None = typer.Option(None, "--min-sensors", min=1,
                                           help="Distinct sensors needed to confirm a track (1 only for "
                                                "single-sensor data such as the bench2d scenario)."),
    use_imm: bool | None = typer.Option(None, "--imm/--no-imm", help="IMM of a cruise and a manoeuvring model."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad lines instead of stopping."),
    heartbeats: Path | None = typer.Option(None, "--heartbeats",
                                           help="heartbeats.jsonl of the sensors (as written by `skytrace simulate`): "
                                                "alive sensors' silence lowers the existence of tracks they should "
                                                "hear. Default: heartbeats.jsonl next to the detections, if present."),
) -> None:
    """Track every drone: fuse all sensors' detections into 3-D tracks (tracks.jsonl)."""
    import dataclasses

    from skytrace.config import load_config

    if every <= 0 or (lag is not None and lag < 0):
        raise typer.BadParameter("--every must be > 0 and --lag >= 0")
    conf = load_config()
    over = {k: v for k, v in (("lag_s", lag), ("confirm_min_sensors", min_sensors), ("imm", use_imm))
            if v is not None}
    cfg = dataclasses.replace(conf.tracker, **over)
    from skytrace.pipeline import track_files

    if heartbeats is None and (detections.parent / "heartbeats.jsonl").is_file():
        heartbeats = detections.parent / "heartbeats.jsonl"
    res = track_files(sensors, detections, out, every, cfg, skip_bad, pipeline_config=conf.pipeline,
                      heartbeats_path=heartbeats,
                      identity_config=conf.identity)
    st, ps = res["tracker"], res["pipeline"]
    typer.echo(res["read"].summary())
    if heartbeats is not None:
        typer.echo(f"heartbeats: {st.get('heartbeats', 0)} from {heartbeats} (alive sensors' silence used)")
    rejected = ps["rejected_future"] + ps["rejected_old"]
    typer.echo(f"tracker: {st['processed']} detections processed, {st['assigned']} assigned to tracks, "
               f"{st['late_dropped']} arrived later than the {cfg.lag_s:g} s lag, {rejected} rejected as "
               f"implausibly dated ({ps['rejected_future']} future, {ps['rejected_old']} too old); "
               f"{st['tracks_confirmed']} tracks confirmed")
    typer.echo(f"wrote {res['track_points']} track points to {out} in {res['cpu_s']:.1f} s CPU")


def register(app: typer.Typer) -> None:
    app.command("track")(track)
