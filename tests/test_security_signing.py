"""Sensor identity: signed batches over HTTP and MQTT; every rejection reason is rejected and counted.

Also the browser-borne attacks: foreign Host (DNS rebinding), foreign Origin (HTTP and websocket), cross-site
``text/plain`` POST (CSRF), and HTTP ingest closed without keys unless ``insecure_demo``.
"""

from __future__ import annotations

import base64
import json
import time

import msgspec
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from skytrace.cli import app as cli_app
from skytrace.errors import SkytraceError
from skytrace.model import Detection
from skytrace.security.fuzzing import ZONES_SEED, _table
from skytrace.security.keys import KeyRegistry, generate_private_key, load_private_key
from skytrace.security.signing import ReplayWindow, Signer, Verifier
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store
from skytrace.zones import zones_from_geojson

JSON = {"Content-Type": "application/json"}


def _det(sensor="ac-1", t=None, **kw) -> Detection:
    t = time.time() if t is None else t
    return Detection(t=t, sensor=sensor, bearing_deg=kw.pop("bearing_deg", 10.0), **kw)


def _service() -> LiveService:
    table = _table()
    zones = zones_from_geojson(json.loads(ZONES_SEED))
    return LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                       step_s=0.05)


def test_verifier_rejects_each_reason_and_counts_per_sensor(keyed):
    reg, signers, stranger = keyed
    v = Verifier(reg, _table())
    ac = signers["ac-1"]
    good = ac.sign([_det()])
    assert v.open(good)[1] is None
    cases = {
        "replayed": good,  # the same batch again (QoS 1 redelivery or an attacker's replay)
        "unsigned": msgspec.json.encode([_det()]),
        "malformed": b'{"sig": "x", "sensor": 5}',
        "unknown_sensor": Signer("ghost", stranger, seq0=0).sign([_det("ghost")]),
        "unknown_key": Signer("ac-1", stranger, seq0=10).sign([_det()]),
        "out_of_window": ac.sign([_det()], t_sent=time.time() - 3600),
        "sensor_mismatch": ac.sign([_det("sight", bearing_deg=None, lat=50.0, lon=30.0)]),
    }
    # a forged batch: a valid one whose detection was changed after signing
    doc = json.loads(ac.sign([_det()]))
    doc["detections"][0]["bearing_deg"] = 200.0
    cases["bad_signature"] = json.dumps(doc).encode()
    doc = json.loads(ac.sign([_det()]))
    doc["sig"] = base64.b64encode(b"\0" * 64).decode()
    bad_zero_sig = json.dumps(doc).encode()
    future = ac.sign([_det()], t_sent=time.time() + 60)
    for reason, payload in cases.items():
        dets, got = v.open(payload)
        assert dets == [] and got == reason, reason
    assert v.open(bad_zero_sig)[1] == "bad_signature"
    assert v.open(future)[1] == "out_of_window"
    d = v.as_dict()
    assert d["batches_accepted"] == 1
    assert d["rejected_by_reason"] == {"replayed": 1, "unsigned": 1, "malformed": 1, "unknown_sensor": 1,
                                       "unknown_key": 1, "out_of_window": 2, "sensor_mismatch": 1,
                                       "bad_signature": 2}
    assert d["rejected_by_sensor"]["ac-1"]["bad_signature"] == 2
    assert d["rejected_by_sensor"]["(unregistered)"]["unknown_sensor"] == 1  # unknown ids share one bucket


def test_rotated_and_revoked_keys_are_rejected(keyed, tmp_path):
    reg, signers, _ = keyed
    v = Verifier(reg, _table())
    old = signers["ac-1"]
    reg.rotate("ac-1", generate_private_key(tmp_path / "ac-1-new.key"))
    new = Signer("ac-1", load_private_key(tmp_path / "ac-1-new.key"), seq0=100)
    assert v.open(old.sign([_det()]))[1] == "retired_key"
    assert v.open(new.sign([_det()]))[1] is None
    reg.revoke("ac-1")
    assert v.open(new.sign([_det()]))[1] == "revoked_key"
    assert v.rejected_total() == 2


def test_replay_window_handles_reordering_but_not_duplicates():
    w = ReplayWindow(size=8)
    assert [w.check_and_mark(s) for s in (5, 7, 6, 6, 7, 20, 13, 12, 11, 1000, 999)] == [
        True, True, True, False, False, True, True, False, False, True, True]
    # 12 and 11 are more than 8 behind the highest (20): too old, treated as replays


def test_replay_window_in_time_mode_accepts_a_delayed_batch_once():
    """A backlog delayed behind many newer batches (a broker outage) is accepted once while it is in the time
    window; replays of it are refused; the memory stays bounded by the cap."""
    w = ReplayWindow(size=8, cap=100)
    now = 1_795_000_000.0
    assert all(w.check_and_mark(s, now, now - 120) for s in range(100, 150))  # 50 newer ones first
    assert [w.check_and_mark(s, now - 5, now - 120) for s in (3, 4, 3, 120)] == [True, True, False, False]
    assert all(w.check_and_mark(s, now, now - 120) for s in range(1000, 1300))
    assert len(w.seen) <= 2 * 100 and not w.check_and_mark(3, now, now - 120)  # forgotten for the cap: refused


def test_every_forged_replayed_unsigned_batch_is_rejected_over_http(keyed):
    reg, signers, stranger = keyed
    svc = _service()
    v = Verifier(reg, svc.table)
    ac = signers["ac-1"]
    n_each = 50
    good = [ac.sign([_det()]) for _ in range(n_each)]
    forged = [Signer("ac-1", stranger, seq0=10_000 + i).sign([_det()]) for i in range(n_each)]
    unsigned = [msgspec.json.encode([_det()]) for _ in range(n_each)]
    stale = [ac.sign([_det()], t_sent=time.time() - 1000) for _ in range(n_each)]
    with TestClient(create_app(svc, verifier=v), base_url="http://127.0.0.1") as client:
        for body in good:
            assert client.post("/api/v1/detections", content=body, headers=JSON).status_code == 202
        for bodies in (good, forged, unsigned, stale):  # good again = replays
            for body in bodies:
                r = client.post("/api/v1/detections", content=body, headers=JSON)
                assert r.status_code == 422 and r.json()["accepted"] == 0
        status = client.get("/api/v1/status").json()
    assert svc.stats.n_in == n_each  # only the genuine batches, each once
    assert status["auth"]["batches_accepted"] == n_each
    assert status["auth"]["rejected_by_reason"] == {"replayed": n_each, "unknown_key": n_each,
                                                    "unsigned": n_each, "out_of_window": n_each}


def test_http_ingest_is_closed_without_keys_and_guards_host_origin_and_csrf():
    svc = _service()
    body = msgspec.json.encode([_det()])
    with TestClient(create_app(svc), base_url="http://127.0.0.1") as client:
        r = client.post("/api/v1/detections", content=body, headers=JSON)
        assert r.status_code == 403 and "signed" in r.json()["detail"]
    with TestClient(create_app(_service(), insecure_demo=True), base_url="http://127.0.0.1") as client:
        assert client.post("/api/v1/detections", content=body, headers=JSON).status_code == 202
        # CSRF: a cross-site form or fetch without preflight can only send these types
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
            assert client.post("/api/v1/detections", content=body,
                               headers={"Content-Type": ctype}).status_code == 415
        # a foreign Origin is refused, the service's own is not
        r = client.post("/api/v1/detections", content=body,
                        headers={**JSON, "Origin": "https://evil.example"})
        assert r.status_code == 403
        assert client.post("/api/v1/detections", content=body,
                           headers={**JSON, "Origin": "http://127.0.0.1:8080"}).status_code == 202
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header still says the name
        assert client.get("/api/v1/status", headers={"Host": "evil.example"}).status_code == 400
        assert client.get("/api/v1/status", headers={"Host": "localhost:8080"}).status_code == 200
        r = client.options("/api/v1/detections", headers={"Origin": "http://127.0.0.1",
                                                          "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in {k.lower() for k in r.headers}  # no CORS, ever
        with pytest.raises(Exception), client.websocket_connect(  # noqa: B017 - starlette's disconnect type
                "ws://127.0.0.1/api/v1/ws", headers={"Origin": "https://evil.example"}) as ws:
            ws.receive_text()
        with client.websocket_connect("ws://127.0.0.1/api/v1/ws", headers={"Origin": "http://127.0.0.1"}) as ws:
            assert json.loads(ws.receive_text())["type"] in ("tracks", "alerts", "status")
        guard = client.get("/api/v1/status").json()["http_guard"]
    assert guard == {"rejected_host": 1, "rejected_origin": 2}


def test_keys_cli_register_rotate_revoke(tmp_path):
    runner = CliRunner()
    reg = str(tmp_path / "keys.json")
    r = runner.invoke(cli_app, ["keys", "register", "ac-1", "--registry", reg, "--generate",
                                str(tmp_path / "a.key")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.key").stat().st_mode & 0o077 == 0  # the private key is private
    r = runner.invoke(cli_app, ["keys", "register", "ac-1", "--registry", reg, "--generate",
                                str(tmp_path / "b.key")])
    assert r.exit_code != 0 and not (tmp_path / "b.key").exists()
    assert runner.invoke(cli_app, ["keys", "rotate", "ac-1", "--registry", reg, "--generate",
                                   str(tmp_path / "c.key")]).exit_code == 0
    assert runner.invoke(cli_app, ["keys", "revoke", "ac-1", "--registry", reg]).exit_code == 0
    out = runner.invoke(cli_app, ["keys", "list", "--registry", reg]).output
    assert out.count("revoked") == 2
    (tmp_path / "bad.json").write_text('{"version": 1, "sensors": {"x": [{"status": "active", "public_key": "AAA"}]}}')
    with pytest.raises(SkytraceError, match=r"32 bytes|base64"):
        KeyRegistry.load(tmp_path / "bad.json")
