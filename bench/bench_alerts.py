"""Alert quality on skytrace's own tracks: the evidence policy vs the per-zone engine and today's practice.

Policies, all fed skytrace's own output of the same run (never the truth):

- ``oblast``: today's practice: a whole oblast under alert while any tracked drone is within ``--radius-km`` of
  it, cleared 10 min after; copied to the oblast's cells.
- ``raion``: the same rule on raion-like zones (each oblast's cells grouped into 5 compact pieces, approximating
  raion alerting, in force in Ukraine since December 2025).
- ``zone``: skytrace's per-zone engine on confirmed and coasting tracks only (lead 300 s: the earlier default).
- ``evidence``: the default policy: tracks of every status, lost tracks, lone reports, the wave prior.

Scored per grid-cell entry and per oblast entry of every drone (from truth): missed entries, median and 10th
percentile lead time, needless km^2-minutes (a cell alerted while no drone enters it within 20 min) also as a
share of the oblast baseline's, alerts per zone per night (alert fatigue), and misses by cause. Entries "by
reported drones" count only drones that some sensor had reported before the entry.

    python bench/bench_alerts.py --run RUN [--run RUN2 ...] [--json out.json]
    python bench/bench_alerts.py --run RUN --sweep docs/img/alerts-tradeoff.png

A run directory holds sensors.json, detections.jsonl, detection_labels.npy, meta.json, truth.jsonl (from
``skytrace simulate``), heartbeats.jsonl when the simulation wrote it (handed to the policy: only alive sensors'
silence counts) and tracks.jsonl (from ``skytrace track``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from skytrace.alerting import EvidenceAlertConfig, ZoneAlertConfig
from skytrace.batch import SensorTable
from skytrace.commands.alerts import run_alerts
from skytrace.evaluation.alerts import (
    MISS_CAUSES,
    expand_periods,
    expand_to_children,
    leaf_ids,
    leaf_periods,
    miss_causes,
    oblast_baseline,
    rollup_periods,
    score_alerts,
    zone_areas_km2,
    zone_entries,
)
from skytrace.io import formats
from skytrace.zones import builtin_oblasts
from skytrace.zones_grid import approx_raions, default_zones

M_PER_DEG = 111_320.0


def report_times(run: Path) -> dict[str, np.ndarray]:
    """Per drone: sorted times at which any sensor reported it (simulation labels)."""
    table = SensorTable.from_sensors(formats.read_sensors(run / "sensors.json"))
    t = np.concatenate([b.t for b in formats.iter_detection_batches(run / "detections.jsonl", table,
                                                                     batch_size=100_000)])
    labels = np.load(run / "detection_labels.npy")
    ids = [x["target"] for x in json.loads((run / "meta.json").read_text())["targets"]]
    out: dict[str, np.ndarray] = {}
    ok = labels >= 0
    order = np.argsort(labels[ok], kind="stable")
    lab, tt = labels[ok][order], t[ok][order]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    for chunk_l, chunk_t in zip(np.split(lab, bounds), np.split(tt, bounds), strict=True):
        if chunk_l.size:
            out[ids[int(chunk_l[0])]] = np.sort(chunk_t)
    return out


def tracked_times(truth: list, tracks: list, every_s: float = 10.0, gate_m: float = 3000.0
                  ) -> dict[str, np.ndarray]:
    """Per drone: the times (every ``every_s``) at which a confirmed or coasting track was within ``gate_m``."""
    tr_by: dict[float, list] = defaultdict(list)
    for p in tracks:
        if p.status in ("confirmed", "coasting") and abs(p.t / every_s - round(p.t / every_s)) < 1e-6:
            tr_by[round(p.t)].append(p)
    tru_by: dict[float, list] = defaultdict(list)
    for p in truth:
        if round(p.t) in tr_by:
            tru_by[round(p.t)].append(p)
    out: dict[str, list[float]] = defaultdict(list)
    for t, ps in tru_by.items():
        trs = tr_by[t]
        tl = np.array([q.lat for q in trs])
        tn = np.array([q.lon for q in trs])
        for p in ps:
            d = np.hypot((tl - p.lat) * M_PER_DEG, (tn - p.lon) * M_PER_DEG * np.cos(np.radians(p.lat)))
            if d.size and d.min() <= gate_m:
                out[p.target].append(float(t))
    return {k: np.sort(np.array(v)) for k, v in out.items()}


class RunData:
    """Everything the scoring needs from one run directory (loaded once)."""

    def __init__(self, run: Path, radius_km: float, every_s: float):
        self.run = run
        self.evidence_periods: list = []  # the last evidence policy run's cell periods (for --breakdown)
        self.truth = formats.read_truth(run / "truth.jsonl")
        self.tracks = formats.read_tracks(run / "tracks.jsonl")
        self.zones = default_zones()
        self.oblasts = builtin_oblasts()
        self.cells = leaf_ids(self.zones)
        self.raions, self.raion_cells = approx_raions(self.zones)
        entries = zone_entries(self.truth, self.zones)
        self.cell_entries = {k: v for k, v in entries.items() if k[1] in self.cells}
        ob = set(self.oblasts.ids)
        self.oblast_entries = {k: v for k, v in entries.items() if k[1] in ob}
        self.reports = report_times(run)
        self.tracked = tracked_times(self.truth, self.tracks, every_s)
        self.reported_cell = {k for k, te in self.cell_entries.items()
                              if (self.reports.get(k[0], np.zeros(0)) <= te).any()}
        self.reported_oblast = {k for k, te in self.oblast_entries.items()
                                if (self.reports.get(k[0], np.zeros(0)) <= te).any()}
        # the baselines alert on localised drones (confirmed and coasting tracks): tentative tracks, written to
        # tracks.jsonl too, are mostly ghosts and would inflate the baselines' needless area (and flatter ratios)
        located = [p for p in self.tracks if p.status in ("confirmed", "coasting")]
        self.base = {
            "oblast": expand_to_children(oblast_baseline(located, self.oblasts, radius_km, every_s), self.zones),
            "raion": expand_periods(oblast_baseline(located, self.raions, radius_km, every_s), self.raion_cells),
        }

    def score(self, name: str, cell_periods: list, window_s: float) -> dict:
        zones = self.zones
        cell = score_alerts(cell_periods, self.cell_entries, zones, zone_ids=self.cells)
        cell_rep = score_alerts(cell_periods, self.cell_entries, zones, zone_ids=self.cells,
                                entry_filter=self.reported_cell)
        ob_periods = rollup_periods(cell_periods, zones)
        ob_ids = set(self.oblasts.ids)
        ob = score_alerts(ob_periods, self.oblast_entries, zones, zone_ids=ob_ids)
        ob_rep = score_alerts(ob_periods, self.oblast_entries, zones, zone_ids=ob_ids,
                              entry_filter=self.reported_oblast)
        out = cell.summary()
        out.update({
            "policy": name,
            "missed_reported": cell_rep.missed, "entries_reported": cell_rep.entries,
            "oblast_entries": ob.entries, "oblast_missed": ob.missed,
            "oblast_entries_reported": ob_rep.entries, "oblast_missed_reported": ob_rep.missed,
            "oblast_median_lead_s": ob.summary()["median_lead_s"],
            "causes": miss_causes(cell.missed_keys, self.reports, self.tracked, window_s=window_s),
            "oblast_causes": miss_causes(ob.missed_keys, self.reports, self.tracked, window_s=window_s),
        })
        return out


PREVIOUS = {"negative_info": False, "clear_passed_s": 120.0, "uncorroborated_window_s": float("inf")}
"""The evidence policy as measured before negative information, the quick all-clear and corroboration."""


def run_policy(data: RunData, config, tag: str, every_s: float, with_reports: bool, leaves_only: bool = False
               ) -> tuple[list, float, int]:
    """Alert periods on the cells (parents' periods copied to their cells unless ``leaves_only``), CPU s, events."""
    c0 = time.process_time()
    res = run_alerts(data.run / "tracks.jsonl", data.zones, data.run / f"alerts-{tag}", every_s, config,
                     write_cap=False, sensors_path=data.run / "sensors.json",
                     detections_path=(data.run / "detections.jsonl") if with_reports else None,
                     heartbeats_path=(data.run / "heartbeats.jsonl") if with_reports and (
                         data.run / "heartbeats.jsonl").is_file() else None)
    cpu = time.process_time() - c0
    periods = [a for a in res["periods"] if a.zone in data.cells] if leaves_only else leaf_periods(
        res["periods"], data.zones)
    return periods, cpu, len(res["events"])


def evaluate(data: RunData, every_s: float, quick: bool = False, change: dict | None = None) -> list[dict]:
    """Every policy on one run; ``quick``: the baselines and the default evidence policy only; ``change``: settings
    of the evidence policy changed from its defaults (``--set``)."""
    rows = []
    for name in ("oblast", "raion"):
        rows.append(data.score(name, data.base[name], 960.0) | {"cpu_s": 0.0, "events": None})
    if not quick:
        zp, zc, zn = run_policy(data, ZoneAlertConfig(lead_target_s=300.0), "zone", every_s, False,
                                leaves_only=True)
        rows.append(data.score("zone/300, cells (before)", zp, 360.0) | {"cpu_s": round(zc, 1), "events": zn})
        zp, zc, zn = run_policy(data, ZoneAlertConfig(lead_target_s=300.0), "zone", every_s, False)
        rows.append(data.score("zone/300, cells + its oblast alerts", zp, 360.0) | {"cpu_s": round(zc, 1),
                                                                                    "events": zn})
        cfg = EvidenceAlertConfig(**PREVIOUS)
        ep, ec, en = run_policy(data, cfg, "evidence", every_s, True)
        rows.append(data.score("evidence, previous settings", ep, cfg.lead_target_s + 60.0)
                    | {"cpu_s": round(ec, 1), "events": en})
    cfg = EvidenceAlertConfig(**(change or {}))
    ep, ec, en = run_policy(data, cfg, "evidence", every_s, True)
    data.evidence_periods = ep
    rows.append(data.score("evidence (after)", ep, cfg.lead_target_s + 60.0) | {"cpu_s": round(ec, 1),
                                                                                "events": en})
    base = rows[0]["false_alert_km2_min"] or 1
    for r in rows:
        r["needless_vs_oblast"] = round(r["false_alert_km2_min"] / base, 3)
    return rows


def _evidence_kind(ids: list[str]) -> str:
    """What raised an alert period, from the ids in its ``tracks``: tracks (``T...``), lost tracks, lone node
    bearings (``node:``), lone plots per sensor (``plot:SENSOR:...``)."""
    kinds = set()
    for i in ids:
        head, _, rest = i.partition(":")
        if not rest:
            kinds.add("track")
        elif head == "plot":
            kinds.add("plot " + rest.partition(":")[0])
        else:
            kinds.add(head)
    return " + ".join(sorted(kinds)) or "none"


def needless_breakdown(data: RunData, periods: list, horizon_s: float = 1200.0, step_s: float = 10.0) -> dict:
    """Where the needless area of ``periods`` (cell alerted while no drone enters it within ``horizon_s``) lies:
    by how long until the cell's next entry (an early alert vs a cell no drone reaches), and by the evidence that
    raised the period. Shares of the needless km^2-minutes."""
    areas = dict(zip(data.zones.ids, zone_areas_km2(data.zones), strict=True))
    entries: dict[str, list[float]] = defaultdict(list)
    for (_, zid), te in data.cell_entries.items():
        entries[zid].append(te)
    sorted_entries = {z: np.sort(np.array(v)) for z, v in entries.items()}
    by_next: dict[str, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    total = 0.0
    edges = ((1800.0, "next entry in 20-30 min"), (3600.0, "in 30-60 min"), (7200.0, "in 1-2 h"),
             (np.inf, "no entry within 2 h"))
    for a in periods:
        grid = np.arange(a.start, a.end if a.end is not None else a.start, step_s)
        if grid.size == 0:
            continue
        et = sorted_entries.get(a.zone, np.zeros(0))
        k = np.searchsorted(et, grid)
        gap = np.full(grid.size, np.inf)
        gap[k < et.size] = et[k[k < et.size]] - grid[k < et.size]
        needless = gap[gap > horizon_s]
        w = areas[a.zone] * step_s / 60.0
        total += needless.size * w
        by_kind[_evidence_kind(a.tracks)] += needless.size * w
        for hi, label in edges:
            by_next[label] += float((needless <= hi).sum()) * w  # the shorter gaps were taken out before
            needless = needless[needless > hi]
    share = {k: round(v / max(total, 1e-9), 3) for k, v in by_kind.items()}
    return {"needless_km2_min": round(total), "by_next_entry": {k: round(v / max(total, 1e-9), 3)
                                                                for k, v in by_next.items()},
            "by_evidence": dict(sorted(share.items(), key=lambda kv: -kv[1]))}


def miss_anatomy(data: RunData, periods: list, before_s: float = 900.0) -> dict:
    """What the drones of the missed cell entries of ``periods`` had in common: the oblast of the cell, how many
    reports of the drone came in the ``before_s`` before the entry (simulation labels), whether a confirmed track
    had ever held it before, whether the oblast baseline missed it too; and the night's coverage: the share of
    10 s instants of drone flight at which no sensor had reported the drone in the 20 s before."""
    from skytrace.evaluation.alerts import score_alerts as _score

    missed = _score(periods, data.cell_entries, data.zones, zone_ids=data.cells).missed_keys
    base_missed = set(_score(data.base["oblast"], data.cell_entries, data.zones, zone_ids=data.cells).missed_keys)
    by_oblast: dict[str, int] = defaultdict(int)
    by_reports: dict[str, int] = defaultdict(int)
    tracked_before = 0
    empty = np.zeros(0)
    for tgt, zid, te in missed:
        by_oblast[zid.split(":")[0]] += 1
        rep = data.reports.get(tgt, empty)
        n_recent = int(((rep <= te) & (rep >= te - before_s)).sum())
        if not (rep <= te).any():
            by_reports["never reported"] += 1
        elif n_recent == 0:
            by_reports[f"no report in the {before_s / 60:.0f} min before (heard earlier)"] += 1
        elif n_recent <= 3:
            by_reports["1-3 reports in that time"] += 1
        else:
            by_reports["4 or more reports in that time"] += 1
        tracked_before += int((data.tracked.get(tgt, empty) <= te).any())
    instants = unheard = 0
    for p in data.truth:
        if abs(p.t / 10.0 - round(p.t / 10.0)) > 1e-6:
            continue
        rep = data.reports.get(p.target, empty)
        k = np.searchsorted(rep, p.t, side="right")
        instants += 1
        unheard += int(k == 0 or p.t - rep[k - 1] > 20.0)
    return {"missed": len(missed), "by_oblast": dict(sorted(by_oblast.items(), key=lambda kv: -kv[1])),
            "by_reports": dict(by_reports), "tracked_before": tracked_before,
            "also_missed_by_the_oblast_baseline": sum(1 for k in missed if k in base_missed),
            "unheard_share_of_flight": round(unheard / max(instants, 1), 3)}


def print_breakdown(run: Path, b: dict, top: int = 12) -> None:
    print(f"\nneedless area of the evidence policy on {run.name} ({b['needless_km2_min']:,} km^2-min):\n")
    print("| time to the cell's next drone entry | share |\n|---|---|")
    for k, v in b["by_next_entry"].items():
        print(f"| {k} | {100 * v:.1f} % |")
    print("\n| evidence that raised the alert period | share |\n|---|---|")
    for k, v in list(b["by_evidence"].items())[:top]:
        print(f"| {k} | {100 * v:.1f} % |")
    print(flush=True)


def print_rows(run: Path, rows: list[dict]) -> None:
    print(f"\n## {run.name}\n")
    print("| policy | cell entries | missed | missed (reported drones) | oblast entries | missed | missed "
          "(reported) | median lead s | p10 lead s | needless km^2-min | vs oblast | alerts/zone mean (max) "
          "| CAP events | cpu s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['policy']} | {r['entries']:,} | {r['missed']} ({100 * r['missed'] / max(r['entries'], 1):.1f} %)"
              f" | {r['missed_reported']} of {r['entries_reported']:,} | {r['oblast_entries']} | "
              f"{r['oblast_missed']} | {r['oblast_missed_reported']} of {r['oblast_entries_reported']} | "
              f"{r['median_lead_s']} | {r['p10_lead_s']} | {r['false_alert_km2_min']:,} | "
              f"{100 * r['needless_vs_oblast']:.0f} % | {r['alerts_per_alerted_zone_mean']} "
              f"({r['alerts_per_zone_max']}) | {r['events'] if r['events'] is not None else '-'} | {r['cpu_s']} |")
    print("\nmisses by cause (cell entries):\n")
    print("| policy | " + " | ".join(MISS_CAUSES) + " |")
    print("|---|" + "---|" * len(MISS_CAUSES))
    for r in rows:
        print(f"| {r['policy']} | " + " | ".join(str(r["causes"][c]) for c in MISS_CAUSES) + " |")
    print(flush=True)


SWEEP = [
    ("defaults", {}),
    ("lead_target_s 600", {"lead_target_s": 600.0}),
    ("hyp_p_raise 0.25", {"hyp_p_raise": 0.25}),
    ("clear_passed_s 120", {"clear_passed_s": 120.0}),
    ("uncorroborated_window_s 600", {"uncorroborated_window_s": 600.0}),
    ("no negative information", {"negative_info": False}),
    ("rearm_s 600 (flickering zones hold longer)", {"rearm_s": 600.0}),
    ("clutter_tau_s 3600 (confusers remembered for an hour)", {"clutter_tau_s": 3600.0}),
    ("previous settings, lead_target_s 600", {**PREVIOUS, "lead_target_s": 600.0}),
]
"""The evidence policy's settings swept for the trade-off curve: each point changes one setting of the defaults."""


def sweep(data: RunData, every_s: float, png: Path) -> list[dict]:
    """Missed vs needless area over the evidence policy's main settings (:data:`SWEEP`); writes a PNG."""
    points = []
    base = data.score("oblast", data.base["oblast"], 960.0)
    raion = data.score("raion", data.base["raion"], 960.0)
    for label, change in SWEEP:
        cfg = EvidenceAlertConfig(**change)
        p, _, n_events = run_policy(data, cfg, "sweep", every_s, True)
        r = data.score("evidence", p, cfg.lead_target_s + 60.0)
        points.append({"setting": label, "missed": r["missed"], "entries": r["entries"],
                       "needless_km2_min": r["false_alert_km2_min"],
                       "needless_vs_oblast": round(r["false_alert_km2_min"] / max(base["false_alert_km2_min"], 1), 3),
                       "median_lead_s": r["median_lead_s"], "p10_lead_s": r["p10_lead_s"],
                       "alerts_per_alerted_cell": r["alerts_per_alerted_zone_mean"], "events": n_events})
        print(json.dumps(points[-1]), flush=True)
    zp, _, _ = run_policy(data, ZoneAlertConfig(lead_target_s=300.0), "zone", every_s, False, leaves_only=True)
    zone = data.score("zone", zp, 360.0)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot([p["needless_km2_min"] / 1e6 for p in points], [100 * p["missed"] / p["entries"] for p in points], "o",
            color="tab:blue", label="evidence policy (defaults, and one setting changed)")
    for p in points:
        ax.annotate(p["setting"], (p["needless_km2_min"] / 1e6, 100 * p["missed"] / p["entries"]), fontsize=6,
                    xytext=(4, 3), textcoords="offset points")
    for name, r, m in (("oblast baseline", base, "s"), ("raion baseline (approx.)", raion, "D"),
                       ("zone engine, lead 300 s, cells (before)", zone, "x")):
        ax.plot([r["false_alert_km2_min"] / 1e6], [100 * r["missed"] / r["entries"]], m, ms=9, label=name)
    ax.set_xlabel("needless alerted area, million km² x min")
    ax.set_ylabel("missed cell entries, %")
    meta = json.loads((data.run / "meta.json").read_text())
    ax.set_title(f"{meta['scenario']} seed {meta['seed']}: missed vs needless area (skytrace's own tracks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, action="append", required=True, help="run directory (repeatable)")
    ap.add_argument("--every", type=float, default=10.0, help="alert step, s")
    ap.add_argument("--radius-km", type=float, default=30.0, help="baselines: distance of a drone that alerts")
    ap.add_argument("--json", type=Path, default=None, help="write all rows as JSON")
    ap.add_argument("--sweep", type=Path, default=None, help="trade-off curve PNG (first run only)")
    ap.add_argument("--quick", action="store_true", help="baselines and the default evidence policy only")
    ap.add_argument("--breakdown", action="store_true",
                    help="also split the evidence policy's needless area by time to the next entry and by evidence")
    ap.add_argument("--misses", action="store_true",
                    help="also describe the evidence policy's missed cell entries and the night's coverage")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="evidence policy setting changed from its default (repeatable), e.g. rearm_s=600")
    args = ap.parse_args()
    change = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in EvidenceAlertConfig.__dataclass_fields__ or not value:
            raise SystemExit(f"--set {item}: expected FIELD=VALUE with a field of EvidenceAlertConfig")
        kind = type(getattr(EvidenceAlertConfig(), key))
        change[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    results = {}
    for run in args.run:
        data = RunData(run, args.radius_km, args.every)
        if args.sweep is not None:
            results[str(run)] = sweep(data, args.every, args.sweep)
            break
        rows = evaluate(data, args.every, args.quick, change)
        print_rows(run, rows)
        results[str(run)] = rows
        if args.breakdown:
            b = needless_breakdown(data, data.evidence_periods)
            print_breakdown(run, b)
            rows[-1]["needless_breakdown"] = b
        if args.misses:
            m = miss_anatomy(data, data.evidence_periods)
            print(f"\nmissed cell entries of the evidence policy on {run.name}: {json.dumps(m, indent=1)}", flush=True)
            rows[-1]["miss_anatomy"] = m
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
