"""MQTT ingest against a real Mosquitto broker, end to end to the websocket, with SQLite and PostGIS stores."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from skytrace.io import formats
from skytrace.io.mqtt import TOPIC_PREFIX, MqttIngest, MqttPublisher, topic_for
from skytrace.model import Detection
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store
from skytrace.zones import read_zones


def _wait(cond, timeout_s=15.0):
    end = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < end:
        time.sleep(0.05)
    return cond()


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_mqtt_to_store_and_websocket(kyiv_short, mqtt_port, backend, request, tmp_path):
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    url = str(tmp_path / "live.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    svc = LiveService(table=table, zones=read_zones(kyiv_short / "zones.geojson"),
                      stage=pipeline_stage(table, None), store=open_store(url), step_s=0.1)
    ingest = MqttIngest(table, svc.submit, "127.0.0.1", mqtt_port, client_id=f"test-{backend}-{time.time_ns()}")
    ingest.stats = svc.ingest_stats
    ac = next(s.id for s in table.records if s.kind == "acoustic")
    radar = next(s.id for s in table.records if s.kind == "radar")
    with ServerThread(create_app(svc, ingest)) as server:
        async def listen() -> list[dict]:
            got = []
            async with websockets.connect(server.url.replace("http", "ws") + "/api/v1/ws") as ws:
                pub = MqttPublisher("127.0.0.1", mqtt_port)
                pub.start()
                now = time.time()
                infos = [pub.publish(ac, [Detection(t=now + i * 1e-3, sensor=ac, bearing_deg=float(i))
                                          for i in range(k * 10, k * 10 + 10)]) for k in range(30)]
                infos.append(pub.publish(radar, [Detection(t=now, sensor=radar, bearing_deg=1.0, elevation_deg=2.0,
                                                           range_m=5000.0)]))
                # hostile and broken messages: none may stop the service
                infos.append(pub.publish_raw(topic_for(ac), b"\x00\xff garbage"))
                infos.append(pub.publish_raw(topic_for(ac), json.dumps({"t": now, "sensor": radar,
                                                                        "bearing_deg": 1}).encode()))
                infos.append(pub.publish_raw(topic_for("ghost"), json.dumps({"t": now, "sensor": "ghost",
                                                                             "bearing_deg": 1}).encode()))
                infos.append(pub.publish_raw(TOPIC_PREFIX + ac + "/extra", b"{}"))
                infos.append(pub.publish_raw(topic_for(radar), json.dumps({"t": now, "sensor": radar,
                                                                           "bearing_deg": 1}).encode()))
                for info in infos:
                    info.wait_for_publish(10)
                pub.stop()
                end = time.monotonic() + 15
                while time.monotonic() < end:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    got.append(m)
                    if m["type"] == "tracks" and m.get("n_in", 0) >= 301:
                        break
            return got

        msgs = asyncio.run(listen())
        assert _wait(lambda: svc.ingest_stats.rejected_messages + svc.ingest_stats.rejected_detections >= 5)
        assert _wait(lambda: svc.stats.n_stored == 301)
    assert msgs[-1]["type"] == "tracks" and msgs[-1]["n_in"] == 301
    stats = svc.ingest_stats.as_dict()
    assert stats["accepted"] == 301
    assert stats["rejected_messages"] == 1  # the garbage; the extra topic level never matches the filter
    assert stats["rejected_detections"] >= 3  # wrong sensor on topic, unknown sensor, radar without range
    assert svc.store.count_detections() == 301
    svc.store.close()


def test_mqtt_ingest_fails_clearly_without_a_broker():
    from skytrace.batch import SensorTable
    from skytrace.errors import SkytraceError

    ingest = MqttIngest(SensorTable.from_sensors([]), lambda d: None, "127.0.0.1", 1)
    with pytest.raises(SkytraceError, match="MQTT broker"):
        ingest.start(timeout_s=2)


def test_topic_for_rejects_wildcards():
    with pytest.raises(ValueError):
        topic_for("a/b")
    with pytest.raises(ValueError):
        topic_for("+")


def test_replay_command_publishes_every_detection_once(kyiv_short, mqtt_port, tmp_path):
    """`skytrace replay --mqtt` at 120x for 3 minutes of data: the service stores exactly what the file holds."""
    from skytrace.service.replay import replay_detections

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    dets = list(formats.iter_detections(kyiv_short / "detections.jsonl", table))
    ta = [d.t if d.t_arrival is None else d.t_arrival for d in dets]
    expected = sum(1 for a in ta if a - ta[0] <= 180.0)
    svc = LiveService(table=table, zones=None, stage=pipeline_stage(table, None), store=open_store(None),
                      step_s=0.1)
    ingest = MqttIngest(table, svc.submit, "127.0.0.1", mqtt_port, client_id=f"test-replay-{time.time_ns()}")
    ingest.stats = svc.ingest_stats
    with ServerThread(create_app(svc, ingest)):
        res = replay_detections(kyiv_short, speed=120.0, mqtt=f"127.0.0.1:{mqtt_port}", limit_s=180.0)
        assert res["published"] == expected
        assert _wait(lambda: svc.stats.n_stored == expected)
    assert svc.store.count_detections() == expected
    assert svc.ingest_stats.rejected_detections == 0
    first = svc.store.detections(0, 1e12, limit=1)[0]
    assert abs(first.t - time.time()) < 600  # retimed to the wall clock (minus propagation delay)


def test_serve_and_replay_commands_end_to_end(kyiv_short, mqtt_port, tmp_path):
    """`skytrace serve` as a process with MQTT and SQLite; `skytrace replay --mqtt` into it; stop with SIGINT."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False

    db = tmp_path / "serve.db"
    cmd = [sys.executable, "-c", "from skytrace.cli import main; main()"]
    serve = subprocess.Popen([*cmd, "serve", str(kyiv_short), "--port", str(port), "--db", str(db), "--mqtt",
                              f"127.0.0.1:{mqtt_port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # start-up builds the default zones (3,346) and their raster: ~12 s here, minutes on a loaded machine
        assert _wait(lambda: listening() or serve.poll() is not None, 240) and serve.poll() is None, \
            serve.stderr.read() if serve.poll() is not None else "serve did not listen"
        rep = subprocess.run([*cmd, "replay", str(kyiv_short), "--mqtt", f"127.0.0.1:{mqtt_port}", "--speed", "120",
                              "--limit-s", "120"], capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        published = int(rep.stdout.split("published ")[1].split()[0])
        assert published > 0

        def status() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=5) as r:
                return json.loads(r.read())

        assert _wait(lambda: status()["n_stored"] == published, 20), status()
        assert status()["ingest"]["rejected_detections"] == 0
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert "127.0.0.1" in out
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM detections").fetchone()[0] == published
    assert os.path.exists(db)


def test_detections_published_while_the_service_is_down_arrive_when_it_returns(kyiv_short, mqtt_port):
    """Persistent session (clean_session=False, QoS 1): the broker keeps what nodes publish during a restart."""
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    ac = next(s.id for s in table.records if s.kind == "acoustic")
    client_id = f"test-restart-{time.time_ns()}"
    got: list[Detection] = []
    first = MqttIngest(table, got.extend, "127.0.0.1", mqtt_port, client_id=client_id)
    first.start()
    first.stop()  # the service goes down; its session stays on the broker
    pub = MqttPublisher("127.0.0.1", mqtt_port)
    pub.start()
    now = time.time()
    infos = [pub.publish(ac, [Detection(t=now + i, sensor=ac, bearing_deg=float(i))]) for i in range(200)]
    for info in infos:
        info.wait_for_publish(10)
    pub.stop()
    assert got == []
    second = MqttIngest(table, got.extend, "127.0.0.1", mqtt_port, client_id=client_id)
    second.start()
    try:
        assert _wait(lambda: len(got) >= 200, 15)
    finally:
        second.stop()
    assert sorted(d.bearing_deg for d in got) == [float(i) for i in range(200)]
