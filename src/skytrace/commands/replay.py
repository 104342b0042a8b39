"""``skytrace replay``: publish a detections.jsonl to a live service, paced by arrival time at N x speed."""

from __future__ import annotations

from pathlib import Path

import typer


def replay(
    directory: Path = typer.Argument(..., help="Directory with sensors.json and detections.jsonl."),
    speed: float = typer.Option(1.0, "--speed", help="Replay speed (x real time)."),
    mqtt: str = typer.Option("", "--mqtt", help="Publish to this MQTT broker host:port (QoS 1)."),
    http: str = typer.Option("", "--http", help="POST to this service base URL instead (loopback)."),
    retime: bool = typer.Option(True, "--retime/--no-retime",
                                help="Shift times so the first report is 'now' (for a wall-clock service)."),
    limit_s: float = typer.Option(0.0, "--limit-s", help="Stop after this many seconds of data (0: all)."),
    sign_dir: Path | None = typer.Option(None, "--sign-dir", help="Sign each sensor's batches with its key "
                                                                  "DIR/<sensor>.key (for a service with --keys)."),
) -> None:
    """Replay recorded detections into a running `skytrace serve`."""
    from skytrace.service.replay import replay_detections

    if bool(mqtt) == bool(http):
        raise typer.BadParameter("give exactly one of --mqtt HOST:PORT or --http URL")
    if sign_dir is not None and not retime:
        raise typer.BadParameter("--sign-dir needs --retime: a signed batch is only accepted near its sending time")
    res = replay_detections(directory, speed=speed, mqtt=mqtt or None, http=http or None, retime=retime,
                            limit_s=limit_s or None, progress=lambda s: typer.echo(s), sign_dir=sign_dir)
    typer.echo(f"published {res['published']} detections in {res['messages']} messages in {res['wall_s']:.1f} s"
               + (f"; {res['skipped']} bad lines skipped" if res["skipped"] else "")
               + (f"; {res['rejected']} rejected by the service (422)" if res.get("rejected") else ""))


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
