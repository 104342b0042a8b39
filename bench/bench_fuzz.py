"""Hostile-input benchmark: N mutated inputs per reader and payload validator; crashes, hangs and time.

Uses the harness of :mod:`skytrace.security.fuzzing` (the same targets as tests/test_fuzz_readers.py): a seed
file per reader, mutated by an AFL-style byte mutator (not coverage guided). A *crash* is any exception other than
a ``SkytraceError`` from a file reader, or any exception at all from a payload validator; a *hang* is one input
taking more than 1 s. Prints one JSON line per target and a summary; exits 1 if anything crashed or hung.

    nice -n 10 python bench/bench_fuzz.py --n 100000            # all targets
    python bench/bench_fuzz.py --n 20000 --targets zones scenario
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from skytrace.security.fuzzing import TARGETS, run_target, scratch_dir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="inputs per target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", nargs="*", default=list(TARGETS), choices=list(TARGETS))
    args = ap.parse_args()
    work = scratch_dir()
    bad = 0
    for name in args.targets:
        t0 = time.perf_counter()
        res = run_target(TARGETS[name], args.n, seed=args.seed, workdir=work,
                         progress=lambda i, name=name: print(f"  {name}: {i}", file=sys.stderr, end="\r"))
        wall = time.perf_counter() - t0
        bad += res.crashes + res.hangs
        print(json.dumps({"target": name, "inputs": res.inputs, "accepted": res.accepted, "rejected": res.rejected,
                          "crashes": res.crashes, "hangs": res.hangs, "max_ms": round(res.max_s * 1e3, 1),
                          "slowest_retimed_ms": round(res.slowest_retimed_s * 1e3, 1),
                          "mean_us": round(res.total_s / max(res.inputs, 1) * 1e6, 1), "wall_s": round(wall, 1),
                          "first_crashes": [c for c, _ in res.first_crashes]}), flush=True)
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    print(f"total crashes + hangs: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
