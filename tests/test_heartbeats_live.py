"""Heartbeats in the live service: signed over MQTT (a real Mosquitto with the shipped broker config and ACL) and
over HTTP, validated at the edge (unsigned, forged, replayed, wrong topic, carrying detections, unknown sensor,
far-future: refused and counted) and fed to the one pipeline (tracker and consistency check)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from conftest import free_port, wait_port
from skytrace.io.heartbeat import heartbeat_topic_for
from skytrace.io.mqtt import MqttIngest, MqttPublisher
from skytrace.model import Detection, Heartbeat
from skytrace.security.broker import SERVICE_USER, write_broker_config
from skytrace.security.fuzzing import ZONES_SEED, _table
from skytrace.security.signing import Signer, Verifier
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store
from skytrace.zones import zones_from_geojson

EXE = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
JSON = {"Content-Type": "application/json"}


def _service() -> LiveService:
    table = _table()
    zones = zones_from_geojson(json.loads(ZONES_SEED))
    return LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                       step_s=0.05)


def _wait(pred, timeout_s: float = 15.0) -> bool:
    deadline = time.time() + timeout_s
    while not pred() and time.time() < deadline:
        time.sleep(0.05)
    return pred()


def _fed(svc: LiveService) -> int:
    return int(svc.stage.tracker.stats.get("heartbeats", 0))


def test_signed_heartbeats_over_http_reach_the_pipeline_and_bad_ones_are_refused(keyed):
    reg, signers, stranger = keyed
    svc = _service()
    v = Verifier(reg, svc.table)
    ac = signers["ac-1"]
    now = time.time()
    good = [ac.sign([], t_sent=now + 0.01 * i) for i in range(5)]
    with TestClient(create_app(svc, verifier=v), base_url="http://127.0.0.1") as client:
        for body in good:
            r = client.post("/api/v1/heartbeats", content=body, headers=JSON)
            assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        bad = [good[0],  # replayed
               Signer("ac-1", stranger, seq0=99).sign([], t_sent=now),  # forged
               msgspec.json.encode(Heartbeat(now, "ac-1")),  # unsigned
               ac.sign([], t_sent=now - 1000),  # out of window
               ac.sign([Detection(t=now, sensor="ac-1", bearing_deg=3.0)], t_sent=now)]  # not a heartbeat
        for body in bad:
            r = client.post("/api/v1/heartbeats", content=body, headers=JSON)
            assert r.status_code == 422 and r.json()["accepted"] == 0, r.text
        assert client.post("/api/v1/heartbeats", content=good[0], headers={"Content-Type": "text/plain"}
                           ).status_code == 415
        assert _wait(lambda: _fed(svc) == 5)
        status = client.get("/api/v1/status").json()
    assert status["heartbeats"]["accepted"] == 5
    assert status["heartbeats"]["payloads"]["rejected_messages"] == 5
    assert status["auth"]["rejected_by_reason"] == {"replayed": 1, "unknown_key": 1, "unsigned": 1,
                                                    "out_of_window": 1}
    # the consistency check knows ac-1 is alive (its silence may now contradict a neighbour's bearings)
    row = svc.table.index["ac-1"]
    assert svc.stage.consistency.alive_t[row] >= now


def test_a_captured_signed_heartbeat_is_refused_after_a_restart(keyed, tmp_path):
    """Accepted signed heartbeats are stored (their sequence numbers, like report batches), so the replay window
    rebuilt from the store when the service starts again refuses a heartbeat captured before the restart, while
    the node's next heartbeat is accepted."""
    reg, signers, _ = keyed
    ac = signers["ac-1"]
    now = time.time()
    captured, later = ac.sign([], t_sent=now), ac.sign([], t_sent=now + 0.5)

    def start():
        table = _table()
        zones = zones_from_geojson(json.loads(ZONES_SEED))
        svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones),
                          store=open_store(str(tmp_path / "store.db")), step_s=0.05)
        v = Verifier(reg, svc.table)
        v.seed(svc.store.recent_batch_seqs(1024))  # what `skytrace serve --keys` does at start
        return svc, v

    svc, v = start()
    with TestClient(create_app(svc, verifier=v), base_url="http://127.0.0.1") as client:
        r = client.post("/api/v1/heartbeats", content=captured, headers=JSON)
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text  # 202: committed to the store
    svc.store.close()
    store = open_store(str(tmp_path / "store.db"))
    assert max(store.recent_batch_seqs(1024)["ac-1"]) == ac.seq - 1  # the heartbeat's sequence number
    store.close()
    svc, v = start()  # the service again, on the same store
    with TestClient(create_app(svc, verifier=v), base_url="http://127.0.0.1") as client:
        r = client.post("/api/v1/heartbeats", content=captured, headers=JSON)
        assert r.status_code == 422 and r.json()["accepted"] == 0, r.text
        r = client.post("/api/v1/heartbeats", content=later, headers=JSON)
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    assert v.as_dict()["rejected_by_reason"] == {"replayed": 1}
    svc.store.close()


def test_unsigned_heartbeats_in_demo_mode_are_time_checked_at_the_edge():
    svc = _service()
    now = time.time()
    with TestClient(create_app(svc, insecure_demo=True), base_url="http://127.0.0.1") as client:
        body = msgspec.json.encode([Heartbeat(now, "ac-1"), Heartbeat(now, "sight"), Heartbeat(now, "nobody")])
        r = client.post("/api/v1/heartbeats", content=body, headers=JSON)
        assert r.status_code == 202 and r.json()["accepted"] == 2 and r.json()["rejected"] == 1
        r = client.post("/api/v1/heartbeats", content=msgspec.json.encode(Heartbeat(now + 3600, "ac-1")),
                        headers=JSON)
        assert r.status_code == 202
        assert client.post("/api/v1/heartbeats", content=b"[" * 5000, headers=JSON).status_code == 422
        assert _wait(lambda: svc.heartbeat_counts["rejected_future"] == 1)
        assert _fed(svc) == 2


@pytest.mark.skipif(not Path(EXE).exists() or shutil.which("mosquitto_passwd") is None,
                    reason="needs the mosquitto Debian package")
def test_signed_heartbeats_over_mqtt_with_the_shipped_broker_config(tmp_path, keyed):
    reg, signers, _ = keyed
    port = free_port()
    d = Path(tempfile.mkdtemp(prefix="skytrace-broker-"))
    d.chmod(0o755)
    creds = write_broker_config(["ac-1", "sight"], d, port=port)
    broker = subprocess.Popen([EXE, "-c", str(d / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    svc = _service()
    ingest = None
    try:
        assert wait_port(port), "mosquitto did not start"
        v = Verifier(reg, svc.table)
        ingest = MqttIngest(svc.table, svc.submit, "127.0.0.1", port, client_id="svc-hb", username=SERVICE_USER,
                            password=creds[SERVICE_USER], verifier=v, on_heartbeats=svc.heartbeat)
        ingest.start()
        node = MqttPublisher("127.0.0.1", port, client_id="node-ac-1")
        node.client.username_pw_set("ac-1", creds["ac-1"])
        node.start()
        now = time.time()
        infos = [node.publish_heartbeat("ac-1", now + 0.01 * i, signer=signers["ac-1"]) for i in range(10)]
        infos.append(node.publish_heartbeat("ac-1", now))  # unsigned: refused
        # the ACL: ac-1 cannot publish on sight's heartbeat topic (the broker drops it)
        infos.append(node.client.publish(heartbeat_topic_for("sight"), signers["sight"].sign([], t_sent=now), qos=1))
        # a fence: one more good heartbeat after it (one client, in order: the dropped one would have come first)
        infos.append(node.publish_heartbeat("ac-1", now + 0.5, signer=signers["ac-1"]))
        for info in infos:
            info.wait_for_publish(5)
        assert _wait(lambda: ingest.heartbeat_stats.accepted >= 11)
        assert _wait(lambda: (svc.step_once(), _fed(svc))[1] >= 11)
        assert _fed(svc) == 11
        assert ingest.heartbeat_stats.accepted == 11 and ingest.heartbeat_stats.rejected_messages == 1
        assert ingest.heartbeat_stats.messages == 12  # the cross-topic heartbeat never reached the service
        assert v.as_dict()["rejected_by_reason"] == {"unsigned": 1}
        node.stop()
    finally:
        if ingest is not None:
            ingest.stop()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(d, ignore_errors=True)
