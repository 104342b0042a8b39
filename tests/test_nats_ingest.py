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
