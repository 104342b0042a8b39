"""`skytrace node --mqtt` publishes its detections on skytrace's detection topic of a real Mosquitto broker, and
the service's own ingest path accepts them."""

from __future__ import annotations

import json
import subprocess
import threading

import numpy as np

from skytrace.batch import SensorTable
from skytrace.io.heartbeat import HEARTBEAT_TOPIC_FILTER, decode_heartbeats
from skytrace.io.mqtt import TOPIC_FILTER, DecodeStats, decode_detections
from skytrace.model import Sensor
from skytrace.node import synth
from skytrace.node.array import load_preset
from skytrace.node.wav import write_wav
from test_node import _skytrace

FS = 16000


def _engine_scene(tmp_path, node_id: str) -> None:
    """array.json and a.wav: an engine heard from 75 deg at 0 dB band SNR for 8 s, on a 4-mic 32 mm array."""
    arr = load_preset("circle4-32mm", node_id, 50.4, 30.5, 160.0)
    (tmp_path / "array.json").write_text(json.dumps(arr.to_json()))
    rng = np.random.default_rng(9)
    src = synth.engine(rng, 8.0, FS, f0_hz=85.0)
    sig = synth.render_plane(src, arr.mics_m, FS, 75.0, 10.0)
    noise = synth.render_diffuse(rng, sig.shape[0], FS, arr.mics_m)
    mix, _ = synth.mix_at_snr(sig, noise, 0.0, FS)
    write_wav(tmp_path / "a.wav", 0.8 * mix / np.abs(mix).max(), FS)


def test_node_publishes_detections_over_mqtt(tmp_path, mqtt_port):
    import paho.mqtt.client as mqtt

    _engine_scene(tmp_path, "node-mqtt-1")

    got: list[tuple[str, bytes]] = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-node-sub")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe([(TOPIC_FILTER, 1), (HEARTBEAT_TOPIC_FILTER, 1)])
    sub.on_subscribe = lambda c, u, mid, rcs, p: ready.set()  # granted: nothing published from now on is missed
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.connect("127.0.0.1", mqtt_port)
    sub.loop_start()
    try:
        assert ready.wait(10)
        res = subprocess.run([_skytrace(), "node", "--array", str(tmp_path / "array.json"), "--wav",
                              str(tmp_path / "a.wav"), "--t0", "1760000000", "--mqtt", f"127.0.0.1:{mqtt_port}",
                              "--out", str(tmp_path / "d.jsonl")], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        written = (tmp_path / "d.jsonl").read_text().splitlines()
        deadline = threading.Event()
        for _ in range(50):
            if sum(len(json.loads(p)) if p.startswith(b"[") else 1 for t, p in got if "/detections/" in t) \
                    >= len(written) and any("/heartbeat/" in t for t, _ in got):
                break
            deadline.wait(0.1)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert len(written) >= 5
    table = SensorTable.from_sensors([Sensor(id="node-mqtt-1", kind="acoustic", lat=50.4, lon=30.5, alt_m=160.0,
                                             bearing_sigma_deg=3.0)])
    stats = DecodeStats()
    dets = []
    beats = []
    for topic, payload in got:
        if topic == "skytrace/v1/heartbeat/node-mqtt-1":
            beats += decode_heartbeats(payload, table, stats, topic_sensor="node-mqtt-1")
            continue
        assert topic == "skytrace/v1/detections/node-mqtt-1"
        dets += decode_detections(payload, table, stats, topic_sensor="node-mqtt-1")
    assert stats.rejected_detections == 0 and stats.rejected_messages == 0
    # the node says it is alive: its first heartbeat at the start of the audio (8 s: one beat per 30 s)
    assert [s for s, _ in beats] == ["node-mqtt-1"] and 1760000000 <= beats[0][1] <= 1760000001
    assert len(dets) == len(written)  # every written line was published, once
    assert all(abs((d.bearing_deg - 75.0 + 180) % 360 - 180) < 10 for d in dets)


def test_a_signing_node_is_accepted_by_a_service_that_requires_signatures(tmp_path, mqtt_port):
    """`skytrace node --key` signs its detections and heartbeats; the service's MQTT ingest with the key registry
    accepts every message of it and refuses, counted by reason, the same node unsigned and a node signing with a
    key the registry does not know."""
    import time

    from skytrace.io.mqtt import MqttIngest
    from skytrace.security.signing import make_verifier

    _engine_scene(tmp_path, "node-mqtt-2")
    reg = tmp_path / "keys.json"
    done = subprocess.run([_skytrace(), "keys", "register", "node-mqtt-2", "--registry", str(reg), "--generate",
                           str(tmp_path / "node.key")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([_skytrace(), "keys", "register", "someone-else", "--registry", str(tmp_path / "k2.json"),
                           "--generate", str(tmp_path / "stranger.key")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = SensorTable.from_sensors([Sensor(id="node-mqtt-2", kind="acoustic", lat=50.4, lon=30.5, alt_m=160.0,
                                             bearing_sigma_deg=3.0)])
    verifier = make_verifier(str(reg), table)
    dets: list = []
    beats: list = []
    ingest = MqttIngest(table, dets.extend, "127.0.0.1", mqtt_port, client_id="svc-node-signed", verifier=verifier,
                        on_heartbeats=beats.extend)
    ingest.start()  # returns once subscribed: nothing the node publishes is missed
    try:
        def node(*extra: str) -> int:
            out = tmp_path / f"d{len(extra)}.jsonl"
            res = subprocess.run([_skytrace(), "node", "--array", str(tmp_path / "array.json"), "--wav",
                                  str(tmp_path / "a.wav"), "--t0", f"{time.time():.3f}", "--mqtt",
                                  f"127.0.0.1:{mqtt_port}", "--out", str(out), *extra],
                                 capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, res.stderr
            return len(out.read_text().splitlines())

        def wait_detections(n: int) -> None:
            deadline = time.monotonic() + 30
            while len(dets) < n and time.monotonic() < deadline:
                time.sleep(0.05)

        key = str(tmp_path / "node.key")
        n_signed = node("--key", key)
        assert n_signed >= 5
        wait_detections(n_signed)
        assert len(dets) == n_signed and [s for s, _ in beats] == ["node-mqtt-2"]
        assert verifier.as_dict()["rejected_by_reason"] == {}
        # the same node without its key, then someone signing with a key the registry does not hold, then the
        # node with its key again: a fence (each run ends when the broker has acknowledged all it sent, and the
        # broker delivers to the service in that order), so when its detections are in, all before them are too
        n_plain = node()
        n_forged = node("--key", str(tmp_path / "stranger.key"))
        n_again = node("--key", key)
        wait_detections(n_signed + n_again)
        assert len(dets) == n_signed + n_again and n_plain == n_forged == n_signed
        rejected = verifier.as_dict()["rejected_by_reason"]
        assert set(rejected) == {"unsigned", "unknown_key"}, rejected
        assert rejected["unsigned"] == rejected["unknown_key"] >= 2  # the same messages: detections + heartbeat
        assert verifier.as_dict()["batches_accepted"] == 2 * rejected["unsigned"]
        assert len(beats) == 2
    finally:
        ingest.stop()
