"""Benchmark of the acoustic node (`skytrace node`) on synthetic scenes: detection, false alarms, ROC per
confuser, bearing accuracy, CPU and latency; on the train split's generator (new seeds) and on the held-out split.

    python bench/bench_node.py [--quick] [--workers 2] [--out docs/bench_node.json] [--only KIND,GROUP,SPLIT]

Scenes (bench/node/scenes.py): a Shahed-class engine (300-1500 m, 100-600 m up, 40-55 m/s) or a multirotor
(40-250 m) moving past the array, rendered with Doppler and a ground reflection, mixed with background at a
controlled *band SNR* (source power over background power in 50-2000 Hz at microphone 0, whole clip);
confusers (moped, chainsaw, generator, car, voice, siren, helicopter, jet; held out: lawnmower, vacuum cleaner,
birds) at +10 dB over the background; backgrounds alone (diffuse ambient, wind, traffic; held out: rain,
thunder). A subset of static scenes is rendered by pyroomacoustics (free field + ground).

Definitions: Pd = fraction of 1 s windows (from 2 s after the sound reaches the array) that contain a drone
line (class uav-*) within 20 deg of the true bearing; a false detection = a drone line on a scene without a
drone; bearing error = |reported - true| of every drone line on drone scenes; CPU = process time of the
processor per second of audio; latency = audio time at which a line was written minus its time stamp ``t``
(the processor's own delay; a live node adds the sound card's buffer), and onset latency = first correct line
after the engine starts minus the start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "node"))

import evalkit
import scenes

from skytrace.node.array import load_preset
from skytrace.node.classify import Classifier
from skytrace.node.processor import NodeConfig

ROOT = Path(__file__).resolve().parents[1]
FS = 16000
UAV = ("uav-engine", "uav-multirotor")


def _job(spec: dict) -> dict:
    """Render one scene, run the node, return a compact summary (runs in a worker process)."""
    rng = np.random.default_rng(spec["seed"])
    arr = load_preset(spec["array"])
    if spec.get("pra"):
        sc = scenes.pra_static_scene(spec["kind"], arr.mics_m, FS, spec["dur"], spec["snr"], spec["bg"], rng,
                                     spec["split"])
    else:
        sc = scenes.make_scene(spec["kind"], arr.mics_m, FS, spec["dur"], spec["snr"], spec["bg"], rng,
                               spec["split"])
    audio = sc.audio
    onset = spec.get("onset_s", 0.0)
    if onset:  # silence (background only) before the source starts
        n0 = int(onset * FS)
        bg = scenes.background(spec["bg"], np.random.default_rng(spec["seed"] + 1), n0, FS, arr.mics_m)
        bg = bg / np.abs(bg).max() * np.abs(audio).max() * 10 ** (-spec["snr"] / 20) * 0.5
        audio = np.vstack([bg, audio])
        sc.az_true_deg = np.concatenate([np.full(n0, np.nan), sc.az_true_deg])
    cfg = NodeConfig(**{"uav_threshold": 0.5, **spec.get("cfg", {})})
    clf = Classifier.load(spec["classifier"]) if spec.get("classifier") else None
    run = evalkit.run_scene(audio, FS, arr, cfg, clf, emit_times=True)
    step = FS // 10
    return {**spec, "audio_s": run.audio_s, "cpu_s": run.cpu_s,
            "truth_az": sc.az_true_deg[::step].tolist(),
            "dets": [(d.t, d.bearing_deg, d.cls, d.class_conf, d.bearing_sigma_deg, d.snr_db, e)
                     for d, e in zip(run.detections, run.emit_audio_s, strict=True)],
            "hits": [(h[0], float(h[2][0] + h[2][1]), h[4]) for h in run.hits]}


def _truth(res: dict, t: float) -> float:
    i = int(round(t * 10))
    return res["truth_az"][i] if 0 <= i < len(res["truth_az"]) else float("nan")


def pd_windows(res: dict, p_min: float | None = None) -> tuple[int, int]:
    """(windows with a correct drone report, windows) for one drone scene; p_min: use track hits with
    P(uav) >= p_min instead of the written lines (for the ROC)."""
    truth = np.array(res["truth_az"], dtype=float)
    heard = np.flatnonzero(np.isfinite(truth))
    if heard.size == 0:
        return 0, 0
    t_start = heard[0] / 10.0 + 2.0
    n_win = int(np.floor(res["audio_s"] - t_start))
    if n_win <= 0:
        return 0, 0
    if p_min is None:
        reps = [(d[0], d[1]) for d in res["dets"] if d[2] in UAV]
    else:
        reps = [(h[0], h[2]) for h in res["hits"] if h[1] >= p_min]
    ok = np.zeros(n_win, bool)
    for t, az in reps:
        w = int(np.floor(t - t_start))
        if 0 <= w < n_win and evalkit.ang_err(az, _truth(res, t)) < 20.0:
            ok[w] = True
    return int(ok.sum()), n_win


def false_per_min(res: dict, p_min: float | None = None) -> float:
    n = (sum(1 for d in res["dets"] if d[2] in UAV) if p_min is None
         else sum(1 for h in res["hits"] if h[1] >= p_min))
    return n / (res["audio_s"] / 60.0)


def bearing_errors(res: dict) -> list[float]:
    return [float(evalkit.ang_err(d[1], _truth(res, d[0]))) for d in res["dets"] if d[2] in UAV
            and np.isfinite(_truth(res, d[0]))]


def specs(quick: bool) -> list[dict]:
    n = 2 if quick else 4
    out = []
    seed = 1000
    for split in ("train", "heldout"):
        for kind in ("engine", "multirotor"):
            for snr, arr in ((0.0, "circle4-32mm"), (-10.0, "circle4-32mm"), (-10.0, "circle6-46mm")):
                for _ in range(n):
                    seed += 1
                    bg = (scenes.BACKGROUNDS_TRAIN if split == "train" else scenes.BACKGROUNDS_HELDOUT)[seed % (
                        3 if split == "train" else 2)]
                    out.append({"group": "drone", "split": split, "kind": kind, "snr": snr, "array": arr,
                                "bg": bg, "dur": 12.0, "seed": seed})
        confusers = scenes.CONFUSERS_TRAIN if split == "train" else scenes.CONFUSERS_HELDOUT
        for kind in confusers:
            for _ in range(1 if quick else 2):
                seed += 1
                out.append({"group": "confuser", "split": split, "kind": kind, "snr": 10.0, "array": "circle4-32mm",
                            "bg": "diffuse", "dur": 30.0, "seed": seed})
        for bg in (scenes.BACKGROUNDS_TRAIN if split == "train" else scenes.BACKGROUNDS_HELDOUT):
            seed += 1
            out.append({"group": "background", "split": split, "kind": None, "snr": 0.0, "array": "circle4-32mm",
                        "bg": bg, "dur": 30.0 if quick else 60.0, "seed": seed})
    for snr, arr in ((0.0, "circle4-32mm"), (-10.0, "circle6-46mm")):
        for _ in range(n):
            seed += 1
            out.append({"group": "pra", "split": "train", "kind": "engine", "snr": snr, "array": arr, "bg": "diffuse",
                        "dur": 10.0, "seed": seed, "pra": True})
    for _ in range(2):
        seed += 1
        out.append({"group": "latency", "split": "train", "kind": "engine", "snr": 0.0, "array": "circle4-32mm",
                    "bg": "diffuse", "dur": 8.0, "seed": seed, "onset_s": 6.0})
    return out


def _pct(x, q):
    return round(float(np.percentile(x, q)), 2) if len(x) else None


def summarise(results: list[dict]) -> dict:
    rep: dict = {"detection": {}, "bearing": {}, "false_alarms_per_min": {}, "cpu": {}, "latency": {}}
    for split in ("train", "heldout"):
        for kind in ("engine", "multirotor"):
            for snr, arr in ((0.0, "circle4-32mm"), (-10.0, "circle4-32mm"), (-10.0, "circle6-46mm")):
                rs = [r for r in results if r["group"] == "drone" and r["split"] == split and r["kind"] == kind
                      and r["snr"] == snr and r["array"] == arr]
                if not rs:
                    continue
                hit = sum(pd_windows(r)[0] for r in rs)
                tot = sum(pd_windows(r)[1] for r in rs)
                errs = [e for r in rs for e in bearing_errors(r)]
                key = f"{split}/{kind}/{snr:+.0f}dB/{arr}"
                rep["detection"][key] = {"pd": round(hit / max(tot, 1), 3), "windows": tot, "scenes": len(rs)}
                rep["bearing"][key] = {"median_deg": _pct(errs, 50), "p90_deg": _pct(errs, 90), "lines": len(errs)}
        for grp in ("background", "confuser"):
            for r in (r for r in results if r["group"] == grp and r["split"] == split):
                key = f"{split}/{grp}/{r['kind'] or r['bg']}"
                prev = rep["false_alarms_per_min"].get(key)
                fa = false_per_min(r)
                rep["false_alarms_per_min"][key] = round(fa if prev is None else 0.5 * (prev + fa), 2)
    for snr, arr in ((0.0, "circle4-32mm"), (-10.0, "circle6-46mm")):
        rs = [r for r in results if r["group"] == "pra" and r["snr"] == snr and r["array"] == arr]
        errs = [e for r in rs for e in bearing_errors(r)]
        hit = sum(pd_windows(r)[0] for r in rs)
        tot = sum(pd_windows(r)[1] for r in rs)
        rep["bearing"][f"pyroomacoustics-static/engine/{snr:+.0f}dB/{arr}"] = {
            "median_deg": _pct(errs, 50), "p90_deg": _pct(errs, 90), "lines": len(errs),
            "pd": round(hit / max(tot, 1), 3)}
    four = [r for r in results if r["array"] == "circle4-32mm"]
    per = [1000 * r["cpu_s"] / r["audio_s"] for r in four]
    drone = [1000 * r["cpu_s"] / r["audio_s"] for r in four if r["group"] == "drone"]
    rep["cpu"] = {"ms_per_audio_s_4ch_16k_median": _pct(per, 50), "max": _pct(per, 100),
                  "with_drone_median": _pct(drone, 50)}
    lat = [d[6] - d[0] for r in results for d in r["dets"]]
    onset = []
    for r in (r for r in results if r["group"] == "latency"):
        firsts = [d[6] for d in r["dets"] if d[2] in UAV and d[0] >= r["onset_s"]]
        if firsts:
            onset.append(min(firsts) - r["onset_s"] - (np.flatnonzero(np.isfinite(r["truth_az"]))[0] / 10.0
                                                      - r["onset_s"]))
    rep["latency"] = {"line_written_after_t_s_median": _pct(lat, 50), "max": _pct(lat, 100),
                      "onset_to_first_line_s": [round(float(x), 2) for x in onset]}
    return rep


def roc(results: list[dict], out_png: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = np.linspace(0.0, 1.0, 21)
    drones = [r for r in results if r["group"] == "drone" and r["snr"] == -10.0 and r["array"] == "circle4-32mm"
              and r["kind"] == "engine"]
    pd = []
    for p in thr:
        h = sum(pd_windows(r, p)[0] for r in drones)
        t = sum(pd_windows(r, p)[1] for r in drones)
        pd.append(h / max(t, 1))
    curves = {}
    fig, ax = plt.subplots(figsize=(7, 5))
    for kind in scenes.CONFUSERS_TRAIN + scenes.CONFUSERS_HELDOUT + ("background",):
        rs = [r for r in results if (r["group"] == "confuser" and r["kind"] == kind)
              or (kind == "background" and r["group"] == "background")]
        if not rs:
            continue
        fa = [float(np.mean([false_per_min(r, p) for r in rs])) for p in thr]
        curves[kind] = {"fa_per_min": [round(x, 2) for x in fa]}
        held = kind in scenes.CONFUSERS_HELDOUT
        ax.plot(fa, pd, "--" if held else "-", marker=".", label=kind + (" (held out)" if held else ""))
    ax.axvline(3.0, color="grey", lw=0.8)
    ax.set_xscale("symlog", linthresh=0.5)
    ax.set_xlabel("false drone detections per minute (confuser at +10 dB over background)")
    ax.set_ylabel("Pd (engine, -10 dB band SNR, 4-mic 32 mm)")
    ax.set_title("skytrace node: ROC per confuser (threshold on P(uav))")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return {"threshold": thr.round(2).tolist(), "pd": [round(x, 3) for x in pd], "curves": curves}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer and shorter scenes (a few minutes)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/bench_node.json")
    ap.add_argument("--roc", type=Path, default=ROOT / "docs/img/node_roc.png")
    ap.add_argument("--classifier", type=Path, help="classifier weights to evaluate instead of the shipped ones")
    ap.add_argument("--only", default="", help="comma-separated filter: keep scenes whose kind, group, split or "
                    "background is listed (e.g. generator,lawnmower or heldout); a quick look, not the full report")
    ap.add_argument("--cfg", action="append", default=[], metavar="NAME=VALUE",
                    help="override a NodeConfig number for this run (e.g. uav_threshold=0.4); repeatable")
    args = ap.parse_args()
    overrides = {}
    for kv in args.cfg:
        name, _, value = kv.partition("=")
        if name not in NodeConfig.__dataclass_fields__ or not value:
            raise SystemExit(f"--cfg {kv}: expected NAME=VALUE with NAME a NodeConfig field")
        overrides[name] = type(getattr(NodeConfig(), name))(value)
    jobs = specs(args.quick)
    for j in jobs:
        j["cfg"] = overrides
    if args.only:
        keep = set(args.only.split(","))
        jobs = [j for j in jobs if keep & {str(j["kind"]), j["group"], j["split"], j["bg"]}]
        if not jobs:
            raise SystemExit(f"--only {args.only}: no scene matches")
    for j in jobs:
        j["classifier"] = str(args.classifier) if args.classifier else None
    t0 = time.time()
    results = []
    with ProcessPoolExecutor(args.workers) as ex:
        for i, r in enumerate(ex.map(_job, jobs)):
            results.append(r)
            if (i + 1) % 10 == 0 or i + 1 == len(jobs):
                print(f"  {i + 1}/{len(jobs)} scenes ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    rep = summarise(results)
    rep["roc"] = roc(results, args.roc) if not args.only else None
    rep["scenes"] = len(results)
    rep["audio_s"] = round(sum(r["audio_s"] for r in results), 1)
    args.out.write_text(json.dumps(rep, indent=1) + "\n")
    print(json.dumps({k: v for k, v in rep.items() if k != "roc"}, indent=1))
    print(f"wrote {args.out} and {args.roc}")


if __name__ == "__main__":
    main()
