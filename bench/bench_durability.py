"""Kill -9 benchmark: acknowledged = stored, exactly once, over several SIGKILLs of the real service.

A node posts signed batches (5 reports each) over HTTP to ``skytrace serve`` (a subprocess); every ``--every``
acknowledged batches the service is killed with SIGKILL while the node is sending, and restarted; the node
resends its unanswered batch, in order, until it is answered (as a node with a send queue does on a connection
error or a 503). At the end every batch answered (202, or 422 "replayed" on a retry: stored before the kill but
not answered) must be stored exactly once; acknowledged batches sent again must be refused as replays.

Usage (PostgreSQL: run under ``bash .ci/with-services.sh`` and pass ``--db "$SKYTRACE_TEST_PG_URL"``, or any URL)::

    python bench/bench_durability.py --kills 5 --every 200
    bash .ci/with-services.sh sh -c 'python bench/bench_durability.py --kills 5 --db "$SKYTRACE_TEST_PG_URL"'

Prints one JSON line per run and writes bench/out/bench_durability.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_harness import PER_BATCH, HttpStream, Service, Site, bearings_of, post, stored_bearings, wait_for


def run(db: str | None, kills: int, every: int, root: Path) -> dict:
    site = Site.create(root / "site")
    db = db or str(root / "live.db")
    svc = Service(site, db)
    t0 = time.monotonic()
    svc.start()
    stream = HttpStream(site, svc.port)
    th = stream.start()
    try:
        for _ in range(kills):
            target = len(stream.acked) + every
            if not wait_for(lambda t=target: len(stream.acked) >= t, 600):
                raise RuntimeError("the node stopped getting acknowledgements")
            n_fail = stream.failures
            svc.kill9()  # mid-stream
            wait_for(lambda n=n_fail: stream.failures > n, 60)
            svc.start()  # the node resends its unanswered batch, in order, until the service answers
        target = len(stream.acked) + every
        wait_for(lambda: len(stream.acked) >= target, 600)
    finally:
        stream.stop_flag.set()
        th.join(60)
    replays = [post(svc.port, body) for body in list(stream.acked.values())[:200]]
    status = svc.status()
    svc.stop()
    rows = Counter(stored_bearings(db))
    sent = stream.sent()
    missing = sum(1 for s in sent if any(rows.get(b, 0) == 0 for b in bearings_of(s)))
    return {"store": "postgresql" if db.startswith("postgres") else "sqlite", "kills": kills,
            "batches_answered": len(sent), "batches_acked": len(stream.acked),
            "stored_before_kill_unanswered": len(stream.refused_on_retry), "refused_first_try": len(stream.refused),
            "node_retries": stream.failures, "reports_stored": sum(rows.values()),
            "reports_expected": PER_BATCH * len(sent), "answered_batches_missing": missing,
            "reports_stored_twice": sum(1 for n in rows.values() if n > 1),
            "replays_refused": sum(c == 422 for c in replays), "replays_sent": len(replays),
            "inbox": {k: status["inbox"][k] for k in ("commits", "commit_ms_max", "duplicates")},
            "wall_s": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--every", type=int, default=200, help="acknowledged batches between kills")
    ap.add_argument("--db", default=None, help="store URL (default: a SQLite file in a temporary directory)")
    ap.add_argument("--out", default="bench/out/bench_durability.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-kill9-") as tmp:
        res = run(args.db, args.kills, args.every, Path(tmp))
    print(json.dumps(res), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    ok = res["answered_batches_missing"] == 0 and res["reports_stored_twice"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
