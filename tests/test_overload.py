"""Overload: bounded queues with a shedding policy (least valuable first, never radar), counted in the status."""

from __future__ import annotations

import time

import numpy as np
import pytest

from skytrace.batch import SensorTable
from skytrace.model import Detection, Sensor
from skytrace.service.shedding import thin_reports, water_fill_quota


def _table() -> SensorTable:
    sensors = [Sensor(id=f"ac-{i}", kind="acoustic", lat=50.0 + i * 0.01, lon=30.0, alt_m=160.0,
                      bearing_sigma_deg=2.5, max_range_m=3000.0) for i in range(4)]
    sensors += [Sensor(id="rad-1", kind="radar", lat=50.0, lon=30.1, alt_m=175.0, bearing_sigma_deg=0.8,
                       elevation_sigma_deg=1.0, range_sigma_m=30.0, max_range_m=40_000.0),
                Sensor(id="sight", kind="position")]
    return SensorTable.from_sensors(sensors)


def test_water_fill_quota_is_the_largest_fair_share():
    counts = np.array([1, 5, 100, 1000])
    for budget in (0, 3, 4, 50, 200, 1106, 5000):
        q = water_fill_quota(counts, budget)
        assert np.minimum(counts, q).sum() <= budget
        if q < counts.max():  # one more would not fit
            assert np.minimum(counts, q + 1).sum() > budget


def test_thinning_sheds_the_chattiest_acoustic_nodes_first_and_never_radar():
    table = _table()
    t = time.time()
    dets = [Detection(t=t + i * 1e-3, sensor="ac-0", bearing_deg=float(i % 360)) for i in range(900)]
    dets += [Detection(t=t, sensor="ac-1", bearing_deg=1.0) for _ in range(10)]  # a quiet node: keeps all
    dets += [Detection(t=t, sensor="rad-1", bearing_deg=1.0, elevation_deg=1.0, range_m=5000.0)] * 200
    dets += [Detection(t=t, sensor="sight", lat=50.0, lon=30.0, pos_sigma_m=100.0)] * 50
    kept, shed = thin_reports(dets, table, keep_n=500)
    by = {s: sum(d.sensor == s for d in kept) for s in ("ac-0", "ac-1", "rad-1", "sight")}
    assert by["rad-1"] == 200 and by["sight"] == 50 and by["ac-1"] == 10
    assert len(kept) == 500 and shed == {"acoustic": 900 + 10 - by["ac-0"] - 10}
    kept_ac0 = [d.bearing_deg for d in kept if d.sensor == "ac-0"]
    assert kept_ac0 == [float(i % 360) for i in range(900 - len(kept_ac0), 900)]  # the newest, in order
    # radar alone over the budget: sightings go next, radar never
    kept, shed = thin_reports(dets, table, keep_n=150)
    assert sum(d.sensor == "rad-1" for d in kept) == 200 and shed["position"] == 50


def test_the_service_queue_is_bounded_and_counts_what_it_shed():
    from skytrace.pipeline import Pipeline
    from skytrace.service.core import LiveService
    from skytrace.store import open_store

    table = _table()
    svc = LiveService(table=table, zones=None, stage=Pipeline(table), store=open_store(None), step_s=0.05,
                      max_queued_reports=1000)
    t = time.time()
    for k in range(50):
        svc.submit([Detection(t=t, sensor=f"ac-{k % 4}", bearing_deg=float(i)) for i in range(100)])
        svc.submit([Detection(t=t, sensor="rad-1", bearing_deg=1.0, elevation_deg=1.0, range_m=5000.0)])
    assert len(svc._pending) <= 1000
    st = svc.status()
    assert st["shed"]["acoustic"] == 5000 + 50 - len(svc._pending)
    assert sum(d.sensor == "rad-1" for d in svc._pending) == 50


def test_a_step_over_its_time_budget_sheds_bearings_of_the_busiest_node_and_never_radar():
    """Time-budgeted admission: a step takes only the reports it can process in ``step_load_max`` of the wall
    time, at the cost per report measured on earlier large steps; the rest are shed (counted), radar never."""
    from skytrace.pipeline import Pipeline
    from skytrace.service.core import LiveService
    from skytrace.store import open_store

    table = _table()
    t = time.time()

    def burst() -> list[Detection]:
        dets = [Detection(t=t, sensor="ac-0", bearing_deg=float(i % 360)) for i in range(1000)]
        dets += [Detection(t=t, sensor="ac-1", bearing_deg=5.0) for _ in range(10)]
        dets += [Detection(t=t, sensor="rad-1", bearing_deg=1.0, elevation_deg=1.0, range_m=5000.0)] * 100
        return dets

    for load_max, shed_expected in ((0.5, 1110 - LiveService.MIN_STEP_BUDGET), (0.0, 0)):
        svc = LiveService(table=table, zones=None, stage=Pipeline(table), store=open_store(None), step_s=0.25,
                          step_load_max=load_max)
        # a large step measures what a report costs
        svc.submit([Detection(t=t, sensor=f"ac-{k % 4}", bearing_deg=float(k % 360)) for k in range(400)])
        svc.step_once(t + 0.1)
        assert svc._cost_s_per_report is not None and svc._cost_s_per_report > 0
        # a slow machine: 25 ms a report, so a step may take 0.5 * 0.25 s / 25 ms = 5 (the floor: 200) of them
        svc._cost_s_per_report = 25e-3
        svc.submit(burst())
        svc.step_once(t + 0.35)
        st = svc.status()
        assert st["shed_for_time"] == shed_expected
        assert st["shed"].get("acoustic", 0) == shed_expected and "radar" not in st["shed"]
        assert svc.stage.stats["admitted"] == 400 + 1110 - shed_expected  # the quiet node and the radar: all kept
        assert svc.store.count_detections() == 400 + 1110  # shed from tracking, still stored (no inbox here)


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")
def test_websocket_clients_that_stop_reading_give_their_slot_to_a_new_one(monkeypatch):
    import json

    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    from skytrace.security.fuzzing import ZONES_SEED
    from skytrace.security.fuzzing import _table as small_table
    from skytrace.service import app as app_module
    from skytrace.service.core import LiveService
    from skytrace.service.runner import ServerThread
    from skytrace.service.stages import pipeline_stage
    from skytrace.store import open_store
    from skytrace.zones import zones_from_geojson

    monkeypatch.setattr(app_module, "MAX_WS_CLIENTS", 3)
    table = small_table()
    zones = zones_from_geojson(json.loads(ZONES_SEED))
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                      step_s=0.05)
    with ServerThread(app_module.create_app(svc, durable=False)) as server:
        url = server.url.replace("http", "ws") + "/api/v1/ws"
        # connect, then never read (and send no pings: a client whose own pings time out would leave by itself)
        # with a small receive buffer fixed before connecting (no TCP auto-tuning to tens of MB)
        def idle_client():
            import socket

            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            return connect(url, sock=sock, max_queue=1, open_timeout=30, ping_interval=None)

        idle = [idle_client() for _ in range(3)]

        def status() -> dict:
            import urllib.request

            with urllib.request.urlopen(server.url + "/api/v1/status", timeout=10) as r:
                return json.loads(r.read())

        assert _wait(lambda: status()["websocket"]["clients"] == 3, 30)
        with pytest.raises(InvalidStatus):  # full, and every client keeps up: refused
            connect(url, open_timeout=30)
        # incompressible padding: permessage-deflate would shrink "xxx..." a thousandfold and nothing would stall
        import random

        big = {"type": "status", "pad": random.Random(1).randbytes(480_000).hex()}  # < 1 MiB: a client max_size
        for _ in range(80):  # more than the socket buffers hold: the idle clients' sends stall
            svc._loop.call_soon_threadsafe(svc.publish, [big])

        def newcomer_gets_in():
            try:
                c = connect(url, open_timeout=30)
            except (InvalidStatus, WebSocketException, OSError):
                return None
            try:
                return c if json.loads(c.recv(timeout=30))["type"] in ("tracks", "alerts", "status") else None
            except (WebSocketException, TimeoutError):
                return None

        got: list = []
        assert _wait(lambda: got.append(newcomer_gets_in()) or got[-1] is not None, 120)
        st = status()["websocket"]
        assert st["evicted_slow"] >= 1 and st["refused"] >= 1
        got[-1].close()
        for c in idle:
            c.close()


def _wait(cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return bool(cond())


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_history_queries_are_bounded_before_they_read_and_page_by_time(backend, request, tmp_path):
    from fastapi.testclient import TestClient

    from skytrace.batch import TrackSnapshot
    from skytrace.pipeline import Pipeline
    from skytrace.service.app import create_app
    from skytrace.service.core import LiveService
    from skytrace.store import open_store

    url = str(tmp_path / "h.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    rng = np.random.default_rng(7)
    t0 = 1_795_000_000.0
    n_tracks = 50
    for k in range(60):  # 60 instants x 50 tracks scattered over ~100 km
        store.put_tracks(TrackSnapshot(
            t=t0 + k, track=[f"T{i}" for i in range(n_tracks)], status=["confirmed"] * n_tracks,
            lat=50.4 + rng.uniform(-0.5, 0.5, n_tracks), lon=30.5 + rng.uniform(-0.7, 0.7, n_tracks),
            alt_m=np.full(n_tracks, 500.0), ve=np.zeros(n_tracks), vn=np.zeros(n_tracks), vu=np.zeros(n_tracks),
            pos_sigma_m=np.full(n_tracks, 100.0)))
    table = _table()
    svc = LiveService(table=table, zones=None, stage=Pipeline(table), store=store, step_s=0.05)
    with TestClient(create_app(svc, durable=False), base_url="http://127.0.0.1") as client:
        q = {"lat": 50.4, "lon": 30.5, "radius_m": 500_000, "t0": t0, "t1": t0 + 3600}
        full = client.get("/api/v1/history/near", params=q)
        assert full.status_code == 200 and full.headers["X-Truncated"] == "false" and len(full.json()) == n_tracks
        capped = client.get("/api/v1/history/near", params={**q, "max_states": 100})
        assert capped.headers["X-Truncated"] == "true"
        assert client.get("/api/v1/history/near", params={**q, "max_states": 10**9}).status_code == 422
        # the timeline pages by time: following X-Next-T0 visits every row (those at a page boundary repeat)
        seen, start, pages = set(), t0, 0
        while True:
            r = client.get("/api/v1/history/states", params={"t0": start, "t1": t0 + 3600, "limit": 700})
            assert r.status_code == 200
            seen |= {(row["t"], row["track"]) for row in r.json()}
            pages += 1
            if "X-Next-T0" not in r.headers:
                break
            start = float(r.headers["X-Next-T0"])
        assert len(seen) == 60 * n_tracks and pages >= 5
    store.close()
