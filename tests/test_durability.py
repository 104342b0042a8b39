"""Nothing acknowledged is lost, nothing is stored twice: ``skytrace serve`` killed with SIGKILL mid-stream.

The real service runs as a subprocess against the real store (SQLite file, PostgreSQL + PostGIS) and the real
broker; a node streams signed batches; the service is killed -9 while the node is sending, restarted, the node
resends what was not acknowledged, and the store must then hold every report exactly once. Also: the replay window
survives the restart (acknowledged batches sent again are rejected), and an alert period is committed before it
is published.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from crash_harness import PER_BATCH, SENSOR, HttpStream, Service, Site, bearings_of, post, stored_bearings, wait_for
from skytrace.io.mqtt import MqttPublisher, topic_for


def _check_exactly_once(db: str, seqs: list[int]) -> None:
    rows = Counter(stored_bearings(db))
    dupes = {b: n for b, n in rows.items() if n > 1}
    assert not dupes, f"{len(dupes)} reports stored more than once"
    missing = [s for s in seqs if any(rows.get(b, 0) != 1 for b in bearings_of(s))]
    assert not missing, f"{len(missing)} batches missing, e.g. seq {missing[:5]}"
    assert sum(rows.values()) == PER_BATCH * len(seqs)


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_kill9_over_http_loses_no_acknowledged_report_and_stores_none_twice(backend, tmp_path, request):
    site = Site.create(tmp_path / "site")
    db = str(tmp_path / "live.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    svc = Service(site, db)
    svc.start()
    stream = HttpStream(site, svc.port)
    th = stream.start()
    try:
        assert wait_for(lambda: len(stream.acked) >= 60, 180), svc.log()[-2000:]
        svc.kill9()  # mid-stream: the node is posting
        assert wait_for(lambda: stream.failures >= 1, 60)  # the node noticed, and keeps resending in order
        n_before = len(stream.acked)
        svc.start()
        assert wait_for(lambda: len(stream.acked) >= n_before + 30, 180), svc.log()[-2000:]
    finally:
        stream.stop_flag.set()
        th.join(60)
    try:
        # acknowledged batches sent again (a replay, or a node that lost its answers) are refused after the restart
        replays = [post(svc.port, body) for body in list(stream.acked.values())[:20]]
        assert replays == [422] * len(replays)
        status = svc.status()
    finally:
        log = svc.stop()
    assert "Traceback" not in log, log[-3000:]
    assert not stream.refused  # every batch was accepted the first time it reached a running service
    assert status["auth"]["rejected_by_reason"].get("replayed", 0) >= len(replays)
    _check_exactly_once(db, stream.sent() + sorted(_stored_unacked(db, stream)))


def _stored_unacked(db: str, stream: HttpStream) -> list[int]:
    """The batch in flight when the stream stopped: stored or not, but never twice (checked with the rest)."""
    rows = Counter(stored_bearings(db))
    return [s for s in stream.unacked if rows.get(bearings_of(s)[0], 0)]


def test_kill9_with_mqtt_qos1_stores_every_published_report_exactly_once(tmp_path, mqtt_port):
    """The service acknowledges a QoS 1 message only after the commit: killed -9, the broker redelivers the rest."""
    site = Site.create(tmp_path / "site")
    db = str(tmp_path / "live.db")
    svc = Service(site, db, mqtt_port=mqtt_port)
    svc.start()
    pub = MqttPublisher("127.0.0.1", mqtt_port, client_id=f"{SENSOR}-{time.time_ns()}")
    pub.start()
    n = 400
    try:
        infos = []
        for k in range(n):
            seq, body = site.batch(k)
            infos.append(pub.publish_raw(topic_for(SENSOR), body))
            if k == n // 2:  # half published: wait until the service has stored some, then kill it mid-stream
                assert wait_for(lambda: svc.status()["n_stored"] >= PER_BATCH * 20, 120), svc.log()[-2000:]
                svc.kill9()
        for info in infos:
            info.wait_for_publish(30)  # the broker has them all (published = accepted by the broker)
    finally:
        pub.stop()
    svc.start()  # same client id, persistent session: the broker redelivers what the killed service never acked
    try:
        assert wait_for(lambda: _stored_count(db) >= PER_BATCH * n, 180), svc.status()
    finally:
        log = svc.stop()
        _drop_session(mqtt_port, f"svc-{tmp_path.name}")
    assert "Traceback" not in log, log[-3000:]
    _check_exactly_once(db, [1_000 + k for k in range(n)])


def _drop_session(port: int, client_id: str) -> None:
    """End the service's persistent session on the shared test broker (it would queue other tests' messages)."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.disconnect()
    c.loop_stop()


def _stored_count(db: str) -> int:
    return len(stored_bearings(db))


def test_an_alert_period_is_committed_before_it_is_published(tmp_path):
    """Write-ahead: at the moment the websocket message with a new alert is handed out, the store holds it."""
    import json

    from skytrace.alerting import AlertEvent
    from skytrace.model import Alert, Detection
    from skytrace.pipeline import Pipeline
    from skytrace.security.fuzzing import ZONES_SEED, _table
    from skytrace.service.core import LiveService
    from skytrace.store import open_store
    from skytrace.zones import zones_from_geojson

    table = _table()
    zones = zones_from_geojson(json.loads(ZONES_SEED))

    class OneAlert:
        raised = False

        def update(self, t, tracks, detections):
            if self.raised:
                return []
            self.raised = True
            return [AlertEvent(t, "Z1", "raise", "warning", ["T1"], 0.9, 300.0, "test", "a-1", t)]

        def active(self):
            return [Alert(zone="Z1", start=5.0, end=None, level="warning", tracks=["T1"])] if self.raised else []

        def close(self, t):
            return []

    store = open_store(str(tmp_path / "a.db"))
    svc = LiveService(table=table, zones=zones, stage=Pipeline(table, zones, policy=OneAlert()), store=store,
                      step_s=0.05)
    seen: list[list] = []

    class Loop:  # stands in for the event loop: records what the store holds when messages are handed out
        def call_soon_threadsafe(self, fn, msgs):
            if any(m["type"] == "alerts" for m in msgs):
                seen.append([(a.zone, a.start) for a in store.alerts()])

    svc._loop = Loop()
    t0 = time.time()
    svc.submit([Detection(t=t0, sensor="ac-1", bearing_deg=1.0)])
    svc.step_once(t0 + 1)
    assert seen == [[("Z1", 5.0)]]


def test_replay_signs_each_sensors_batches_for_a_service_that_requires_signatures(tmp_path):
    import json
    import subprocess
    import sys

    from skytrace.io import formats
    from skytrace.security.fuzzing import SENSORS_SEED, ZONES_SEED, _table
    from skytrace.security.keys import KeyRegistry, generate_private_key
    from skytrace.security.signing import Verifier
    from skytrace.service.app import create_app
    from skytrace.service.core import LiveService
    from skytrace.service.replay import replay_detections
    from skytrace.service.runner import ServerThread
    from skytrace.service.stages import pipeline_stage
    from skytrace.store import open_store
    from skytrace.zones import zones_from_geojson

    d = tmp_path / "rec"
    d.mkdir()
    (d / "sensors.json").write_bytes(SENSORS_SEED)
    t0 = 1_795_000_000.0
    from skytrace.model import Detection

    dets = [Detection(t=t0 + i * 0.1, sensor="ac-1", bearing_deg=float(i)) for i in range(100)]
    dets += [Detection(t=t0 + i * 0.5, sensor="rad-1", bearing_deg=1.0, elevation_deg=2.0, range_m=5000.0 + i)
             for i in range(20)]
    formats.write_jsonl(d / "detections.jsonl", sorted(dets, key=lambda x: x.t))
    keys = tmp_path / "keys"
    keys.mkdir()
    reg = KeyRegistry(path=tmp_path / "keys.json")
    for sid in ("ac-1", "rad-1"):
        reg.register(sid, generate_private_key(keys / f"{sid}.key"))
    reg.save()
    table = _table()
    zones = zones_from_geojson(json.loads(ZONES_SEED))
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                      step_s=0.05)
    with ServerThread(create_app(svc, verifier=Verifier(reg, table))) as server:
        res = replay_detections(d, speed=50.0, http=server.url, sign_dir=keys)
        unsigned = replay_detections(d, speed=50.0, http=server.url, limit_s=2.0)  # refused: not signed
        st = svc.status()
    assert res["published"] == 120 and res["rejected"] == 0
    assert svc.store.count_detections() == 120  # acknowledged = stored
    assert unsigned["published"] == 0 and unsigned["rejected"] > 0
    assert st["auth"]["batches_accepted"] == res["messages"]
    (keys / "rad-1.key").unlink()
    r = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "replay", str(d), "--http",
                        "http://127.0.0.1:9", "--sign-dir", str(keys)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no key for sensor 'rad-1'" in r.stderr and "Traceback" not in r.stderr


def test_the_inbox_acknowledges_nothing_while_the_store_fails_and_everything_once_it_is_back():
    import threading

    from skytrace.model import Detection
    from skytrace.security.fuzzing import _table
    from skytrace.service.inbox import DurableInbox
    from skytrace.store import open_store

    table = _table()
    store = open_store(None)
    down = threading.Event()
    down.set()
    real = store.put_ingest

    def flaky(items, tbl, t_recv):
        if down.is_set():
            raise OSError("database went away")
        return real(items, tbl, t_recv)

    store.put_ingest = flaky
    inbox = DurableInbox(store, table, max_queued=50)
    acks: list[tuple[int, bool]] = []
    inbox.start()
    t = time.time()
    for k in range(10):
        inbox.put("ac-1", k, [Detection(t=t, sensor="ac-1", bearing_deg=float(k))],
                  lambda fresh, k=k: acks.append((k, fresh)))
    assert wait_for(lambda: inbox.stats.store_errors >= 2, 30)
    assert acks == [] and store.count_detections() == 0  # nothing acknowledged while nothing is stored
    down.clear()
    assert inbox.drain(30)
    inbox.put("ac-1", 3, [Detection(t=t, sensor="ac-1", bearing_deg=3.0)], lambda fresh: acks.append((3, fresh)))
    inbox.stop()
    assert acks[:10] == [(k, True) for k in range(10)]  # in order, after the commit
    assert acks[10] == (3, False)  # a redelivery: acknowledged, not stored twice
    assert store.count_detections() == 10 and inbox.stats.duplicates == 1
    # full: a non-blocking put is refused (HTTP answers 503), counted
    small = DurableInbox(store, table, max_queued=1)
    assert small.put(None, None, []) and not small.put(None, None, [], block=False)
    assert small.stats.shed_http == 1
