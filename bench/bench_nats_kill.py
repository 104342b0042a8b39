"""Kill -9 of the NATS JetStream server (and of the service) mid-stream: every report the server acknowledged is
stored, exactly once.

The real chain: a node publishes signed batches (5 reports each) to a real ``nats-server -js`` (file storage), each
retried with the same ``Nats-Msg-Id`` until the server acknowledges it (the publish acknowledgement comes after the
message is in the stream's store); ``skytrace serve --nats`` (a subprocess, durable inbox: a message is acknowledged
to JetStream only after the commit, --keys) takes them into SQLite. Every ``--every`` batches the JetStream server
is killed with SIGKILL and restarted on the same store directory; with ``--service-kills`` the service is killed
too (and restarted) as many times, spread over the run.

Counted at the end (each report carries a unique bearing): published (acknowledged by JetStream), stored,
**lost** (acknowledged, never stored), **stored twice**, the publisher's retries, and the time for the service to
catch up after the last batch.

    python bench/bench_nats_kill.py --batches 6000 --kills 10 --service-kills 2 --rate 200
    python bench/bench_nats_kill.py --batches 6000 --kills 10 --rate 200 --cluster 3   # 3 servers, stream R3

With ``--cluster 3`` the node and the service are given all three servers of one JetStream cluster, the stream has
3 replicas, and the kills rotate over the servers; a killed server stays down ``--down-s`` seconds, then rejoins.

Prints one JSON line and writes bench/out/bench_nats_kill.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_harness import (
    SENSOR,
    NatsCluster,
    NatsServer,
    Service,
    Site,
    bearings_of,
    js_publish,
    stored_bearings,
    wait_for,
)
from skytrace.io.jetstream import subject_for


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=10, help="kill -9 of the JetStream server, evenly spread")
    ap.add_argument("--service-kills", type=int, default=1, help="kill -9 of the service, evenly spread")
    ap.add_argument("--rate", type=float, default=200.0, help="batches per second the node publishes")
    ap.add_argument("--cluster", type=int, default=1, help="servers: 1, or 3 (one JetStream cluster, stream R3)")
    ap.add_argument("--down-s", type=float, default=None,
                    help="seconds a killed server stays down (default: 0 for one server, 3 in a cluster)")
    ap.add_argument("--out", default="bench/out/bench_nats_kill.json")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-nats-kill-"))
    site = Site.create(tmp / "site")
    server = NatsServer(tmp / "js") if args.cluster == 1 else NatsCluster(tmp / "js", args.cluster)
    nodes = getattr(server, "nodes", [server])
    down_s = args.down_s if args.down_s is not None else (0.0 if args.cluster == 1 else 3.0)
    server.start()
    db = str(tmp / "serve.db")
    svc = Service(site, db, nats_url=server.url, nats_replicas=args.cluster)
    svc.start()
    n = args.batches
    print(f"signing {n} batches ...", file=sys.stderr, flush=True)
    batches = [site.batch(k) for k in range(n)]
    items = [(subject_for(SENSOR), f"{SENSOR}:{seq}", payload) for seq, payload in batches]
    service_restarts: list[threading.Thread] = []

    def kill_server() -> None:
        victim = nodes[server.kills % len(nodes)]
        victim.kill9()
        time.sleep(down_s)  # the scenario: the server stays dead this long (the others, if any, carry on)
        victim.start()
        print(f"  JetStream server killed -9 and restarted ({server.kills})", file=sys.stderr, flush=True)

    def kill_service() -> None:
        svc.kill9()
        print("  service killed -9; restarting", file=sys.stderr, flush=True)
        th = threading.Thread(target=svc.start, daemon=True)  # the node keeps publishing meanwhile
        th.start()
        service_restarts.append(th)

    # the kills come from another thread at set times, whatever the node is doing (a publish in flight, the
    # service consuming): not between two publishes
    duration_s = n / args.rate
    plan = sorted([((j + 1) * duration_s / (args.kills + 1), kill_server) for j in range(args.kills)]
                  + [((j + 0.45) * duration_s / max(args.service_kills, 1), kill_service)
                     for j in range(args.service_kills)], key=lambda p: p[0])
    t0 = time.monotonic()

    def killer() -> None:
        for at_s, kill in plan:
            time.sleep(max(0.0, t0 + at_s - time.monotonic()))
            kill()

    th_kill = threading.Thread(target=killer, daemon=True)
    th_kill.start()
    stall: list[float] = []
    retries = asyncio.run(js_publish(server.url, items, deadline_s=3600, rate_per_s=args.rate,
                                     replicas=args.cluster, stall=stall))
    t_pub = time.monotonic() - t0
    th_kill.join(120)
    for th in service_restarts:
        th.join(300)
    want = sorted(b for seq, _ in batches for b in bearings_of(seq))
    t1 = time.monotonic()
    wait_for(lambda: len(stored_bearings(db)) >= len(want), 600)
    catch_up = time.monotonic() - t1
    time.sleep(2.0)  # anything stored twice would come now
    log = svc.stop()
    server.stop()
    counts = Counter(stored_bearings(db))
    shutil.rmtree(tmp, ignore_errors=True)  # the servers' stores and the database: counted, no longer needed
    stored_batches = {seq for seq, _ in batches if all(counts.get(b, 0) >= 1 for b in bearings_of(seq))}
    lost = [seq for seq, _ in batches if seq not in stored_batches]
    twice = sum(1 for c in counts.values() if c > 1)
    res = {"batches_published": n, "reports_published": len(want), "servers": args.cluster,
           "stream_replicas": args.cluster, "down_s": down_s, "longest_publish_stall_s": round(stall[0], 2),
           "jetstream_kills": server.kills,
           "service_kills": args.service_kills, "rate_batches_per_s": args.rate, "publisher_retries": retries,
           "batches_lost": len(lost), "reports_stored_twice": twice, "reports_stored": sum(counts.values()),
           "publish_s": round(t_pub, 1), "catch_up_s": round(catch_up, 1),
           "service_errors": log.count("Traceback")}
    print(json.dumps(res))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    return 0 if not lost and not twice else 1


if __name__ == "__main__":
    sys.exit(main())
