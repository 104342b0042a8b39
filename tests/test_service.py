"""The live service in-process: HTTP ingest (hostile bodies), REST, OpenAPI, websocket, truth replay, real tracker."""

from __future__ import annotations

import itertools
import json
import time

import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from skytrace.batch import SensorTable
from skytrace.cli import app as cli_app
from skytrace.io import formats
from skytrace.model import Alert, Detection
from skytrace.service.app import create_app
from skytrace.service.build import build_service
from skytrace.service.core import LiveService
from skytrace.service.stages import TruthReplayStage, pipeline_stage
from skytrace.store import open_store
from skytrace.zones import read_zones

LOCAL = {"base_url": "http://127.0.0.1", "headers": {"Content-Type": "application/json"}}  # loopback, JSON


def _service(d, stage=None, **kw) -> LiveService:
    table = formats.load_sensor_table(d / "sensors.json")
    zones = read_zones(d / "zones.geojson")
    stage = stage if stage is not None else pipeline_stage(table, zones)
    return LiveService(table=table, zones=zones, stage=stage, store=open_store(None), step_s=0.05, **kw)


def _first_sensor(table: SensorTable, kind: str) -> str:
    return next(s.id for s in table.records if s.kind == kind)


def test_http_ingest_counts_bad_bodies_and_stores_every_accepted_detection(kyiv_short):
    svc = _service(kyiv_short)
    ac = _first_sensor(svc.table, "acoustic")
    now = time.time()
    good = [{"t": now + i * 0.01, "sensor": ac, "bearing_deg": 10.0 + i} for i in range(20)]
    bad_bodies = [b"not json", b"{}", json.dumps({"t": now, "sensor": "nope", "bearing_deg": 1}).encode(),
                  json.dumps({"t": now, "sensor": ac, "bearing_deg": 400}).encode(),
                  json.dumps({"t": now, "sensor": ac}).encode(),  # bearing required for acoustic
                  b'{"t": NaN, "sensor": "x"}', b"[" * 100_000, b"x" * 300_000]
    with TestClient(create_app(svc, insecure_demo=True), **LOCAL) as client:
        r = client.post("/api/v1/detections", content=json.dumps([*good, {"t": now, "sensor": "ghost",
                                                                         "bearing_deg": 3}]))
        assert r.status_code == 202
        assert r.json()["accepted"] == 20 and r.json()["rejected"] == 1
        for body in bad_bodies:
            r = client.post("/api/v1/detections", content=body)
            assert r.status_code in (413, 422), body[:40]
            assert "Traceback" not in r.text
        r = client.post("/api/v1/sightings", content=json.dumps(good[:1]))  # acoustic is not a sighting
        assert r.status_code == 422
        cit = _first_sensor(svc.table, "position")
        r = client.post("/api/v1/sightings", content=json.dumps(
            {"t": now, "sensor": cit, "lat": 50.4, "lon": 30.5, "pos_sigma_m": 500.0}))
        assert r.json()["accepted"] == 1
        deadline = time.time() + 5
        while svc.stats.n_stored < 21 and time.time() < deadline:
            time.sleep(0.05)
        status = client.get("/api/v1/status").json()
    assert svc.stats.n_in == 21 and svc.store.count_detections() == 21
    assert status["ingest"]["accepted"] == 21
    assert status["ingest"]["rejected_messages"] + status["ingest"]["rejected_detections"] >= len(bad_bodies) + 1


def test_openapi_lists_every_endpoint(kyiv_short):
    with TestClient(create_app(_service(kyiv_short), insecure_demo=True), **LOCAL) as client:
        spec = client.get("/openapi.json").json()
    for path in ("/api/v1/status", "/api/v1/sensors", "/api/v1/zones", "/api/v1/tracks", "/api/v1/alerts",
                 "/api/v1/history/near", "/api/v1/history/states", "/api/v1/detections", "/api/v1/sightings"):
        assert path in spec["paths"], path
    assert "requestBody" in spec["paths"]["/api/v1/detections"]["post"]
    assert "DetectionIn" in spec["components"]["schemas"]


def test_truth_replay_streams_the_truth_and_keeps_history(kyiv_short):
    truth = formats.read_truth(kyiv_short / "truth.jsonl")
    t_mid = truth[len(truth) // 2].t
    zone = read_zones(kyiv_short / "zones.geojson").ids[0]
    recorded = [Alert(zone=zone, start=t_mid - 100, end=t_mid + 100, level="warning", tracks=["D0001"])]
    # scenario time t_mid is "now": speed 10 so a few steps cover tens of scenario seconds
    stage = TruthReplayStage(truth, recorded, wall0=time.time(), t0=t_mid, speed=10.0)
    svc = _service(kyiv_short, stage=stage)
    with TestClient(create_app(svc, insecure_demo=True), **LOCAL) as client, \
            client.websocket_connect("ws://127.0.0.1/api/v1/ws") as ws:
        msgs = [json.loads(ws.receive_text()) for _ in range(12)]
        tracks = [m for m in msgs if m["type"] == "tracks" and m["t"] is not None and m["track"]]
        assert tracks, "no tracks on the websocket"
        m = tracks[-1]
        # independent check: the latest truth sample of each target at that scenario time
        ts = stage.scenario_time(m["t"])
        latest = {}
        for p in truth:
            if ts - 5 < p.t <= ts:
                latest[p.target] = p
        assert set(m["track"]) == set(latest)
        i = m["track"].index(sorted(latest)[0])
        p = latest[sorted(latest)[0]]
        assert m["lat"][i] == pytest.approx(p.lat, abs=1e-6) and m["lon"][i] == pytest.approx(p.lon, abs=1e-6)
        alerts = [m for m in msgs if m["type"] == "alerts" and m["active"]]
        assert alerts and alerts[-1]["active"][0]["zone"] == zone
        status = [m for m in msgs if m["type"] == "status"]
        assert status and status[-1]["feed_stalled"] is False
        deadline = time.monotonic() + 30  # track states are stored once a second (wait for some, however loaded)
        while True:
            t_now = time.time()
            states = client.get("/api/v1/history/states", params={"t0": t_now - 60, "t1": t_now}).json()
            if states or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert states and {s["track"] for s in states} <= set(stage.target.tolist())
        s0 = states[0]
        near = client.get("/api/v1/history/near", params={"lat": s0["lat"], "lon": s0["lon"], "radius_m": 2000,
                                                          "t0": t_now - 60, "t1": t_now}).json()
        assert s0["track"] in {n["track"] for n in near}
        assert all(n["closest_m"] <= 2000 for n in near)
        assert client.get("/api/v1/history/near", params={"lat": 95, "lon": 0, "t0": 0, "t1": 1}).status_code == 422
        assert client.get("/api/v1/history/states", params={"t0": 0, "t1": 1e9}).status_code == 422
        assert client.get("/api/v1/zones").json()["features"]
        assert client.get("/").status_code == 200 and "leaflet" in client.get("/").text
        assert client.get("/vendor/leaflet/leaflet.js").status_code == 200
    assert svc.store.alerts()[0].zone == zone


def test_real_tracker_through_the_service_matches_the_offline_pipeline(kyiv_short):
    """The live path (submit -> step_once -> sinks) gives exactly the offline pipeline's tracks, alerts and CAP
    events step by step, on the cell zones."""
    from skytrace.pipeline import Pipeline, PipelineConfig, paced_batches
    from skytrace.zones_grid import default_zones

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    zones = default_zones()  # the same zones in both modes: 27 oblasts + the 15 km cells
    # alerts every 10 s of the 1 s steps (the assessment of 3,346 zones at every step would make this test slow)
    offline = Pipeline(table, zones=zones, config=PipelineConfig(alert_every_s=10.0))
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones, alert_every_s=10.0),
                      store=open_store(None), step_s=0.05)
    n_events = 0
    n_file = 0
    n_steps = n_tracks_max = 0
    for t_step, batch in paced_batches(formats.iter_detection_batches(kyiv_short / "detections.jsonl", table), 1.0):
        n_file += len(batch)
        offline.push(batch)
        ref_res = offline.step(t_step)
        ref = ref_res.tracks
        svc.submit(batch.to_records(table))
        live = svc.step_once(t_step)[0]
        assert live["track"] == ref.track
        assert [(a.zone, a.start) for a in svc.alerts] == [(a.zone, a.start) for a in offline.alerts.active()]
        n_events += len(ref_res.events)
        np.testing.assert_allclose(live["lat"], ref.lat, atol=1e-6)
        n_steps += 1
        n_tracks_max = max(n_tracks_max, len(ref))
    assert n_steps > 1000 and n_tracks_max >= 1
    assert n_events > 0 and svc._cap_seq == n_events  # one CAP message per alert event (the feed keeps the last 1,000)
    # reports older than the tracker's lag at arrival are rejected at the edge (counted, not stored), the same
    # ones in both modes; every admitted report is stored
    rejected = svc.stage.stats["rejected_old"] + svc.stage.stats["rejected_future"]
    assert rejected == offline.stats["rejected_old"] + offline.stats["rejected_future"]
    assert svc.stats.n_in == n_file and svc.store.count_detections() == n_file - rejected
    assert svc.store.count_tracks() > 0


def test_serve_command_reports_user_errors_in_one_line(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "serve",
                          str(tmp_path / "missing")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "not a directory" in res.stderr
    (tmp_path / "sensors.json").write_text('{"sensors": [{"id": "a", "kind": "radar"}]}')
    with pytest.raises(Exception, match="required"):
        build_service(tmp_path)
    res = CliRunner().invoke(cli_app, ["replay", str(tmp_path)])
    assert res.exit_code != 0


def test_detection_payload_round_trips_through_msgspec():
    d = Detection(t=1.0, sensor="a", bearing_deg=2.0)
    assert msgspec.json.decode(msgspec.json.encode([d]), type=list[Detection]) == [d]


def test_live_demo_plays_a_simulation_through_the_live_path(kyiv_short, tmp_path):
    import shutil

    from skytrace.service.live_demo import run_live_demo

    run = tmp_path / "run"
    shutil.copytree(kyiv_short, run)
    table = formats.load_sensor_table(run / "sensors.json")
    n_file = sum(1 for _ in formats.iter_detections(run / "detections.jsonl", table))
    lines: list[str] = []
    summary = run_live_demo(run, speed=600.0, port=0, headless=True, echo=lines.append)
    assert "http://127.0.0.1:" in lines[0]
    # nothing lost, whatever the machine's load: every report is stored or counted as implausibly dated
    assert summary["detections_in"] == n_file
    assert summary["detections_stored"] + summary["rejected_at_edge"] == n_file


def test_accelerated_live_replay_tracks_under_a_virtual_clock(kyiv_short):
    """The demo's live path (scaled clock, in-process feed, service steps) driven by a virtual wall clock: the
    result cannot depend on how busy the machine is."""
    from skytrace.service.clock import ScaledClock
    from skytrace.service.replay import InProcessFeed

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    dets = list(formats.iter_detections(kyiv_short / "detections.jsonl", table))
    wall = [1000.0]
    t_first = min(d.t if d.t_arrival is None else d.t_arrival for d in dets)
    clock = ScaledClock(600.0, t_anchor=t_first, wall=lambda: wall[0])
    zones = read_zones(kyiv_short / "zones.geojson")
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                      step_s=0.25, clock=clock)
    feed = InProcessFeed(svc, dets)
    while not feed.done or clock() < feed.ta[-1] + 30:
        wall[0] += 0.25 / 600.0 * 4  # one service step = 1 s of scenario time
        feed.pump()
        svc.step_once()
    rejected = svc.stage.stats["rejected_old"] + svc.stage.stats["rejected_future"]
    assert svc.stats.n_in == len(dets) and svc.store.count_detections() == len(dets) - rejected
    assert svc.stats.n_tracks_max >= 1 and svc.store.count_tracks() > 0
    # under the virtual clock only reports that really arrived later than the tracker's lag are dropped as late
    lag = svc.stage.lag_s
    n_later_than_lag = sum(1 for d in dets if d.t_arrival is not None and d.t_arrival - d.t > lag)
    assert svc.stage.tracker.stats["late_dropped"] <= n_later_than_lag


def test_http_ingest_token_is_enforced(kyiv_short):
    svc = _service(kyiv_short)
    ac = _first_sensor(svc.table, "acoustic")
    body = json.dumps({"t": time.time(), "sensor": ac, "bearing_deg": 1.0})
    with TestClient(create_app(svc, ingest_token="s3cret-token-0123456789", insecure_demo=True),
                    **LOCAL) as client:
        assert client.post("/api/v1/detections", content=body).status_code == 401
        assert client.post("/api/v1/detections", content=body,
                           headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.post("/api/v1/detections", content=body,
                         headers={"Authorization": "Bearer s3cret-token-0123456789"})
        assert ok.status_code == 202 and ok.json()["accepted"] == 1
        assert client.get("/api/v1/status").status_code == 200
    assert svc.stats.n_in == 1


def test_a_failing_store_write_keeps_the_reports_for_the_next_step(kyiv_short):
    svc = _service(kyiv_short)
    ac = _first_sensor(svc.table, "acoustic")
    real_put = svc.store.put_detections
    calls = {"n": 0}

    def flaky(batch, table):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("database went away")
        return real_put(batch, table)

    svc.store.put_detections = flaky
    t0 = time.time()
    svc.submit([Detection(t=t0, sensor=ac, bearing_deg=1.0), Detection(t=t0 + 0.1, sensor=ac, bearing_deg=2.0)])
    svc.step_once(t0 + 1)  # the store fails: the step still runs (tracks, alerts), the reports wait
    assert svc.stats.n_stored == 0 and svc.stats.errors == 1 and svc.stage.stats["sink_errors"] == 1
    svc.submit([Detection(t=t0 + 1.5, sensor=ac, bearing_deg=3.0)])
    svc.step_once(t0 + 2)
    got = svc.store.detections(0, 1e12)
    assert [d.bearing_deg for d in got] == [1.0, 2.0, 3.0]
    assert svc.stats.n_stored == svc.stats.n_in == 3 and svc.stats.dropped == 0


def test_replay_over_http_stores_every_detection(kyiv_short):
    from skytrace.service.replay import replay_detections
    from skytrace.service.runner import ServerThread

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    dets = list(formats.iter_detections(kyiv_short / "detections.jsonl", table))
    ta = [d.t if d.t_arrival is None else d.t_arrival for d in dets]
    expected = sum(1 for a in ta if a - ta[0] <= 90.0)
    svc = _service(kyiv_short, stage=pipeline_stage(table, None))
    with ServerThread(create_app(svc, insecure_demo=True)) as server:
        res = replay_detections(kyiv_short, speed=90.0, http=server.url, limit_s=90.0)
        deadline = time.time() + 10
        while svc.stats.n_stored < expected and time.time() < deadline:
            time.sleep(0.05)
    assert res["published"] == expected == svc.store.count_detections()


def test_scaled_clock_waits_for_the_feed_before_stepping_the_pipeline(kyiv_short):
    """Regression: stepping on the wall clock before the first report put the tracker hours ahead of a recorded
    feed, and every report of an accelerated replay was dropped as late."""
    from skytrace.service.clock import ScaledClock

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    stage = pipeline_stage(table, None)
    svc = _service(kyiv_short, stage=stage, clock=ScaledClock(30.0))
    msgs = svc.step_once()
    assert [m["type"] for m in msgs] == ["status"]  # nothing stepped yet
    dets = list(formats.iter_detections(kyiv_short / "detections.jsonl", table))[:200]
    svc.submit(dets)
    assert svc.clock.anchored
    for _ in range(3):
        svc.step_once()
    assert stage.tracker.stats["late_dropped"] == 0
    assert svc.status()["tracker"]["detections_in"] == 200


def test_a_failing_store_loses_no_alert(kyiv_short):
    """Alerts are published (CAP feed, websocket) before the store is written: a dead store loses none."""
    from skytrace.alerting import AlertEvent
    from skytrace.pipeline import Pipeline

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    zones = read_zones(kyiv_short / "zones.geojson")
    zone = zones.ids[0]

    class OneAlert:
        def __init__(self):
            self.raised = False

        def update(self, t, tracks, detections):
            if self.raised:
                return []
            self.raised = True
            return [AlertEvent(t, zone, "raise", "warning", ["T1"], 0.9, 300.0, "test", "a-1", t)]

        def active(self):
            return [Alert(zone=zone, start=0.0, end=None, level="warning", tracks=["T1"])] if self.raised else []

        def close(self, t):
            return []

    svc = LiveService(table=table, zones=zones, stage=Pipeline(table, zones, policy=OneAlert()),
                      store=open_store(None), step_s=0.05)

    def broken(*args, **kw):
        raise OSError("database went away")

    svc.store.put_tracks = broken
    svc.store.put_alerts = broken
    svc.store.put_detections = broken
    ac = _first_sensor(table, "acoustic")
    t0 = time.time()
    svc.submit([Detection(t=t0, sensor=ac, bearing_deg=1.0)])
    msgs = svc.step_once(t0 + 1)
    assert len(svc.cap_messages) == 1 and b"<alert" in svc.cap_messages[0][4]
    assert [m["active"][0]["zone"] for m in msgs if m["type"] == "alerts"] == [zone]
    # two failed writes: the alert period (written ahead of publication) and the store sink; published anyway
    assert svc.stats.errors == 2 and svc.stats.n_stored == 0  # the report waits for the store to come back


def test_the_demo_plays_a_night_while_it_is_being_written(kyiv_short, tmp_path):
    """``skytrace demo`` serves the map before the simulation has finished: detections.jsonl is read as it grows
    (cut mid-line here), the clock starts at the first report, and every report reaches the service exactly
    once, in arrival order, as if the file had been complete from the start."""
    from skytrace.service.clock import ScaledClock
    from skytrace.service.live_demo import DetectionTail
    from skytrace.service.replay import InProcessFeed

    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    data = (kyiv_short / "detections.jsonl").read_bytes()
    growing = tmp_path / "detections.jsonl"
    tail = DetectionTail(growing, table)
    assert tail.read() == []  # not written yet
    wall = [1000.0]
    clock = ScaledClock(600.0, wall=lambda: wall[0])  # anchored by the feed at the first report
    svc = LiveService(table=table, zones=None, stage=pipeline_stage(table, None), store=open_store(None),
                      step_s=0.25, clock=clock)
    feed = InProcessFeed(svc, [], complete=False)
    assert feed.pump() == 0 and not clock.anchored and not feed.done
    cuts = np.linspace(0, len(data), 7).astype(int)  # six pieces, each ending mid-line
    submitted = []
    orig_submit = svc.submit
    svc.submit = lambda dets: (submitted.extend(dets), orig_submit(dets))
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        with growing.open("ab") as fh:
            fh.write(data[a:b])
        last = i == len(cuts) - 2
        feed.extend(tail.read(final=last), complete=last)
        for _ in range(40):  # the clock moves on while the file grows
            wall[0] += 0.25 / 600.0 * 4
            feed.pump()
            svc.step_once()
    while not feed.done:
        wall[0] += 0.25 / 600.0 * 4
        feed.pump()
    expected = list(formats.iter_detections(kyiv_short / "detections.jsonl", table))
    assert tail.bad == 0 and len(submitted) == len(expected) == svc.stats.n_in
    ta = [d.t if d.t_arrival is None else d.t_arrival for d in submitted]
    assert ta == sorted(ta) and clock.t_anchor == min(ta)
    assert sorted(map(msgspec.json.encode, submitted)) == sorted(map(msgspec.json.encode, expected))
