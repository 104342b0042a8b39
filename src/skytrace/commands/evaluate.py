"""``skytrace evaluate``: score tracks against truth (GOSPA and its parts, OSPA, RMSE, breaks, ID switches)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import typer


def _mean_ospa(truth, tracks, score, c_m: float, p: float) -> float:
    """Mean OSPA over the same grid instants, recomputed from positions (GOSPA's parts do not give it)."""
    import numpy as np

    from skytrace.evaluation import ospa
    from skytrace.evaluation.tracking import _interp_truth
    from skytrace.geo import LocalFrame

    per = _interp_truth(truth)
    allpts = np.vstack([v[1] for v in per.values()])
    frame = LocalFrame(float(np.mean(allpts[:, 0])), float(np.mean(allpts[:, 1])), 0.0)
    enu = {tid: (ts, np.column_stack(frame.to_enu(x[:, 0], x[:, 1], x[:, 2]))) for tid, (ts, x) in per.items()}
    dt = float(np.min(np.diff(score.times))) if score.times.size > 1 else 1.0
    by_t = defaultdict(list)
    for tp in tracks:
        if tp.status in ("confirmed", "coasting"):
            by_t[round(tp.t / dt) * dt].append((tp.lat, tp.lon, tp.alt_m))
    vals = []
    for t in score.times:
        X = np.array([[np.interp(t, ts, e[:, k]) for k in range(3)] for ts, e in enu.values()
                      if ts[0] - 1e-6 <= t <= ts[-1] + 1e-6]).reshape(-1, 3)
        pts = np.array(by_t.get(round(t / dt) * dt, [])).reshape(-1, 3)
        Y = np.column_stack(frame.to_enu(pts[:, 0], pts[:, 1], pts[:, 2])).reshape(-1, 3) if len(pts) else pts
        vals.append(ospa(X, Y, c=c_m, p=p))
    return float(np.mean(vals)) if vals else 0.0


def _strict(obj):
    """Strict JSON: an undefined number (e.g. RMSE with no assigned track) becomes null, never NaN."""
    import math

    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strict(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


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
    import numpy as np

    from skytrace.batch import ACOUSTIC, SensorTable
    from skytrace.errors import SkytraceError
    from skytrace.evaluation.tracking import confirmation_report, evaluate_tracks, heard_targets, observed_times
    from skytrace.io import formats

    truth_recs = formats.read_truth(truth)
    track_recs = formats.read_tracks(tracks)
    if not truth_recs:
        raise SkytraceError(f"{truth}: no truth points")
    score_all = evaluate_tracks(truth_recs, track_recs, dt=every, c=c, p=p)
    out = {"all_flying": score_all.summary()}
    out["all_flying"]["mean_ospa_m"] = round(_mean_ospa(truth_recs, track_recs, score_all, c, p), 2)
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
    out = _strict(out)
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    for name, summ in out.items():
        typer.echo(f"{name}:")
        for k, v in summ.items():
            typer.echo(f"  {k}: {v}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
