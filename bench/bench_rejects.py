"""Hostile report batches through the live service's HTTP ingest: every forged, replayed, unsigned, wrongly signed
and out-of-window batch rejected, every genuine one stored once, with the counts per reason.

The service runs in-process (``--keys``: a key registry with one node, SQLite store, durable inbox: 202 only
after the commit). ``--n`` batches of each kind, interleaved at random (seeded):

- genuine: signed by the node's registered key;
- replayed: a genuine batch sent again (after the original);
- unsigned: a plain detection list;
- forged: signed with a key the registry does not know (``unknown_key``);
- tampered: a genuine batch with one detection's bearing changed after signing (``bad_signature``);
- wrong sensor: signed by the node but carrying another sensor's detection (``sensor_mismatch``);
- stale / future: genuine signatures, ``t_sent`` 10 min in the past / 1 min in the future (``out_of_window``).

MQTT and NATS JetStream ingest run the same verifier (``skytrace.io.mqtt.open_signed_batch``); the fuzzing of
every reader is ``bench/bench_fuzz.py``.

    python bench/bench_rejects.py --n 1000

Prints a table and writes bench/out/bench_rejects.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

from skytrace.model import Detection
from skytrace.security.fuzzing import _table
from skytrace.security.keys import KeyRegistry, generate_private_key, load_private_key
from skytrace.security.signing import Signer, Verifier

JSON = {"Content-Type": "application/json"}
KINDS = ("genuine", "replayed", "unsigned", "forged", "tampered", "wrong_sensor", "stale", "future")


def _tamper(body: bytes) -> bytes:
    """The same signed batch with the first detection's bearing changed (signature left as it was)."""
    d = json.loads(body)
    d["detections"][0]["bearing_deg"] = (d["detections"][0]["bearing_deg"] + 1.0) % 360.0
    return json.dumps(d).encode()


def main(argv: list[str] | None = None) -> int:
    from fastapi.testclient import TestClient

    from skytrace.service.app import create_app
    from skytrace.service.core import LiveService
    from skytrace.service.stages import pipeline_stage
    from skytrace.store import open_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="batches of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/bench_rejects.json")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-rejects-"))
    table = _table()
    node, other = table.ids[0], table.ids[1]
    reg = KeyRegistry(path=tmp / "keys.json")
    reg.register(node, generate_private_key(tmp / "node.key"))
    generate_private_key(tmp / "stranger.key")
    signer = Signer(node, load_private_key(tmp / "node.key"), seq0=1)
    stranger = Signer(node, load_private_key(tmp / "stranger.key"), seq0=10_000_000)
    rng = random.Random(args.seed)

    def det(sensor: str = node) -> Detection:
        return Detection(t=time.time(), sensor=sensor, bearing_deg=round(rng.uniform(0, 360), 3))

    n = args.n
    now = time.time()
    genuine = [signer.sign([det(), det()]) for _ in range(n)]
    made: dict[str, list[bytes]] = {
        "unsigned": [msgspec.json.encode([det()]) for _ in range(n)],
        "forged": [stranger.sign([det()]) for _ in range(n)],
        "tampered": [_tamper(signer.sign([det()])) for _ in range(n)],
        "wrong_sensor": [signer.sign([det(), det(other)]) for _ in range(n)],
        "stale": [signer.sign([det()], t_sent=now - 600.0) for _ in range(n)],
        "future": [signer.sign([det()], t_sent=now + 60.0) for _ in range(n)],
    }
    # every genuine batch goes first in its own random place; its replay comes later; the rest anywhere
    order: list[tuple[str, bytes]] = [("genuine", b) for b in genuine]
    for kind, bodies in made.items():
        for b in bodies:
            order.insert(rng.randrange(len(order) + 1), (kind, b))
    for b in genuine:  # a replay is inserted after its original
        i = next(k for k, (kind, x) in enumerate(order) if x is b and kind == "genuine")
        order.insert(rng.randrange(i + 1, len(order) + 1), ("replayed", b))
    stage = pipeline_stage(table, None)
    svc = LiveService(table=table, zones=None, stage=stage, store=open_store(str(tmp / "s.db")), step_s=0.05)
    verifier = Verifier(reg, table)
    codes: dict[str, Counter] = {k: Counter() for k in KINDS}
    t0 = time.perf_counter()
    with TestClient(create_app(svc, verifier=verifier), base_url="http://127.0.0.1") as client:
        for kind, body in order:
            codes[kind][client.post("/api/v1/detections", content=body, headers=JSON).status_code] += 1
        status = client.get("/api/v1/status").json()
    wall = time.perf_counter() - t0
    stored = svc.store.count_detections()
    svc.store.close()
    rows = {k: {"sent": sum(c.values()), "accepted_202": c.get(202, 0), "rejected_422": c.get(422, 0),
                "other": {str(s): v for s, v in c.items() if s not in (202, 422)}} for k, c in codes.items()}
    res = {"per_kind": rows, "rejected_by_reason": status["auth"]["rejected_by_reason"],
           "batches_accepted": status["auth"]["batches_accepted"], "detections_stored": stored,
           "detections_expected": 2 * n, "wall_s": round(wall, 1)}
    print("| kind | sent | accepted (202) | rejected (422) |\n|---|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['sent']:,} | {r['accepted_202']:,} | {r['rejected_422']:,} |")
    print(f"\nreasons: {res['rejected_by_reason']}\nstored detections: {stored:,} of {2 * n:,} genuine "
          f"({wall:.1f} s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    ok = (rows["genuine"]["accepted_202"] == n and stored == 2 * n
          and all(rows[k]["rejected_422"] == n for k in KINDS if k != "genuine"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
