"""Kill -9 of the MQTT broker mid-stream: every report the broker acknowledged is stored, exactly once.

The real chain: a node publishes signed batches (5 reports each, QoS 1) to a real Mosquitto started with the shipped
configuration (``skytrace keys broker-config``: per-node passwords, ACL, ``persistence true``, autosave on every
change); ``skytrace serve`` (a subprocess, durable inbox: PUBACK only after the commit, persistent session) takes
them into SQLite. Every ``--every`` batches the broker is killed with SIGKILL and restarted at once on the same
port and state directory; the node's MQTT client (paho) reconnects and retransmits its unacknowledged messages,
the service reconnects to its persistent session.

Counted at the end (each report carries a unique bearing, so every stored row is traced to its batch):
published (batches the node handed to its client), acknowledged by the broker (PUBACK received), stored,
**lost** (acknowledged by the broker, never stored), **stored twice**, redeliveries refused by the service
(``replayed``: the verifier's anti-replay window, or the store's batch key).

    python bench/bench_broker_kill.py --batches 3000 --kills 3 --rate 200

Prints one JSON line and writes bench/out/bench_broker_kill.json.
"""

from __future__ import annotations

import argparse
import json
import os
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
    KillableServer,
    Service,
    Site,
    bearings_of,
    free_port,
    stored_bearings,
    wait_for,
)

EXE = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker(KillableServer):
    """Mosquitto with the shipped configuration on ``port``; its state survives a kill -9 on disk (or not)."""

    name = "mosquitto"

    def __init__(self, root: Path, port: int, persistence: bool = True):
        from skytrace.security.broker import write_broker_config

        super().__init__(port)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # started as root, mosquitto drops to its own user and must reach its files
        self.creds = write_broker_config([SENSOR], root, port=port)
        self.conf = root / "mosquitto.conf"
        if not persistence:  # a broker that forgets everything it held when it dies (the worst case)
            self.conf.write_text(self.conf.read_text().replace("persistence true", "persistence false"))

    def command(self) -> list[str]:
        return [EXE, "-c", str(self.conf)]


def run(root: Path, batches: int, kills: int, rate: float, settle_s: float = 180.0, quiet_s: float = 20.0,
        receipts: bool = True, persistence: bool = True) -> dict:
    from skytrace.io.mqtt import MqttPublisher, topic_for
    from skytrace.security.broker import SERVICE_USER

    site = Site.create(root / "site")
    broker = Broker(root / "broker", free_port(), persistence)
    broker.start()
    os.environ["SKYTRACE_MQTT_USER"], os.environ["SKYTRACE_MQTT_PASSWORD"] = SERVICE_USER, broker.creds[SERVICE_USER]
    db = str(root / "live.db")
    svc = Service(site, db, mqtt_port=broker.port)
    svc.start()
    pub = MqttPublisher("127.0.0.1", broker.port, client_id=f"{SENSOR}-node")
    pub.client.username_pw_set(SENSOR, broker.creds[SENSOR])
    pub.client.reconnect_delay_set(0.1, 1.0)
    puback: set[int] = set()  # message ids the broker acknowledged (PUBACK), seen by the node's client
    pub.client.on_publish = lambda _c, _u, mid, _rc, _p: puback.add(mid)
    if receipts:  # the node keeps each batch until the service's receipt, and resends it after 2 s without one
        pub.enable_receipts(SENSOR, resend_after_s=2.0)
    pub.start()
    every = max(1, batches // (kills + 1))
    infos = []
    kill_at: list[int] = []  # batch index at each kill
    t0 = time.monotonic()
    try:
        for k in range(batches):
            _seq, body = site.batch(k)
            infos.append(pub.publish_signed(SENSOR, body) if receipts else pub.publish_raw(topic_for(SENSOR), body))
            if k and k % every == 0 and broker.kills < kills:
                kill_at.append(k)
                broker.kill9()  # mid-stream: messages in flight to the broker, queued in it, in flight to the service
                broker.start()
            lag = t0 + (k + 1) / rate - time.monotonic()
            if lag > 0:
                time.sleep(lag)  # the node's pace (the sender's rate, not a wait for a condition)
        # paho keeps what it could not send while the broker was down and (re)transmits it after reconnecting
        wait_for(lambda: all(i.mid in puback for i in infos), 120)
        acked = [k for k, i in enumerate(infos) if i.mid in puback]
        expected = PER_BATCH * len(acked)
        # until all are stored, or nothing more arrives for ``quiet_s`` (a message lost in the broker never comes)
        last = {"n": -1, "t": time.monotonic()}

        def settled() -> bool:
            n = len(stored_bearings(db))
            if n != last["n"]:
                last["n"], last["t"] = n, time.monotonic()
            return n >= expected or time.monotonic() - last["t"] > quiet_s

        wait_for(settled, settle_s)
        if receipts:  # the resent batches: until the node holds no unconfirmed one
            pub.wait_confirmed(settle_s)
            wait_for(lambda: len(stored_bearings(db)) >= expected, 30)
        # a redelivery still in flight would show up as a second copy: let the service drain its inbox
        status = svc.status()
    finally:
        pub.stop()
        log = svc.stop()
        broker.stop()
    rows = Counter(stored_bearings(db))
    copies = [rows.get(bearings_of(1_000 + k)[0], 0) for k in range(batches)]
    acked_set = set(acked)
    auth = status.get("auth") or {}
    return {"batches_published": batches, "reports_per_batch": PER_BATCH, "broker_kills": broker.kills,
            "rate_batches_per_s": rate, "broker_acked": len(acked), "not_acked_by_broker": batches - len(acked),
            "stored_batches": sum(1 for c in copies if c), "lost_acked": sum(1 for k in acked if copies[k] == 0),
            "stored_twice": sum(1 for c in copies if c > 1),
            "stored_not_acked": sum(1 for k, c in enumerate(copies) if c and k not in acked_set),
            "rows_stored": sum(rows.values()), "rows_expected": expected,
            "lost_batch_index": [k for k in acked if copies[k] == 0][:20], "killed_at_batch_index": kill_at,
            "redeliveries_refused_replayed": (auth.get("rejected_by_reason") or {}).get("replayed", 0),
            "inbox_duplicates": (status.get("inbox") or {}).get("duplicates", 0),
            "traceback_in_service_log": "Traceback" in log, "wall_s": round(time.monotonic() - t0, 1),
            "receipts": receipts, "broker_persistence": persistence, "node_receipts": dict(pub.receipt_stats),
            "node_unconfirmed_at_end": pub.unconfirmed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--rate", type=float, default=200.0, help="batches per second the node publishes")
    ap.add_argument("--no-receipts", action="store_true",
                    help="the node trusts the broker's PUBACK alone (the behaviour before the service's receipts)")
    ap.add_argument("--no-persistence", action="store_true",
                    help="the broker keeps nothing on disk: a kill loses everything it held (the worst case)")
    ap.add_argument("--out", default="bench/out/bench_broker_kill.json")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="skytrace-broker-kill-"))
    root.chmod(0o755)  # the broker (its own user) must reach its directory inside
    try:
        res = run(root, a.batches, a.kills, a.rate, receipts=not a.no_receipts, persistence=not a.no_persistence)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(res))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
