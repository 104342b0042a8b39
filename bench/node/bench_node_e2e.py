"""End-to-end benchmark of the acoustic chain on a simulated night: kyiv-night truth -> engine audio at the real
positions of the acoustic nodes nearest one drone's path -> `skytrace node` on each -> `skytrace track`.

    python bench/node/bench_node_e2e.py [--nodes 6] [--dur 90] [--out docs/bench_node_e2e.json]

Simulates kyiv-night (first 2 h, seed 7) into a temporary directory unless --run-dir is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skytrace.node.e2e import run_case

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, help="an existing `skytrace simulate kyiv-night` output")
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--dur", type=float, default=90.0)
    ap.add_argument("--snr-1km", type=float, default=5.0, help="band SNR of the engine at 1 km, dB")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/bench_node_e2e.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = Path(tmp) / "sim"
            exe = str(Path(sys.executable).parent / "skytrace")
            subprocess.run([exe, "simulate", "kyiv-night", "--out", str(run_dir),
                            "--duration", "7200", "--seed", "7", "--quiet"], check=True)
        t0 = time.time()
        res = run_case(run_dir, Path(tmp) / "e2e", n_nodes=args.nodes, dur_s=args.dur, seed=7,
                       snr_1km_db=args.snr_1km, progress=lambda s: print(" ", s, file=sys.stderr))
        res["wall_s"] = round(time.time() - t0, 1)
        res["nodes_n"] = args.nodes
        res["audio_s_per_node"] = args.dur
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
