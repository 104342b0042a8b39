"""NATS JetStream ingest against a real nats-server: acknowledged only once stored, a redelivery stored once,
unsigned / forged / malformed messages refused without a crash, kill -9 of the server (and of the service) mid-wave
loses nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from crash_harness import PER_BATCH, SENSOR, Site, bearings_of, stored_bearings, wait_for


async def _publish(url: str, msgs: list[tuple[str, bytes]], reset: bool = False) -> list[int]:
    """Publish (subject, payload) with JetStream acknowledgements; the stream sequences. ``reset``: delete the
    stream first (the shared test server keeps it between tests)."""
    import nats
    from nats.js.errors import NotFoundError

    from skytrace.io.jetstream import STREAM, ensure_stream

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if reset:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(STREAM)
        await ensure_stream(js)
        return [(await js.publish(subject, payload, timeout=10)).seq for subject, payload in msgs]
    finally:
        await nc.close()


class _Rig:
    """The service's ingest chain in-process: sensor table, SQLite store, durable inbox, verifier, JetStream ingest
    on its own durable consumer (a short ack_wait so that a lost acknowledgement is redelivered within a second)."""

    def __init__(self, root: Path, url: str, max_age_s: float = 3600.0):
        from skytrace.batch import SensorTable
        from skytrace.io.formats import read_sensors
        from skytrace.io.jetstream import JetStreamIngest
        from skytrace.security.signing import make_verifier
        from skytrace.service.inbox import DurableInbox
        from skytrace.store import open_store

        self.site = Site.create(root / "site")
        self.table = SensorTable.from_sensors(read_sensors(self.site.root / "sensors.json"))
        self.db = str(root / "live.db")
        self.store = open_store(self.db)
        self.inbox = DurableInbox(self.store, self.table)
        self.inbox.start()
        self.verifier = make_verifier(str(self.site.root / "keys.json"), self.table, max_age_s=max_age_s)
        self.seen: list = []
        self.ingest = JetStreamIngest(self.table, self.seen.extend, url, durable=f"t-{uuid.uuid4().hex[:12]}",
                                      verifier=self.verifier, inbox=self.inbox, ack_wait_s=1.0)

    def stop(self) -> None:
        self.ingest.stop()
        self.inbox.stop()
        self.store.close()


@pytest.fixture
def rig(tmp_path, nats_url):
    r = _Rig(tmp_path, nats_url)
    yield r
    r.stop()


def test_signed_batches_stored_once_across_a_redelivery_and_a_resend(rig, nats_url):
    from skytrace.io.jetstream import subject_for

    batches = [rig.site.batch(k) for k in range(20)]
    stream_seqs = asyncio.run(_publish(nats_url, [(subject_for(SENSOR), body) for _, body in batches], reset=True))
    # the first acknowledgement of three messages is lost (as when the connection drops right after the commit): the
    # server must redeliver them after ack_wait, and the service must refuse the second copy, then acknowledge it
    lost = set(stream_seqs[3:6])
    ack = rig.ingest._ack

    def lossy_ack(msg) -> None:
        s = msg.metadata.sequence.stream
        if s in lost:
            lost.discard(s)
            return
        ack(msg)

    rig.ingest._ack = lossy_ack
    rig.ingest.start()
    # 17 acknowledged at the first delivery, the 3 others at their redelivery
    assert wait_for(lambda: rig.ingest.stats.as_dict()["acked"] >= 20 and not lost, 30), rig.ingest.stats.as_dict()
    assert rig.ingest.stats.as_dict()["redelivered"] == 3
    # a node that resends a batch it had sent (e.g. after the stream's duplicate window): a second copy in the log
    asyncio.run(_publish(nats_url, [(subject_for(SENSOR), batches[7][1])]))
    assert wait_for(lambda: rig.ingest.stats.as_dict()["acked"] >= 21, 30), rig.ingest.stats.as_dict()
    rig.inbox.drain()
    rows = Counter(stored_bearings(rig.db))
    for seq, _ in batches:
        assert [rows[b] for b in bearings_of(seq)] == [1] * PER_BATCH, (seq, rows)
    assert sum(rows.values()) == 20 * PER_BATCH
    assert rig.verifier.as_dict()["rejected_by_reason"].get("replayed") == 4  # 3 redeliveries + 1 resend
    assert len(rig.seen) == 20 * PER_BATCH  # the tracker got each report once too


def test_a_batch_read_long_after_it_was_logged_is_judged_by_its_log_time(tmp_path, nats_url):
    """A service down longer than the signature's time window (120 s) must not refuse, and so lose, the batches
    the log kept for it meanwhile: the window is checked against when the stream stored each one."""
    import time

    from skytrace.io.jetstream import subject_for

    r = _Rig(tmp_path, nats_url, max_age_s=120.0)
    try:
        r.verifier.clock = lambda: time.time() + 600.0  # the service reads the log 10 minutes after the node sent
        batches = [r.site.batch(k) for k in range(5)]
        asyncio.run(_publish(nats_url, [(subject_for(SENSOR), body) for _, body in batches], reset=True))
        r.ingest.start()
        assert wait_for(lambda: r.ingest.stats.as_dict()["acked"] >= 5, 30), r.ingest.stats.as_dict()
        r.inbox.drain()
        assert sorted(stored_bearings(r.db)) == sorted(b for seq, _ in batches for b in bearings_of(seq))
        assert r.verifier.as_dict()["rejected_by_reason"] == {}
        # the same 10-minute-late read judged by the reading clock (an MQTT broker's queue) would refuse them all
        assert r.verifier.open_batch(batches[0][1], SENSOR)[1] == "out_of_window"
    finally:
        r.stop()


def test_unsigned_forged_and_malformed_messages_are_refused_without_a_crash(rig, nats_url, tmp_path):
    from skytrace.io.jetstream import subject_for
    from skytrace.security.keys import generate_private_key, load_private_key
    from skytrace.security.signing import Signer

    subj = subject_for(SENSOR)
    _, good = rig.site.batch(0)
    unsigned = json.dumps({"t": 1.8e9, "sensor": SENSOR, "bearing_deg": 10.0}).encode()
    # signed with a key the registry does not know
    generate_private_key(tmp_path / "stranger.key")
    stranger = Signer(SENSOR, load_private_key(tmp_path / "stranger.key"), seq0=5_000)
    _, unknown_key = Site(rig.site.root, stranger, rig.site.config).batch(1)
    # a genuine batch altered after signing (a bearing moved)
    doc = json.loads(rig.site.batch(2)[1])
    doc["detections"][0]["bearing_deg"] = 123.0
    altered = json.dumps(doc).encode()
    other_subject = subject_for("ac-2")  # a genuine batch of ac-1 on another sensor's subject
    _, mismatched = rig.site.batch(3)
    malformed = [b"\xff\xfe{not json", b"[" * 100_000, b'{"v": 1, "sensor": "ac-1", "sig": 5}', b"", b"null"]
    msgs = [(subj, unsigned), (subj, unknown_key), (subj, altered), (other_subject, mismatched),
            *[(subj, m) for m in malformed], (subj, good)]
    asyncio.run(_publish(nats_url, msgs, reset=True))
    rig.ingest.start()
    assert wait_for(lambda: rig.ingest.stats.as_dict()["acked"] >= len(msgs), 30), rig.ingest.stats.as_dict()
    rig.inbox.drain()
    assert sorted(stored_bearings(rig.db)) == bearings_of(1_000)  # only the good batch
    reasons = rig.verifier.as_dict()["rejected_by_reason"]
    assert reasons.get("unsigned", 0) >= 1 and reasons.get("unknown_key") == 1, reasons
    assert reasons.get("bad_signature") == 1 and reasons.get("sensor_mismatch") == 1, reasons
    assert reasons.get("malformed", 0) + reasons.get("unsigned", 0) == 1 + len(malformed), reasons
    st = rig.ingest.stats.as_dict()
    assert st["rejected_messages"] == len(msgs) - 1 and st["accepted"] == PER_BATCH, st
    assert rig.ingest._thread is not None and rig.ingest._thread.is_alive()  # still pulling


def test_kill9_of_the_server_and_of_the_service_mid_wave_loses_nothing_and_stores_nothing_twice(tmp_path):
    from bench_nats_kill import run

    res = run(tmp_path, batches=300, kills=1, rate=100.0, settle_s=120.0)
    assert res["server_kills"] == 1 and res["service_kills"] == 1
    assert res["acked_by_jetstream"] == 300, res  # the node published again what got no acknowledgement
    assert res["lost_acked"] == 0, res
    assert res["stored_twice"] == 0, res
    assert res["rows_stored"] == 300 * PER_BATCH
    assert not res["traceback_in_service_log"]


def test_serve_with_no_nats_server_there_is_one_error_line_and_exit_2(tmp_path):
    import os
    import subprocess

    from crash_harness import free_port

    site = Site.create(tmp_path / "site")
    res = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "serve", str(site.root),
                          "--port", str(free_port()), "--db", str(tmp_path / "x.db"),
                          "--nats", f"nats://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SKYTRACE_CONFIG": str(site.config)})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "NATS JetStream at nats://127.0.0.1:" in res.stderr and "Traceback" not in res.stderr
