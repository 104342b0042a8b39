"""Run every benchmark in turn with settings that finish in minutes, and collect their output (``make bench``).

Benchmarks measure; nothing here asserts a speed. Each benchmark prints its own table; this script runs them as
separate processes (so one failure does not hide the others), streams their output, and writes
``bench/out/run_all.txt`` with the exit status and wall time of each.

    python bench/run_all.py [--only NAME ...] [--full]

``--full`` uses each benchmark's own defaults (the figures in docs/ were measured that way; tens of minutes).
Benchmarks added later (one ``bench/bench_*.py`` file each) are picked up automatically and run with no arguments.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# quick settings: (script, arguments); None = needs a server or a prepared directory, run by hand (see its doc)
QUICK: dict[str, list[str] | None] = {
    "bench_sim.py": ["--hours", "0.25"],
    "bench_assess.py": ["--repeat", "3"],
    "bench_vs_stonesoup.py": ["--n", "10", "50", "200"],
    "bench_pcrlb.py": ["--runs", "50"],
    "bench_alerts.py": [],
    "bench_scenario.py": None,  # needs a simulated directory: python bench/bench_scenario.py DIR
    "bench_store.py": None,  # needs PostgreSQL: python bench/bench_store.py --pg URL
    "bench_live.py": None,  # needs Mosquitto: python bench/bench_live.py --help
    "bench_durability.py": ["--kills", "2", "--every", "50"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="bench file names (with or without .py)")
    ap.add_argument("--full", action="store_true", help="each benchmark's own defaults (long)")
    args = ap.parse_args()
    scripts = sorted(p.name for p in HERE.glob("bench_*.py"))
    if args.only:
        want = {n if n.endswith(".py") else n + ".py" for n in args.only}
        unknown = want - set(scripts)
        if unknown:
            print(f"error: no such benchmark: {', '.join(sorted(unknown))} (have: {', '.join(scripts)})")
            return 2
        scripts = [s for s in scripts if s in want]
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    rows = []
    for name in scripts:
        argv = QUICK.get(name, [])
        if argv is None and not args.full:
            rows.append((name, "skipped (needs a server or a directory; see its docstring)", 0.0))
            continue
        cmd = [sys.executable, str(HERE / name)] + ([] if args.full else (argv or []))
        print(f"\n===== {name} {' '.join(cmd[2:])}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call(cmd)
        rows.append((name, "ok" if rc == 0 else f"exit {rc}", time.monotonic() - t0))
    summary = "\n".join(f"{n:<28} {status:<60} {dt:8.1f} s" for n, status, dt in rows)
    (out_dir / "run_all.txt").write_text(summary + "\n")
    print("\n===== summary\n" + summary)
    return 0 if all(s in ("ok",) or s.startswith("skipped") for _, s, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
