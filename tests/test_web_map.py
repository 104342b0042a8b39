"""The operator's map in headless Debian chromium: base map, drones as operators read them, alerts people can act
on, honest state, offline API reference; desktop and phone viewports, no request leaving 127.0.0.1.

Screenshots of the key views are written to test-artifacts/ (copies of them are committed in docs/img)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from skytrace.io import formats
from skytrace.model import Alert
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import TruthReplayStage
from skytrace.store import open_store
from test_web import ARTIFACTS, VIEWPORTS, _no_external_requests, browser, map_do  # noqa: F401  (fixture)

KYIV = ZoneInfo("Europe/Kyiv")


def _cell_at(zones, lat: float, lon: float) -> str:
    from shapely.geometry import Point

    pt = Point(lon, lat)
    return next(z.id for z in zones if z.parent and z.geometry.contains(pt))


@pytest.fixture(scope="module")
def alerted_service(kyiv_short):
    """A truth replay of kyiv-night on the default zones (27 oblasts + 15 km cells) with three cells in alert:
    one imminent near Brovary, two warnings near Kyiv and Chernihiv (with probability, ETA, certainty, reason)."""
    from skytrace.zones_grid import default_zones

    zones = default_zones()
    truth = formats.read_truth(kyiv_short / "truth.jsonl")
    t_mid = truth[len(truth) // 2].t
    imm, kyiv, cher = _cell_at(zones, 50.51, 30.79), _cell_at(zones, 50.45, 30.52), _cell_at(zones, 51.49, 31.29)
    recorded = [Alert(zone=kyiv, start=t_mid - 600, end=None, level="warning", tracks=["D0001", "D0002"]),
                Alert(zone=imm, start=t_mid - 60, end=None, level="imminent", tracks=["D0003"]),
                Alert(zone=cher, start=t_mid - 1200, end=None, level="warning", tracks=["D0004"])]
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    wall0 = time.time()
    stage = TruthReplayStage(truth, recorded, wall0=wall0, t0=t_mid, speed=1.0, hold_s=3600.0)
    # a still picture (the service's clock does not run): nothing a test clicks on moves, no result depends on
    # when a step happens to fall
    svc = LiveService(table=table, zones=zones, stage=stage, store=open_store(None), step_s=0.25,
                      clock=lambda: wall0)
    svc.alert_detail = {
        imm: {"probability": 0.93, "eta_s": 240.0, "certainty": "Likely", "reason": "track D0003 heading here"},
        kyiv: {"probability": 0.71, "eta_s": 900.0, "certainty": "Possible", "reason": "two tracks within 40 km"},
        cher: {"probability": 0.55, "eta_s": None, "certainty": "Possible", "reason": "one track within 60 km"}}
    with ServerThread(create_app(svc)) as server:
        yield server, svc, {"imminent": imm, "kyiv": kyiv, "chernihiv": cher}, zones


def _open(browser, server, **viewport):  # noqa: F811
    page = browser.new_page(**viewport)
    outside = _no_external_requests(page, server.url)
    page.goto(server.url + "/")
    # the sensors too: when they arrive the map fits their area once, which would move a view a test has set
    page.wait_for_function("window.skytrace && window.skytrace.zonesLoaded > 0 && window.skytrace.placesLoaded > 0 "
                           "&& window.skytrace.sensorsLoaded > 0", timeout=30_000)
    page.wait_for_function("window.skytrace.tracks.size > 0 && window.skytrace.activeAlerts "
                           "&& window.skytrace.activeAlerts.length === 3", timeout=30_000)
    return page, outside


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_alerts_are_named_sorted_distinct_and_explain_themselves(alerted_service, browser, screen):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page, outside = _open(browser, server, **VIEWPORTS[screen])
    shot = "" if screen == "desktop" else f"-{screen}"
    st = "window.skytrace"
    # the zones are the offline ones (oblasts + cells), yet only alerted cells are drawn when zoomed out
    assert page.evaluate(f"{st}.zonesLoaded") == len(zones) > 3000
    assert page.evaluate(f"{st}.cellsDrawn") < 200
    # sorted by urgency: the imminent one first, then warnings by ETA (900 s before none)
    order = page.eval_on_selector_all("#alerts li[data-zone]", "els => els.map(e => e.dataset.zone)")
    assert order == [ids["imminent"], ids["kyiv"], ids["chernihiv"]]
    # names, not codes: a cell is named by its biggest nearby town and its oblast
    texts = page.eval_on_selector_all("#alerts li[data-zone] b", "els => els.map(e => e.textContent)")
    assert texts[0] == "Brovary area, Kyiv Oblast" and texts[1].startswith("Kyiv area")
    assert not any(":" in t or t.startswith("UA-") for t in texts)
    # warning vs imminent: different colour AND pattern (dashed vs solid border, hatched background)
    style = page.evaluate("""() => [...document.querySelectorAll('#alerts li[data-zone]')].map(e => {
        const c = getComputedStyle(e); return [c.borderLeftStyle, c.borderLeftColor, c.backgroundImage]; })""")
    assert style[0][0] == "solid" and style[1][0] == "dashed" and style[0][1] != style[1][1]
    assert "gradient" in style[0][2] and style[1][2] == "none"
    # local time (Europe/Kyiv) with UTC on hover
    a_imm = next(a for a in svc.alerts if a.zone == ids["imminent"])
    local = datetime.fromtimestamp(a_imm.start, KYIV).strftime("%H:%M:%S")
    since = page.locator(f"#alerts li[data-zone='{ids['imminent']}'] .meta span")
    assert f"since {local}" in since.inner_text()
    assert since.get_attribute("title").endswith("UTC")
    assert "ETA in 4 min" in page.inner_text(f"#alerts li[data-zone='{ids['imminent']}']")
    # roll-up by oblast, visible zoomed out
    rollup = page.inner_text("#rollup")
    assert "Kyiv Oblast: 1 zone, 1 imminent" in rollup and "Chernihiv: 1 zone" in rollup
    assert "Kyiv City: 1 zone" in rollup
    page.screenshot(path=str(ARTIFACTS / f"map-overview{shot}.png"))
    # click an alert: the map zooms to the zone and says why
    zoom0 = page.evaluate(f"{st}.map.getZoom()")
    page.click(f"#alerts li[data-zone='{ids['imminent']}']")
    page.wait_for_selector(".reason", timeout=5_000)
    reason = page.inner_text(".reason")
    for part in ("Brovary area", "IMMINENT", "93%", "Likely", "D0003", "track D0003 heading here"):
        assert part in reason
    page.wait_for_function(f"{st}.map.getZoom() >= 9", timeout=5_000)
    assert page.evaluate(f"{st}.map.getZoom()") > zoom0
    centre = page.evaluate(f"(() => {{ const c = {st}.map.getCenter(); return [c.lat, c.lng]; }})()")
    assert abs(centre[0] - 50.51) < 0.2 and abs(centre[1] - 30.79) < 0.3
    page.wait_for_function(f"{st}.cellsDrawn > 20", timeout=5_000)  # zoomed in: the grid around is drawn
    page.screenshot(path=str(ARTIFACTS / f"map-alert-reason{shot}.png"))
    page.close()
    assert outside == []


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_drones_are_labelled_on_the_map_and_layers_toggle(alerted_service, browser, screen):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page, outside = _open(browser, server, **VIEWPORTS[screen])
    shot = "" if screen == "desktop" else f"-{screen}"
    st = "window.skytrace"
    # zoom to the drones: arrow, label (id, speed, altitude) drawn on the map itself, not on hover
    map_do(page, f"const ts = [...{st}.tracks.values()]; "
                 "m.fitBounds(L.latLngBounds(ts.map(t => [t.lat, t.lon])).pad(0.1), {animate: false});")
    page.wait_for_function(f"{st}.labelsDrawn > 0", timeout=5_000)
    assert page.evaluate(f"{st}.placesDrawn") > 0
    # label hierarchy by zoom: the whole country shows only its big towns, a close view its villages too
    view0 = map_do(page, "const c = m.getCenter(); return [c.lat, c.lng, m.getZoom()];")
    smallest = {}
    for zoom in (6, 11):
        assert map_do(page, f"m.setView([50.45, 30.52], {zoom}, {{animate: false}}); return m.getZoom();") == zoom
        smallest[zoom] = page.evaluate(f"{st}.placesSmallestPop")
    assert smallest[6] is not None and smallest[11] is not None and smallest[11] < smallest[6] / 5, smallest
    map_do(page, f"m.setView([{view0[0]}, {view0[1]}], {view0[2]}, {{animate: false}});")
    tr = page.evaluate(f"(() => {{ const t = [...{st}.tracks.values()][0]; "
                       "return {id: t.id, status: t.status, sigma: t.sigma, speed: t.speed}; })()")
    assert tr["status"] in ("confirmed", "coasting", "tentative") and tr["speed"] > 0
    # a drone in an alert carries its most urgent threatened zone (drawn as a third label line)
    assert page.evaluate(f"{st}.threat.get('D0003').zone") == ids["imminent"]
    page.screenshot(path=str(ARTIFACTS / f"map-drones{shot}.png"))
    # labels can be switched off, sensors and places hidden
    page.uncheck("#layer-labels")
    page.wait_for_function(f"{st}.labelsDrawn === 0", timeout=5_000)
    page.check("#layer-labels")
    n_layers = page.evaluate(f"(() => {{ let n = 0; {st}.map.eachLayer(() => n++); return n; }})()")
    page.uncheck("#layer-sensors")
    n_after = page.evaluate(f"(() => {{ let n = 0; {st}.map.eachLayer(() => n++); return n; }})()")
    assert n_layers - n_after > 100  # ~400 sensor markers left the map
    page.uncheck("#layer-places")
    assert page.evaluate("document.querySelector('.leaflet-places-pane canvas') === null")
    # a click on a drone gives its details (the drone is first brought to the middle of the map's upper half: near
    # an edge it may sit under the alert panel, the phone's bottom sheet or the top bar, which take the click)
    page.check("#layer-places")
    pt = map_do(page, f"const t = {st}.tracks.get('{tr['id']}'); "
                      "m.setView([t.lat, t.lon], m.getZoom(), {animate: false}); "
                      "m.panBy([0, m.getSize().y / 4], {animate: false}); "
                      "const p = m.latLngToContainerPoint([t.lat, t.lon]); "
                      "const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];")
    if screen == "phone":
        page.touchscreen.tap(pt[0], pt[1])
    else:
        page.mouse.click(pt[0], pt[1])
    page.wait_for_selector(".pop", timeout=5_000)
    assert "km/h heading" in page.inner_text(".pop")
    page.close()
    assert outside == []


def test_phone_shows_labels_and_the_alert_sheet(alerted_service, browser):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page, outside = _open(browser, server, **VIEWPORTS["phone"])
    box = page.locator("#panel").bounding_box()
    assert box is not None and box["width"] <= 390 and box["y"] > 844 / 2
    assert page.locator("#alerts li.imminent").count() == 1
    page.wait_for_function("window.skytrace.placesDrawn > 0", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "map-phone-alerts.png"))
    page.close()
    assert outside == []


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_health_badges_and_a_new_alert_flashes(alerted_service, browser, screen):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page, outside = _open(browser, server, **VIEWPORTS[screen])
    page.wait_for_function("document.getElementById('h-link').textContent.startsWith('link ')", timeout=5_000)
    assert page.inner_text("#h-data").startswith("data ")
    assert page.inner_text("#h-lag").startswith("step ")
    # a new zone in alert: flash (and a beep unless muted)
    n0 = page.evaluate("window.skytrace.newAlerts")
    msg = svc.alerts_message(svc.clock())
    msg["active"] = msg["active"] + [{"zone": "UA-PL", "start": svc.clock(), "end": None, "level": "warning",
                                      "tracks": ["D0009"]}]
    svc._loop.call_soon_threadsafe(svc.publish, [msg])
    page.wait_for_function(f"window.skytrace.newAlerts > {n0}", timeout=10_000)
    assert "flash" in page.get_attribute("#panel", "class")
    for badge in ("#h-link", "#h-data", "#h-lag"):  # on the phone too: in view, not clipped away
        box = page.locator(badge).bounding_box()
        size = page.viewport_size
        assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, badge
    page.close()
    assert outside == []


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_api_reference_and_cap_links_work_offline(alerted_service, browser, screen):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page = browser.new_page(**VIEWPORTS[screen])
    outside = _no_external_requests(page, server.url)
    page.goto(server.url + "/docs")
    page.wait_for_function("window.referenceReady > 5", timeout=10_000)
    text = page.inner_text("body")
    assert "/api/v1/history/near" in text and "radius_m" in text and "DetectionIn" in text
    page.close()
    assert outside == []
    # CAP index links: "url" resolves against the index's own URL, "href" is absolute
    from skytrace.alerting.engine import AlertEvent

    ev = AlertEvent(t=svc.clock(), zone=ids["imminent"], kind="raise", level="imminent", tracks=["D0003"],
                    probability=0.9, eta_s=240.0, reason="test", alert_id="a1", start=svc.clock())
    svc._cap(ev)
    index_url = server.url + "/api/v1/cap"
    index = json.loads(urllib.request.urlopen(index_url, timeout=10).read())
    assert index
    for m in index[:2]:
        for url in (urllib.parse.urljoin(index_url, m["url"]), m["href"]):
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.headers["content-type"].startswith("application/cap+xml")


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_ukrainian_interface(alerted_service, browser, screen):  # noqa: F811
    server, svc, ids, zones = alerted_service
    page = browser.new_page(**VIEWPORTS[screen])
    outside = _no_external_requests(page, server.url)
    page.goto(server.url + "/?lang=uk")
    page.wait_for_function("window.skytrace && window.skytrace.activeAlerts "
                           "&& window.skytrace.activeAlerts.length === 3 && window.skytrace.placesLoaded > 0",
                           timeout=30_000)
    assert page.evaluate("document.documentElement.lang") == "uk"
    assert "Активні тривоги" in page.inner_text("#panel")
    first = page.inner_text(f"#alerts li[data-zone='{ids['imminent']}']")
    assert "НЕГАЙНО" in first and "р-н Brovary" in first and "прибуття за 4 хв" in first
    page.wait_for_function("document.getElementById('feed').textContent === 'НАЖИВО'", timeout=10_000)
    page.close()
    assert outside == []
