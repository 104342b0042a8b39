"""``skytrace evaluate``: score a tracks file against a truth file (GOSPA and its parts, OSPA, RMSE, breaks)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import typer

from skytrace.errors import SkytraceError
from skytrace.evaluation import evaluate_tracks, ospa
from skytrace.evaluation.tracking import _interp_truth
from skytrace.geo import LocalFrame
from skytrace.io import formats


def evaluate_files(truth_path: Path, tracks_path: Path, every_s: float | None = None, c_m: float = 500.0,
                   p: float = 2.0, skip_bad: bool = False) -> dict:
    """Scores of ``tracks_path`` against ``truth_path`` as a plain dict (what ``--json`` prints)."""
    on_error = "skip" if skip_bad else "raise"
    truth = formats.read_truth(truth_path, on_error=on_error)
    tracks = formats.read_tracks(tracks_path, on_error=on_error)
    if not truth:
        raise SkytraceError(f"{truth_path}: no truth records")
    try:
        score = evaluate_tracks(truth, tracks, dt=every_s, c=c_m, p=p)
    except ValueError as exc:
        raise SkytraceError(str(exc)) from None
    out = score.summary()
    out["c_m"], out["p"], out["alpha"] = c_m, p, 2
    out["mean_ospa_m"] = round(_mean_ospa(truth, tracks, score, c_m, p), 2)
    # strict JSON: an undefined value (e.g. RMSE with no assigned track) is null, never NaN
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def _mean_ospa(truth, tracks, score, c_m: float, p: float) -> float:
    """Mean OSPA over the same grid instants, recomputed from positions (GOSPA's parts do not give it)."""
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


def evaluate(
    truth: Path = typer.Option(..., "--truth", help="truth.jsonl (from the simulator)"),
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl (from skytrace track or any tracker)"),
    every: float = typer.Option(None, "--every", help="Score at each multiple of DT s (default: the tracks' own)."),
    c: float = typer.Option(500.0, "--c", help="GOSPA/OSPA cut-off distance in metres."),
    p: float = typer.Option(2.0, "--p", help="GOSPA/OSPA order."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad lines instead of stopping."),
) -> None:
    """Score tracks against truth: GOSPA (localisation / missed / false), OSPA, RMSE, track breaks, ID switches."""
    if c <= 0 or p < 1 or (every is not None and every <= 0):
        raise typer.BadParameter("need --c > 0, --p >= 1 and --every > 0")
    res = evaluate_files(truth, tracks, every, c, p, skip_bad)
    if as_json:
        typer.echo(json.dumps(res))
        return
    for k, v in res.items():
        typer.echo(f"{k:>28}: {v}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
