"""NATS JetStream ingest (``serve --nats``) on a real nats-server: acknowledged after the commit, stored exactly
once across redeliveries and a kill -9 of the JetStream server, hostile payloads refused without a crash."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from crash_harness import (
    PER_BATCH,
    SENSOR,
    NatsServer,
    Service,
    Site,
    bearings_of,
    free_port,
    js_publish,
    stored_bearings,
    wait_for,
)
from skytrace.io.jetstream import HEARTBEAT_SUBJECT_PREFIX, NatsIngest, subject_for
from skytrace.model import Detection


@pytest.fixture
def nats_server(tmp_path):
    srv = NatsServer(tmp_path / "js")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _service(tmp_path):
    from skytrace.pipeline import Pipeline
    from skytrace.security.fuzzing import _table
    from skytrace.service.core import LiveService
    from skytrace.store import open_store

    table = _table()
    svc = LiveService(table=table, zones=None, stage=Pipeline(table), store=open_store(str(tmp_path / "s.db")))
    return svc, table


def test_unsigned_reports_are_stored_once_even_when_a_second_consumer_redelivers_them(nats_server, tmp_path):
    import msgspec

    svc, table = _service(tmp_path)
    sensor = table.ids[0]
    enc = msgspec.json.Encoder()
    now = time.time()
    items = [(subject_for(sensor), f"m{k}", enc.encode([Detection(t=now, sensor=sensor, bearing_deg=k + 0.5 * i)
                                                        for i in range(2)])) for k in range(40)]
    items.insert(10, (subject_for(sensor), "bad-json", b'{"t": 1, "sensor": '))  # malformed: refused, counted
    items.insert(20, (subject_for("nobody"), "stranger", enc.encode(Detection(t=now, sensor="nobody",
                                                                              bearing_deg=1.0))))
    items.insert(30, (HEARTBEAT_SUBJECT_PREFIX + sensor, "beat", enc.encode({"t": now, "sensor": sensor})))
    beats: list = []
    asyncio.run(js_publish(nats_server.url, items))
    inbox = svc.use_inbox()
    inbox.start()
    ingest = NatsIngest(table, svc.submit, nats_server.url, inbox=inbox, on_heartbeats=beats.extend)
    ingest.stats = svc.ingest_stats
    ingest.start()
    try:
        st = svc.ingest_stats
        assert wait_for(lambda: svc.store.count_detections() >= 80 and st.rejected_detections >= 1, 60)
        assert st.accepted == 80 and st.rejected_messages == 1  # the malformed payload
        assert any("unknown sensor id 'nobody'" in r for r in st.reasons)  # the stranger's report
        assert beats and beats[0][0] == sensor
        # a second consumer of the same stream is handed every message again: their keys are stored already
        again = NatsIngest(table, svc.submit, nats_server.url, inbox=inbox, durable="second-reader")
        again.start()
        try:
            assert wait_for(lambda: inbox.stats.duplicates >= 41, 60)
        finally:
            again.stop()
    finally:
        ingest.stop()
        inbox.stop()
    assert svc.store.count_detections() == 80
    assert svc.stats.n_in == 80  # a redelivered batch never reaches the tracker twice either
    svc.store.close()


def test_kill_9_of_the_jetstream_server_mid_stream_loses_nothing_and_stores_nothing_twice(nats_server, tmp_path):
    """The real chain: signed batches published with server acknowledgement, ``skytrace serve --nats`` (a
    subprocess, durable inbox, --keys) storing them; the JetStream server is killed -9 twice mid-stream and
    restarted on its store; every acknowledged batch is stored exactly once."""
    site = Site.create(tmp_path / "site")
    db = str(tmp_path / "serve.db")
    svc = Service(site, db, nats_url=nats_server.url)
    svc.start()
    n = 60
    batches = [site.batch(k) for k in range(n)]
    items = [(subject_for(SENSOR), f"{SENSOR}:{seq}", payload) for seq, payload in batches]

    def restart() -> None:
        nats_server.kill9()
        nats_server.start()

    try:
        asyncio.run(js_publish(nats_server.url, items, kill_at={20: restart, 40: restart}))
        want = sorted(b for seq, _ in batches for b in bearings_of(seq))
        assert wait_for(lambda: len(stored_bearings(db)) >= len(want), 120), svc.log()[-2000:]
    finally:
        svc.stop()
    counts = Counter(stored_bearings(db))
    assert nats_server.kills == 2
    assert sorted(counts) == want and set(counts.values()) == {1}, "lost or stored twice"
    assert len(counts) == n * PER_BATCH


def test_serve_refuses_a_nats_url_it_cannot_use(tmp_path):
    from typer.testing import CliRunner

    from skytrace.cli import app

    site = Site.create(tmp_path / "site")
    res = CliRunner().invoke(app, ["serve", str(site.root), "--nats", "127.0.0.1:4222", "--port", str(free_port())])
    assert res.exit_code != 0 and "nats://" in res.output


class _SignedRig:
    """The service's signed ingest chain in-process (sensor table, SQLite store, durable inbox, verifier) reading a
    private server through NatsIngest, on a durable consumer made with a 1 s ack_wait (a lost acknowledgement is
    redelivered within a second, not the default 30 s)."""

    def __init__(self, root, url: str, max_age_s: float = 3600.0):
        from skytrace.batch import SensorTable
        from skytrace.io.formats import read_sensors
        from skytrace.security.signing import make_verifier
        from skytrace.service.inbox import DurableInbox
        from skytrace.store import open_store

        self.url = url
        self.site = Site.create(root / "site")
        self.table = SensorTable.from_sensors(read_sensors(self.site.root / "sensors.json"))
        self.db = str(root / "live.db")
        self.store = open_store(self.db)
        self.inbox = DurableInbox(self.store, self.table)
        self.inbox.start()
        self.verifier = make_verifier(str(self.site.root / "keys.json"), self.table, max_age_s=max_age_s)
        self.seen: list = []
        self.ingest = NatsIngest(self.table, self.seen.extend, url, verifier=self.verifier, inbox=self.inbox,
                                 durable="signed-reader")

    async def _consumer(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        from skytrace.io.jetstream import STREAM, ensure_stream

        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js)
            await js.add_consumer(STREAM, ConsumerConfig(durable_name="signed-reader", ack_policy=AckPolicy.EXPLICIT,
                                                         ack_wait=1.0, filter_subject="skytrace.v1.detections.>"))
        finally:
            await nc.close()

    def start(self) -> None:
        asyncio.run(self._consumer())
        self.ingest.start()

    def stop(self) -> None:
        self.ingest.stop()
        self.inbox.stop()
        self.store.close()


def _items(batches) -> list:
    return [(subject_for(SENSOR), f"{SENSOR}:{seq}", body) for seq, body in batches]


def test_signed_batches_stored_once_when_acknowledgements_are_lost_and_a_batch_is_resent(nats_server, tmp_path):
    rig = _SignedRig(tmp_path, nats_server.url)
    try:
        batches = [rig.site.batch(k) for k in range(20)]
        asyncio.run(js_publish(nats_server.url, _items(batches)))
        # the first acknowledgement of three messages is lost (as when the connection drops right after the
        # commit): the server redelivers them after ack_wait, the service refuses the copies and acknowledges them
        lost = {4, 5, 6}
        acked: list[int] = []

        async def lossy_ack(msg) -> None:
            s = msg.metadata.sequence.stream
            if s in lost:
                lost.discard(s)
                return
            await msg.ack()
            acked.append(s)

        rig.ingest._ack = lossy_ack
        rig.start()
        assert wait_for(lambda: len(acked) >= 20 and not lost, 30), (acked, lost)
        assert rig.ingest.redelivered == 3
        # a node resends a batch it had sent (with a new message id: after the stream's duplicate window)
        asyncio.run(js_publish(nats_server.url, [(subject_for(SENSOR), "resent", batches[7][1])]))
        assert wait_for(lambda: len(acked) >= 21, 30), acked
        rig.inbox.drain()
        rows = Counter(stored_bearings(rig.db))
        assert sorted(rows) == sorted(b for seq, _ in batches for b in bearings_of(seq))
        assert set(rows.values()) == {1}
        assert rig.verifier.as_dict()["rejected_by_reason"].get("replayed") == 4  # 3 redeliveries + 1 resend
        assert len(rig.seen) == 20 * PER_BATCH  # the tracker got each report once too
    finally:
        rig.stop()


def test_with_keys_unsigned_forged_and_malformed_messages_are_refused_without_a_crash(nats_server, tmp_path):
    import json

    from skytrace.security.keys import generate_private_key, load_private_key
    from skytrace.security.signing import Signer

    rig = _SignedRig(tmp_path, nats_server.url)
    try:
        subj = subject_for(SENSOR)
        _, good = rig.site.batch(0)
        unsigned = json.dumps({"t": time.time(), "sensor": SENSOR, "bearing_deg": 10.0}).encode()
        generate_private_key(tmp_path / "stranger.key")  # signed with a key the registry does not know
        stranger = Signer(SENSOR, load_private_key(tmp_path / "stranger.key"), seq0=5_000)
        _, unknown_key = Site(rig.site.root, stranger, rig.site.config).batch(1)
        doc = json.loads(rig.site.batch(2)[1])  # a genuine batch altered after signing (a bearing moved)
        doc["detections"][0]["bearing_deg"] = 123.0
        altered = json.dumps(doc).encode()
        _, mismatched = rig.site.batch(3)  # a genuine batch of ac-1 on another sensor's subject
        malformed = [b"\xff\xfe{not json", b"[" * 100_000, b'{"v": 1, "sensor": "ac-1", "sig": 5}', b"", b"null"]
        msgs = [(subj, unsigned), (subj, unknown_key), (subj, altered), (subject_for("ac-2"), mismatched),
                *[(subj, m) for m in malformed], (subj, good)]
        asyncio.run(js_publish(nats_server.url, [(s, f"m{i}", p) for i, (s, p) in enumerate(msgs)]))
        rig.start()
        assert wait_for(lambda: sorted(stored_bearings(rig.db)) == bearings_of(1_000), 30)  # only the good one
        assert wait_for(lambda: rig.ingest.stats.as_dict()["messages"] >= len(msgs), 30)
        rig.inbox.drain()
        reasons = rig.verifier.as_dict()["rejected_by_reason"]
        assert reasons.get("unknown_key") == 1 and reasons.get("bad_signature") == 1, reasons
        assert reasons.get("sensor_mismatch") == 1, reasons
        assert reasons.get("malformed", 0) + reasons.get("unsigned", 0) == 1 + len(malformed), reasons
        st = rig.ingest.stats.as_dict()
        assert st["rejected_messages"] == len(msgs) - 1 and st["accepted"] == PER_BATCH, st
        assert rig.ingest._thread is not None and rig.ingest._thread.is_alive()  # still pulling
    finally:
        rig.stop()
    assert sorted(stored_bearings(rig.db)) == bearings_of(1_000)  # the refused ones were not stored later either


def test_a_batch_read_long_after_it_was_logged_is_judged_by_its_log_time(nats_server, tmp_path):
    """A service down longer than the signature's time window (120 s) must not refuse, and so lose, the batches the
    log kept for it meanwhile: the window is checked against when the stream stored each one."""
    rig = _SignedRig(tmp_path, nats_server.url, max_age_s=120.0)
    try:
        rig.verifier.clock = lambda: time.time() + 600.0  # the service reads the log 10 minutes after the node sent
        batches = [rig.site.batch(k) for k in range(5)]
        asyncio.run(js_publish(nats_server.url, _items(batches)))
        rig.start()
        want = sorted(b for seq, _ in batches for b in bearings_of(seq))
        assert wait_for(lambda: sorted(stored_bearings(rig.db)) == want, 30)
        assert rig.verifier.as_dict()["rejected_by_reason"] == {}
        # the same late read judged by the reading clock (as an MQTT broker's queue is) would refuse them all
        assert rig.verifier.open_batch(batches[0][1], SENSOR)[1] == "out_of_window"
    finally:
        rig.stop()


def test_a_three_server_cluster_loses_nothing_when_its_servers_are_killed(tmp_path):
    """The bench's chain on three nats-servers forming one JetStream cluster (stream with 3 replicas): a server is
    killed -9 and rejoins on its store while the node publishes; every batch stored once."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_nats_kill import main

    out = tmp_path / "res.json"
    rc = main(["--batches", "200", "--kills", "2", "--service-kills", "0", "--rate", "100", "--cluster", "3",
               "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and res["jetstream_kills"] == 2 and res["stream_replicas"] == 3, res
    assert res["batches_lost"] == 0 and res["reports_stored_twice"] == 0 and res["reports_stored"] == 200 * PER_BATCH
    assert res["service_errors"] == 0


def test_hostile_messages_on_every_subject_never_stop_the_ingest(nats_server, tmp_path, caplog):
    """Fuzzing through the real server: 600 mutated payloads (the fuzz harness's mutator over valid seeds) on the
    detections and heartbeat subjects of known and unknown sensors; the ingest takes every message, crashes on
    none, and a genuine report sent after them is stored."""
    import random

    import msgspec

    from skytrace.security.fuzzing import mutate, payload_seeds

    svc, table = _service(tmp_path)
    sensor = table.ids[0]
    rng = random.Random(7)
    seeds = payload_seeds()
    subjects = [subject_for(sensor), subject_for(table.ids[1]), subject_for("nobody"),
                HEARTBEAT_SUBJECT_PREFIX + sensor, HEARTBEAT_SUBJECT_PREFIX + "nobody"]
    items = [(rng.choice(subjects), f"fuzz{k}", mutate(rng.choice(seeds), rng, max_len=4096)) for k in range(600)]
    marker = Detection(t=time.time(), sensor=sensor, bearing_deg=123.456)
    items.append((subject_for(sensor), "marker", msgspec.json.encode(marker)))
    asyncio.run(js_publish(nats_server.url, items))
    inbox = svc.use_inbox()
    inbox.start()
    ingest = NatsIngest(table, svc.submit, nats_server.url, inbox=inbox, on_heartbeats=lambda _b: None)
    ingest.stats = svc.ingest_stats
    ingest.start()
    try:
        assert wait_for(lambda: inbox.stats.messages >= len(items), 60), inbox.stats.as_dict()
        stored = svc.store.detections(0, 1e12, limit=10_000)
        assert any(abs(d.bearing_deg - 123.456) < 1e-6 for d in stored)  # alive after all of them
        assert ingest._thread is not None and ingest._thread.is_alive()
        # every message was judged by the validators: none fell through to the catch-all (a crash)
        assert not [r for r in caplog.records if "handling failed" in r.getMessage()]
    finally:
        ingest.stop()
        inbox.stop()
        svc.store.close()


def test_serve_with_no_nats_server_there_prints_one_error_line_and_exits_2(tmp_path):
    import os
    import subprocess
    import sys

    site = Site.create(tmp_path / "site")
    res = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "serve", str(site.root),
                          "--port", str(free_port()), "--db", str(tmp_path / "x.db"),
                          "--nats", f"nats://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SKYTRACE_CONFIG": str(site.config)})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "NATS JetStream at nats://127.0.0.1:" in res.stderr and "Traceback" not in res.stderr


def test_a_server_that_is_not_there_is_a_one_line_error():
    from skytrace.errors import SkytraceError
    from skytrace.security.fuzzing import _table

    ingest = NatsIngest(_table(), lambda _d: None, f"nats://127.0.0.1:{free_port()}")
    with pytest.raises(SkytraceError, match="did not accept the connection"):
        ingest.start(timeout_s=2.0)
