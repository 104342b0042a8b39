"""The shipped broker config on a real Mosquitto: no anonymous clients, a node publishes only on its own topic,
a redelivered signed batch is stored once, and QoS 1 messages queued while the service is away survive a broker
restart (persistence on)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from conftest import free_port, wait_port
from skytrace.io.mqtt import RECEIPT_PREFIX, MqttIngest, topic_for
from skytrace.model import Detection
from skytrace.security.broker import SERVICE_USER, write_broker_config
from skytrace.security.fuzzing import _table
from skytrace.security.keys import KeyRegistry, generate_private_key, load_private_key
from skytrace.security.signing import Signer, Verifier

EXE = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(not Path(EXE).exists() or shutil.which("mosquitto_passwd") is None,
                                reason="needs the mosquitto Debian package")


class Broker:
    def __init__(self, conf: Path, port: int):
        self.conf, self.port, self.proc = conf, port, None

    def start(self):
        self.proc = subprocess.Popen([EXE, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        assert wait_port(self.port), "mosquitto did not start"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def broker():
    port = free_port()
    d = Path(tempfile.mkdtemp(prefix="skytrace-broker-"))
    d.chmod(0o755)  # started as root, mosquitto runs as its own user and must reach its files
    creds = write_broker_config(["ac-1", "sight"], d, port=port)
    b = Broker(d / "mosquitto.conf", port)
    b.start()
    yield b, creds
    if b.proc.poll() is None:
        b.stop()
    shutil.rmtree(d, ignore_errors=True)


def _client(port, user=None, pw=None, cid=""):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
    if user:
        c.username_pw_set(user, pw)
    result = {}
    c.on_connect = lambda cl, ud, fl, rc, pr: result.setdefault("rc", rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.time() + 5
    while "rc" not in result and time.time() < deadline:
        time.sleep(0.02)
    return c, result.get("rc")


def _wait(pred, timeout_s=10.0):
    deadline = time.time() + timeout_s
    while not pred() and time.time() < deadline:
        time.sleep(0.05)
    return pred()


def test_broker_refuses_anonymous_and_wrong_passwords_and_enforces_topics(broker, tmp_path):
    b, creds = broker
    for user, pw in ((None, None), ("ac-1", "wrong"), ("nobody", "x")):
        c, rc = _client(b.port, user, pw)
        assert rc is not None and rc.is_failure, (user, rc)
        c.loop_stop()
    reg = KeyRegistry()
    reg.register("ac-1", generate_private_key(tmp_path / "ac1.key"))
    signer = Signer("ac-1", load_private_key(tmp_path / "ac1.key"), seq0=0)
    verifier = Verifier(reg, _table())
    got: list[Detection] = []
    ingest = MqttIngest(_table(), got.extend, "127.0.0.1", b.port, client_id="svc-test", username=SERVICE_USER,
                        password=creds[SERVICE_USER], verifier=verifier)
    ingest.start()
    try:
        node, rc = _client(b.port, "ac-1", creds["ac-1"])
        assert not rc.is_failure
        det = Detection(t=time.time(), sensor="ac-1", bearing_deg=12.0)
        batch = signer.sign([det])
        node.publish(topic_for("ac-1"), batch, qos=1).wait_for_publish(5)
        node.publish(topic_for("ac-1"), batch, qos=1).wait_for_publish(5)  # a redelivery / replay
        # the ACL: ac-1 cannot speak on the topic of another sensor (the broker drops it)
        node.publish(topic_for("sight"), signer.sign([det]), qos=1).wait_for_publish(5)
        assert _wait(lambda: ingest.stats.messages >= 2)
        time.sleep(1.0)
        assert len(got) == 1  # stored once
        assert ingest.stats.messages == 2  # the cross-topic message never reached the service
        assert verifier.as_dict()["rejected_by_reason"] == {"replayed": 1}
        # receipts: only the service writes them, and a node reads only its own
        heard: dict[str, list[bytes]] = {"ac-1": [], "sight": []}
        other, rc = _client(b.port, "sight", creds["sight"])
        assert not rc.is_failure
        for cl, who in ((node, "ac-1"), (other, "sight")):
            cl.on_message = lambda _c, _u, msg, who=who: heard[who].append(msg.payload)
            cl.subscribe(RECEIPT_PREFIX + "ac-1", qos=1)
        time.sleep(0.5)  # the subscriptions reach the broker (a SUBACK comes even when the ACL denies reading)
        node.publish(RECEIPT_PREFIX + "ac-1", b'{"seq":99}', qos=1).wait_for_publish(5)  # a node cannot forge one
        svc, rc = _client(b.port, SERVICE_USER, creds[SERVICE_USER])
        svc.publish(RECEIPT_PREFIX + "ac-1", b'{"seq":7}', qos=1).wait_for_publish(5)
        assert _wait(lambda: heard["ac-1"])
        time.sleep(0.5)
        assert heard == {"ac-1": [b'{"seq":7}'], "sight": []}
        for cl in (node, other, svc):
            cl.loop_stop()
    finally:
        ingest.stop()


def test_queued_messages_survive_a_broker_restart(broker, tmp_path):
    b, creds = broker
    table = _table()
    got: list[Detection] = []
    # the service subscribes once (persistent session), then goes away
    first = MqttIngest(table, got.extend, "127.0.0.1", b.port, client_id="svc-persist", username=SERVICE_USER,
                       password=creds[SERVICE_USER])
    first.start()
    first.stop()
    node, rc = _client(b.port, "ac-1", creds["ac-1"])
    n = 200
    t0 = time.time()
    infos = [node.publish(topic_for("ac-1"), _enc(t0 + i * 0.01), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(5)
    node.loop_stop()
    node.disconnect()
    time.sleep(1.5)  # autosave
    b.stop()  # the broker restarts while the service is down
    b.start()
    second = MqttIngest(table, got.extend, "127.0.0.1", b.port, client_id="svc-persist", username=SERVICE_USER,
                        password=creds[SERVICE_USER])
    second.start()
    try:
        assert _wait(lambda: len(got) >= n, 20), len(got)
        assert len(got) == n
    finally:
        second.stop()


def _enc(t: float) -> bytes:
    import msgspec

    return msgspec.json.encode(Detection(t=t, sensor="ac-1", bearing_deg=1.0))
