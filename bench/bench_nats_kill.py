"""Kill -9 of the NATS JetStream server (and once of the service) mid-wave: published = stored, exactly once.

The real chain: a node publishes signed batches (5 reports each) to a real ``nats-server -js`` (file store) on
``skytrace.v1.detections.<sensor>``, with JetStream publish acknowledgements: a batch counts as published once the
server acknowledged it; without an acknowledgement (server dead, restarting, timeout) the node publishes it again,
with the same ``Nats-Msg-Id``, until it gets one. ``skytrace serve --nats`` (a subprocess; durable pull consumer,
acknowledgement only after the store's commit) takes them into SQLite. ``--kills`` times the server is killed with
SIGKILL while the node is publishing and restarted at once on the same store directory; once, the service is killed
with SIGKILL and restarted while the node keeps publishing into the log.

Counted at the end (each report carries a unique bearing, so every stored row is traced to its batch): published
(acknowledged by JetStream), **lost** (acknowledged, never stored), **stored twice**, the stream's own message
count, redeliveries refused by the service (``replayed``: the verifier's anti-replay window seeded from the store).

    python bench/bench_nats_kill.py --batches 3000 --kills 4 --rate 200

Prints one JSON line and writes bench/out/bench_nats_kill.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_harness import (
    PER_BATCH,
    SENSOR,
    NatsCluster,
    NatsServer,
    Service,
    Site,
    bearings_of,
    stored_bearings,
    wait_stored,
)


async def _publish_all(site: Site, server: NatsServer, svc: Service, batches: int, kills: int, rate: float,
                       in_flight: int, kill_service: bool) -> dict:
    import nats

    from skytrace.io.jetstream import ensure_stream, msg_id, server_list, subject_for

    async def quiet(_exc: Exception) -> None:  # connection errors while the server is down are expected here
        pass

    nodes = getattr(server, "nodes", [server])
    nc = await nats.connect(server_list(server.url), max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                            connect_timeout=2, name=f"{SENSOR}-node", error_cb=quiet)
    js = nc.jetstream()
    await ensure_stream(js, replicas=len(nodes))
    acked: dict[int, int] = {}  # batch index -> stream sequence of its acknowledgement
    dup_acks = 0  # acknowledgements saying "duplicate": the stream already held that Nats-Msg-Id
    ack_times: list[float] = []
    attempts = Counter()
    sem = asyncio.Semaphore(in_flight)
    subject = subject_for(SENSOR)

    async def publish(k: int, body: bytes, seq: int) -> None:
        nonlocal dup_acks
        try:
            while True:
                attempts[k] += 1
                try:
                    ack = await js.publish(subject, body, timeout=2.0, headers={"Nats-Msg-Id": msg_id(SENSOR, seq)})
                except Exception:  # no acknowledgement (server down, restarting): publish again
                    await asyncio.sleep(0.1)
                    continue
                acked[k] = ack.seq
                ack_times.append(time.monotonic())
                dup_acks += bool(ack.duplicate)
                return
        finally:
            sem.release()

    every = max(1, batches // (kills + 1))
    kill_at: list[int] = []
    service_kill_at: int | None = None
    restart = None
    down = None  # (a killed cluster server, the batch index at which it is restarted)
    tasks = []
    t0 = time.monotonic()
    for k in range(batches):
        await sem.acquire()
        seq, body = site.batch(k)
        tasks.append(asyncio.create_task(publish(k, body, seq)))
        if k and k % every == 0 and server.kills < kills:
            kill_at.append(k)
            victim = nodes[len(kill_at) % len(nodes)]
            victim.kill9()  # mid-wave: publishes in flight, messages delivered to the service and not yet acked
            if len(nodes) == 1:
                await asyncio.to_thread(victim.start)  # restarted at once on its store
            else:  # a cluster server stays down for half an interval (the others carry on), then rejoins
                down = (victim, k + every // 2)
        if down is not None and k >= down[1]:
            await asyncio.to_thread(down[0].start)
            down = None
        if kill_service and service_kill_at is None and k == every // 2:
            service_kill_at = k
            svc.kill9()  # the node keeps publishing into the log while the service is down
            restart = asyncio.create_task(asyncio.to_thread(svc.start))
        lag = t0 + (k + 1) / rate - time.monotonic()
        if lag > 0:
            await asyncio.sleep(lag)  # the node's pace (the sender's rate, not a wait for a condition)
    if down is not None:
        await asyncio.to_thread(down[0].start)
    await asyncio.gather(*tasks)
    if restart is not None:
        await restart
    info = await js.stream_info("SKYTRACE")
    await nc.close()
    return {"acked": acked, "dup_acks": dup_acks, "retries": sum(attempts.values()) - len(attempts),
            "kill_at": kill_at, "service_kill_at": service_kill_at, "stream_messages": info.state.messages,
            "max_ack_gap_s": max((b - a for a, b in itertools.pairwise(ack_times)), default=0.0),
            "publish_s": time.monotonic() - t0}


def run(root: Path, batches: int, kills: int, rate: float, in_flight: int = 64, kill_service: bool = True,
        settle_s: float = 240.0, quiet_s: float = 45.0, cluster: int = 1) -> dict:
    site = Site.create(root / "site")
    server = NatsServer(root / "nats") if cluster == 1 else NatsCluster(root / "nats", cluster)
    server.start()
    db = str(root / "live.db")
    svc = Service(site, db, nats_url=server.url, nats_replicas=cluster)
    svc.start()
    t0 = time.monotonic()
    try:
        pub = asyncio.run(_publish_all(site, server, svc, batches, kills, rate, in_flight, kill_service))
        expected = PER_BATCH * len(pub["acked"])
        # until all are stored, or nothing more arrives for ``quiet_s`` (longer than the consumer's ack_wait, 30 s:
        # a message delivered to the killed service and never acknowledged is redelivered after it)
        wait_stored(db, expected, settle_s, quiet_s)
        status = svc.status()
    finally:
        log = svc.stop()
        server.stop()
    rows = Counter(stored_bearings(db))
    copies = [rows.get(bearings_of(1_000 + k)[0], 0) for k in range(batches)]
    acked = pub["acked"]
    auth = status.get("auth") or {}
    nats_stats = (status.get("inputs") or {}).get("nats") or {}
    return {"batches_published": batches, "reports_per_batch": PER_BATCH, "servers": cluster,
            "stream_replicas": cluster, "server_kills": server.kills,
            "service_kills": int(pub["service_kill_at"] is not None), "rate_batches_per_s": rate,
            "acked_by_jetstream": len(acked), "node_retries": pub["retries"],
            "acks_marked_duplicate": pub["dup_acks"], "stream_messages": pub["stream_messages"],
            "longest_publish_stall_s": round(pub["max_ack_gap_s"], 2),
            "stored_batches": sum(1 for c in copies if c), "lost_acked": sum(1 for k in acked if copies[k] == 0),
            "stored_twice": sum(1 for c in copies if c > 1),
            "rows_stored": sum(rows.values()), "rows_expected": PER_BATCH * len(acked),
            "lost_batch_index": [k for k in sorted(acked) if copies[k] == 0][:20],
            "killed_server_at_batch_index": pub["kill_at"], "killed_service_at_batch_index": pub["service_kill_at"],
            "redeliveries_refused_replayed": (auth.get("rejected_by_reason") or {}).get("replayed", 0),
            "inbox_duplicates": (status.get("inbox") or {}).get("duplicates", 0),
            "service_after_restart": {k: nats_stats.get(k) for k in ("messages", "acked", "redelivered",
                                                                     "fetch_errors", "disconnects")},
            "traceback_in_service_log": "Traceback" in log, "publish_s": round(pub["publish_s"], 1),
            "wall_s": round(time.monotonic() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=4, help="kill -9 of the nats-server, evenly over the run")
    ap.add_argument("--rate", type=float, default=200.0, help="batches per second the node publishes")
    ap.add_argument("--in-flight", type=int, default=64, help="publishes awaiting their acknowledgement at once")
    ap.add_argument("--no-service-kill", action="store_true", help="do not kill -9 the service")
    ap.add_argument("--cluster", type=int, default=1, help="servers: 1, or 3 (a JetStream cluster, stream with 3 "
                                                           "replicas; the kills rotate over the servers)")
    ap.add_argument("--out", default="bench/out/bench_nats_kill.json")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="skytrace-nats-kill-"))
    try:
        res = run(root, a.batches, a.kills, a.rate, a.in_flight, not a.no_service_kill, cluster=a.cluster)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(res))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
