"""``skytrace evaluate``: score tracks against truth (GOSPA and its parts, RMSE, breaks, ID switches)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from skytrace.batch import ACOUSTIC, SensorTable
from skytrace.errors import SkytraceError
from skytrace.evaluation.tracking import confirmation_report, evaluate_tracks, heard_targets, observed_times
from skytrace.io import formats


def evaluate(
    truth: Path = typer.Option(..., "--truth", help="truth.jsonl"),
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl"),
    every: float = typer.Option(1.0, "--every", help="Scoring interval (s); use the tracker's --every."),
    c: float = typer.Option(500.0, "--c", help="GOSPA cut-off distance (m)."),
    p: float = typer.Option(2.0, "--p", help="GOSPA order."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Simulation output (sensors.json, detections.jsonl, "
                                        "meta.json, detection_labels.npy) for coverage-aware scores."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score a tracks file against truth; with --run-dir also within sensor coverage and per heard drone."""
    truth_recs = formats.read_truth(truth)
    track_recs = formats.read_tracks(tracks)
    if not truth_recs:
        raise SkytraceError(f"{truth}: no truth points")
    out = {"all_flying": evaluate_tracks(truth_recs, track_recs, dt=every, c=c, p=p).summary()}
    if run_dir is not None:
        needed = ["sensors.json", "detections.jsonl", "meta.json", "detection_labels.npy"]
        missing = [n for n in needed if not (run_dir / n).exists()]
        if missing:
            raise SkytraceError(f"{run_dir}: missing {', '.join(missing)} (a directory written by skytrace simulate)")
        table = SensorTable.from_sensors(formats.read_sensors(run_dir / "sensors.json"))
        dets = formats.read_detections(run_dir / "detections.jsonl", table)
        labels = np.load(run_dir / "detection_labels.npy")
        if labels.shape[0] != len(dets):
            raise SkytraceError(f"{run_dir}: detection_labels.npy does not match detections.jsonl")
        ids = [t["target"] for t in json.loads((run_dir / "meta.json").read_text())["targets"]]
        obs = observed_times(labels, dets.t, ids, dets.sensor, min_sensors=2)
        score = evaluate_tracks(truth_recs, track_recs, dt=every, c=c, p=p, observed=obs)
        out["localisable"] = score.summary()
        heard = heard_targets(labels, dets.t, dets.sensor, table.kind == ACOUSTIC, ids)
        rep = confirmation_report(score, heard)
        out["heard_by_2_nodes_30s"] = rep
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    for name, summ in out.items():
        typer.echo(f"{name}:")
        for k, v in summ.items():
            typer.echo(f"  {k}: {v}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
