"""The operator's map on a fixed, deterministic picture (no live clock, nothing moves): track classes drawn apart,
the sensor coverage layer, a screenshot compared pixel by pixel with a committed reference, and history playback
scrubbed back to the middle of a recorded wave. Real chromium; no request may leave 127.0.0.1.

Regenerate the reference image after an intended change of the map's look:
``SKYTRACE_UPDATE_REFERENCE=1 pytest tests/test_web_map_views.py -k screenshot`` (then look at it, and commit it).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from skytrace.batch import SensorTable, TrackSnapshot
from skytrace.io import formats
from skytrace.model import Alert, Detection, Sensor
from skytrace.pipeline import Pipeline, PipelineConfig
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import TruthReplayStage
from skytrace.store import open_store
from test_web import ARTIFACTS, VIEWPORTS, _no_external_requests, browser, kyiv_wave, map_do  # noqa: F401

REFERENCE = Path(__file__).parent / "data" / "map-reference.png"
T0 = 1_780_000_000.0  # the picture's fixed instant (2026-05-28 20:26:40 UTC)
ST = "window.skytrace"


class FixedTracks:
    """A track source that reports the same picture at every step (the screenshot must not depend on time)."""

    lag_s = 0.0

    def __init__(self, snap: TrackSnapshot):
        self.snap, self.stats = snap, {}

    def ingest(self, batch) -> None:
        return None

    def advance(self, t_now: float) -> TrackSnapshot:
        return dataclasses.replace(self.snap, t=t_now)


class FixedAlerts:
    """An alert policy whose active alerts never change."""

    def __init__(self, alerts: list[Alert]):
        self.alerts = alerts

    def update(self, t, tracks, detections=None) -> list:
        return []

    def active(self) -> list[Alert]:
        return list(self.alerts)

    def close(self, t) -> list:
        return []


class FixedPicture(Pipeline):
    def __init__(self, snap: TrackSnapshot, alerts: list[Alert]):
        super().__init__(SensorTable.from_sensors([]), tracker=FixedTracks(snap), policy=FixedAlerts(alerts),
                         config=PipelineConfig(alert_every_s=0.0))

    def last_data(self, t_now: float) -> float:
        return t_now  # the feed is fresh: the badge says LIVE


def _cell_at(zones, lat: float, lon: float) -> str:
    from shapely.geometry import Point

    pt = Point(lon, lat)
    return next(z.id for z in zones if z.parent and z.geometry.contains(pt))


@pytest.fixture(scope="module")
def fixed_service():
    """Near Kyiv at T0: two possible drones (one coasting), an ADS-B airliner and a Remote ID drone; 6 acoustic
    nodes (audible range 6 km) and a radar (40 km); an imminent cell at Brovary and a warning cell in Kyiv."""
    from skytrace.zones_grid import default_zones

    zones = default_zones()
    sensors = [Sensor(id=f"ac{i}", kind="acoustic", lat=50.35 + 0.06 * (i % 3), lon=30.45 + 0.12 * (i // 3),
                      alt_m=150.0, bearing_sigma_deg=3.0, max_range_m=6000.0, sound_speed_mps=343.0)
               for i in range(6)]
    sensors += [Sensor(id="radar1", kind="radar", lat=50.60, lon=30.95, alt_m=160.0, bearing_sigma_deg=0.5,
                       range_sigma_m=50.0, max_range_m=40_000.0),
                Sensor(id="adsb:4b1805", kind="position", trusted=True),
                Sensor(id="rid:UA-RID-0042", kind="position", trusted=True)]
    table = SensorTable.from_sensors(sensors)
    snap = TrackSnapshot(
        t=T0, track=["T0001", "T0002", "T0003", "T0004"], status=["confirmed", "coasting", "confirmed", "confirmed"],
        lat=np.array([50.50, 50.36, 50.44, 50.40]), lon=np.array([30.86, 30.75, 30.50, 30.66]),
        alt_m=np.array([120.0, 200.0, 3500.0, 90.0]), ve=np.array([-45.0, -30.0, 150.0, 8.0]),
        vn=np.array([-10.0, 25.0, 60.0, 6.0]), vu=np.zeros(4), pos_sigma_m=np.array([250.0, 900.0, 30.0, 20.0]),
        sensors=[["ac0", "ac1"], ["ac3"], ["adsb:4b1805"], ["rid:UA-RID-0042"]])
    imm, kyiv = _cell_at(zones, 50.51, 30.79), _cell_at(zones, 50.45, 30.52)
    alerts = [Alert(zone=imm, start=T0 - 240, end=None, level="imminent", tracks=["T0001"]),
              Alert(zone=kyiv, start=T0 - 900, end=None, level="warning", tracks=["T0001", "T0002"])]
    svc = LiveService(table=table, zones=zones, stage=FixedPicture(snap, alerts), store=open_store(None),
                      step_s=0.25, clock=lambda: T0)
    svc.alert_detail = {imm: {"probability": 0.9, "eta_s": 180.0, "certainty": "Likely", "reason": "T0001 inbound"},
                        kyiv: {"probability": 0.6, "eta_s": 720.0, "certainty": "Possible", "reason": "two tracks"}}
    # the cooperative targets identify themselves in their reports (what ADS-B and Remote ID decoders emit)
    svc.submit([Detection(t=T0 - 1, sensor="adsb:4b1805", lat=50.44, lon=30.50, alt_m=3500.0, pos_sigma_m=30.0,
                          cls="manned", target_id="icao:4b1805"),
                Detection(t=T0 - 1, sensor="rid:UA-RID-0042", lat=50.40, lon=30.66, alt_m=90.0, pos_sigma_m=20.0,
                          cls="cooperative-uav", target_id="rid:UA-RID-0042")])
    with ServerThread(create_app(svc)) as server:
        yield server, svc


FIXED_SCENE_READY = (f"{ST} && {ST}.zonesLoaded > 0 && {ST}.placesLoaded > 0 && {ST}.sensorsLoaded > 0 "
                     f"&& {ST}.riversLoaded > 0 "
                     f"&& {ST}.tracks.size === 4 && {ST}.activeAlerts && {ST}.activeAlerts.length === 2")


def _open(browser, server, ready: str = FIXED_SCENE_READY, **kw):  # noqa: F811
    """A new page on the map, every request outside the server recorded; returns once ``ready`` (JS) holds."""
    page = browser.new_page(**kw)
    outside = _no_external_requests(page, server.url)
    page.goto(server.url + "/")
    page.wait_for_function(ready, timeout=30_000)
    return page, outside


def _settle(page, lat: float, lon: float, zoom: float) -> None:
    """A fixed view, then two animation frames: every overlay has redrawn for it."""
    map_do(page, f"m.setView([{lat}, {lon}], {zoom}, {{animate: false}});")


def _pixel(page, pane: str, lat: float, lon: float) -> list[int]:
    """RGBA of the overlay canvas of ``pane`` at a position (device pixels = CSS pixels here)."""
    return page.evaluate(f"""(() => {{ const c = document.querySelector('.leaflet-{pane}-pane canvas');
        const p = {ST}.map.latLngToContainerPoint([{lat}, {lon}]);
        return [...c.getContext('2d').getImageData(Math.round(p.x), Math.round(p.y), 1, 1).data]; }})()""")


def test_track_classes_are_drawn_apart(fixed_service, browser):  # noqa: F811
    server, svc = fixed_service
    page, outside = _open(browser, server, viewport={"width": 1000, "height": 700})
    # the class comes from the reports of the sensors that updated each track (ADS-B / Remote ID identities)
    cls = page.evaluate(f"Object.fromEntries([...{ST}.tracks.values()].map(t => [t.id, [t.cls, t.targetId]]))")
    assert cls == {"T0001": [None, None], "T0002": [None, None], "T0003": ["manned", "icao:4b1805"],
                   "T0004": ["cooperative-uav", "rid:UA-RID-0042"]}
    _settle(page, 50.44, 30.68, 10)
    assert page.evaluate(f"{ST}.classDrawn") == {"drone": 2, "manned": 1, "cooperative-uav": 1}
    # drawn in their own colours (and shapes): amber possible drone, cyan aircraft, green Remote ID
    drone, manned, coop = (_pixel(page, "drones", lat, lon) for lat, lon in ((50.50, 30.86), (50.44, 30.50),
                                                                             (50.40, 30.66)))
    assert drone[0] > 200 and drone[2] < 80  # #ffb020
    assert manned[2] > 200 and manned[0] < 140  # #5cc8ff
    assert coop[1] > 170 and coop[0] < 140 and coop[2] < 180  # #5fd38d
    # only possible drones get a threat fan: 6 km ahead of the aircraft (clear of its label) nothing is drawn,
    # 6 km ahead of a drone its fan is
    assert _pixel(page, "drones", 50.44 + 0.0200, 30.50 + 0.0783)[3] == 0  # aircraft: 150 m/s E, 60 m/s N
    assert _pixel(page, "drones", 50.50 - 0.0117, 30.86 - 0.0737)[3] > 0  # T0001: 45 m/s W, 10 m/s S
    # a click on the aircraft names it (the map is still: the click lands where it is drawn)
    _settle(page, 50.44, 30.50, 10)
    page.mouse.click(500, 350)
    page.wait_for_selector(".pop", timeout=5_000)
    assert "aircraft icao:4b1805 (ADS-B)" in page.inner_text(".pop")
    page.close()
    assert outside == []


def test_coverage_layer_shows_what_the_sensors_reach_and_toggles(fixed_service, browser):  # noqa: F811
    server, svc = fixed_service
    page, outside = _open(browser, server, viewport={"width": 1000, "height": 700})
    _settle(page, 50.45, 30.7, 9)
    assert not page.is_checked("#layer-coverage")  # off by default: the picture first
    assert page.evaluate("document.querySelector('.leaflet-coverage-pane canvas') === null")
    page.check("#layer-coverage")
    page.wait_for_function(f"{ST}.coverageDrawn === 7", timeout=5_000)  # 6 acoustic nodes and the radar
    inside_ac = _pixel(page, "coverage", 50.35, 30.45 + 0.03)  # 2 km from node ac0: audible
    outside_ac = _pixel(page, "coverage", 50.25, 30.30)  # 15 km from every node, 50 km from the radar
    inside_radar = _pixel(page, "coverage", 50.75, 31.15)  # 20 km from the radar, far from the nodes
    assert inside_ac[3] > 0 and inside_ac[2] > inside_ac[0]  # blue tint
    assert inside_radar[3] > 0 and inside_radar[0] > inside_radar[1]  # violet tint
    assert outside_ac[3] == 0
    page.uncheck("#layer-coverage")
    assert page.evaluate("document.querySelector('.leaflet-coverage-pane canvas') === null")
    page.close()
    assert outside == []


def _renderer_pixel_js(pane: str, lat: float, lon: float) -> str:
    """JS expression: RGBA of a Leaflet canvas renderer's canvas in ``pane`` at a position; such a canvas extends
    past the view by its padding, so the point is taken relative to the canvas's own place on the page."""
    return f"""(() => {{ const c = document.querySelector('.leaflet-{pane}-pane canvas');
        const p = {ST}.map.latLngToContainerPoint([{lat}, {lon}]);
        const m = {ST}.map.getContainer().getBoundingClientRect(), r = c.getBoundingClientRect();
        const k = c.width / r.width;
        return [...c.getContext('2d').getImageData(Math.round((p.x + m.left - r.left) * k),
                                                   Math.round((p.y + m.top - r.top) * k), 1, 1).data]; }})()"""


def _renderer_pixel(page, pane: str, lat: float, lon: float) -> list[int]:
    return page.evaluate(_renderer_pixel_js(pane, lat, lon))


def _river_vertex_near(lat: float, lon: float) -> tuple[float, float]:
    """The vertex of the shipped rivers layer nearest to a point (lat, lon)."""
    import json
    from importlib import resources

    doc = json.loads(resources.files("skytrace.data").joinpath("basemap-rivers.json").read_text())
    pts = [(y, x) for f in doc["features"] if f["properties"]["kind"] == "river"
           for line in f["geometry"]["coordinates"] for x, y in line]
    return min(pts, key=lambda p: (p[0] - lat) ** 2 + ((p[1] - lon) * 0.64) ** 2)


@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_rivers_are_drawn_offline_under_the_zones_and_toggle(fixed_service, browser, screen):  # noqa: F811
    """The shipped Natural Earth rivers: drawn (blue) on the Dnipro by Kyiv, not 25 km west of it, below the alert
    cells and above the land; the checkbox hides them (on a phone it sits in the bottom sheet); nothing fetched
    from outside."""
    server, svc = fixed_service
    page, outside = _open(browser, server, **VIEWPORTS[screen])
    lat, lon = _river_vertex_near(50.45, 30.6)
    assert abs(lat - 50.45) < 0.2 and abs(lon - 30.6) < 0.2  # the Dnipro passes Kyiv
    _settle(page, lat, lon, 9)
    page.wait_for_function(f"{_renderer_pixel_js('rivers', lat, lon)}[3] > 100", timeout=5_000)  # drawn
    on = _renderer_pixel(page, "rivers", lat, lon)
    off = _renderer_pixel(page, "rivers", 50.45, 30.25)  # Irpin river plain: no 1:50m river there
    assert on[3] > 100 and on[2] > on[0], on  # the river colour #2f6f9f
    assert off[3] == 0, off
    z = page.evaluate("['overlay', 'rivers', 'cells'].map(p => +getComputedStyle(document.querySelector("
                      "'.leaflet-' + p + '-pane')).zIndex)")
    assert z[0] < z[1] < z[2], z  # land < rivers < alert cells
    page.locator("#layer-rivers").scroll_into_view_if_needed()
    page.uncheck("#layer-rivers")  # the renderer's canvas stays; it is cleared at the next animation frame
    page.wait_for_function(f"!{ST}.map.hasLayer({ST}.riverLayer) && {_renderer_pixel_js('rivers', lat, lon)}[3] === 0",
                           timeout=5_000)
    page.check("#layer-rivers")
    page.wait_for_function(f"{_renderer_pixel_js('rivers', lat, lon)}[3] > 100", timeout=5_000)
    page.close()
    assert outside == []


def test_classes_and_coverage_on_a_phone(fixed_service, browser):  # noqa: F811
    """On a phone the layer switches sit in the bottom sheet; a tap turns coverage on; the classes draw the same."""
    server, svc = fixed_service
    page, outside = _open(browser, server, **VIEWPORTS["phone"])
    _settle(page, 50.44, 30.68, 9)
    assert page.evaluate(f"{ST}.classDrawn") == {"drone": 2, "manned": 1, "cooperative-uav": 1}
    page.locator("#layer-coverage").scroll_into_view_if_needed()
    page.tap("#layer-coverage")
    page.wait_for_function(f"{ST}.coverageDrawn > 0", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "map-phone-classes.png"))
    page.close()
    assert outside == []


def _compare(shot: Path, ref: Path) -> tuple[float, float]:
    """(share of pixels differing by more than 40 in some channel, mean absolute difference) of two images."""
    from PIL import Image

    a = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(ref).convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape, f"screenshot {a.shape} vs reference {b.shape}"
    d = np.abs(a - b)
    return float((d.max(axis=2) > 40).mean()), float(d.mean())


# viewport, reference image, view (lat, lon, zoom), drone labels drawn (on a phone two labels collide away)
VIEWS = {"desktop": ({"width": 1000, "height": 700}, REFERENCE, (50.45, 30.68, 9.5), 4),
         "phone": ({"width": 390, "height": 844, "is_mobile": True, "has_touch": True},
                   REFERENCE.with_name("map-reference-phone.png"), (50.44, 30.68, 9.0), 2)}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_screenshot_matches_the_reference(fixed_service, browser, view):  # noqa: F811
    """The key view (classes, alerts, coverage, labels, rivers, panel; on a phone the map above the bottom sheet)
    rendered from a fixed state: pinned viewport, scale, font, time zone and instant. The health badges (link and
    step ages, measured live) are masked."""
    server, svc = fixed_service
    size, reference, (lat, lon, zoom), n_labels = VIEWS[view]
    page, outside = _open(browser, server, viewport={"width": size["width"], "height": size["height"]},
                          device_scale_factor=1, locale="en-GB", timezone_id="Europe/Kyiv",
                          **{k: v for k, v in size.items() if k not in ("width", "height")})
    page.add_style_tag(content=':root { --map-font: "DejaVu Sans"; }')
    page.evaluate("document.fonts.ready")
    page.check("#layer-coverage")
    try:
        # the service's clock has reached the page (durations are "since ... (4 min)", not from the wall clock)
        page.wait_for_function(f"{ST}.serverT === {T0} && document.getElementById('alerts').textContent"
                               ".includes('(4 min)')", timeout=10_000)
        page.evaluate("document.querySelectorAll('aside, #panel').forEach(e => { e.scrollTop = 0; })")
        # the view is fixed last: checking the layer and scrolling the (phone) bottom sheet may resize the map
        page.evaluate(f"{ST}.map.invalidateSize({{animate: false}})")
        _settle(page, lat, lon, zoom)
        page.wait_for_function(f"{ST}.coverageDrawn > 0 && {ST}.placesDrawn > 0 && {ST}.labelsDrawn === {n_labels} "
                               "&& document.getElementById('feed').textContent === 'LIVE'", timeout=10_000)
    except Exception:
        state = page.evaluate(f"[{ST}.coverageDrawn, {ST}.placesDrawn, {ST}.labelsDrawn, "
                              f"document.getElementById('feed').textContent, {ST}.serverT - {T0}, "
                              "document.getElementById('alerts').textContent.slice(0, 300)]")
        raise AssertionError(f"{view}: coverage, places, labels drawn, badge, clock - T0, alerts = {state}") from None
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"map-fixed-{view}.png"
    page.screenshot(path=str(shot), mask=[page.locator("#health")], animations="disabled")
    page.close()
    assert outside == []
    if os.environ.get("SKYTRACE_UPDATE_REFERENCE") == "1":
        reference.write_bytes(shot.read_bytes())
    assert reference.exists(), "no reference image: run with SKYTRACE_UPDATE_REFERENCE=1, check it, commit it"
    share, mean = _compare(shot, reference)
    assert share < 0.005 and mean < 2.0, f"{share:.2%} of pixels differ (mean {mean:.2f}); see {shot}"


def test_history_playback_mid_wave_shows_the_drones_and_alerts_of_that_time(kyiv_wave, browser):  # noqa: F811
    """Half an hour of the wave over Ukraine (1 h 50 min to 2 h 20 min into kyiv-night; truth replay stepped on a
    virtual clock into the store), served at its end; the slider goes back to the middle: the map shows the
    tracks stored then, where they were then, and the alert active then (which has ended since), not today's."""
    d, t_start = kyiv_wave
    t_a = t_start + 6600.0
    truth = [p for p in formats.read_truth(d / "truth.jsonl") if p.t >= t_a - 10]
    t_b = t_a + (truth[-1].t - t_a) // 10 * 10  # "now": the slider moves in 5 s steps back from it
    t_mid = t_a + round((t_b - t_a) / 20) * 10
    past = Alert(zone="UA-KC", start=t_mid - 300, end=t_mid + 120, level="warning", tracks=["D0001"])
    current = Alert(zone="UA-KV", start=t_b - 200, end=None, level="imminent", tracks=["D0002"])
    now = [t_a]
    stage = TruthReplayStage(truth, [past, current], wall0=t_a, t0=t_a, speed=1.0)
    table = formats.load_sensor_table(d / "sensors.json")
    from skytrace.zones import read_zones

    svc = LiveService(table=table, zones=read_zones(d / "zones.geojson"), stage=stage,
                      store=open_store(None), step_s=0.25, clock=lambda: now[0])
    for t in np.arange(t_a, t_b + 1, 2.0):  # the night as the service lived it, every 2 s (states stored at 1 Hz)
        now[0] = float(t)
        svc.step_once(float(t))
    back_s = t_mid - now[0]
    stored = {}
    for p in svc.store.track_states(t_mid - 30, t_mid):  # what the store knew at t_mid (newest state per track)
        stored[p.track] = p
    flying = {p.target for p in truth if t_mid - 35 <= p.t <= t_mid}
    assert len(stored) >= 10 and set(stored) <= flying  # mid-wave: many drones in the air
    with ServerThread(create_app(svc)) as server:
        for screen, kw in VIEWPORTS.items():
            page, outside = _open(browser, server, f"{ST} && {ST}.zonesLoaded > 0 && {ST}.activeAlerts "
                                  f"&& {ST}.serverT === {now[0]}", **kw)
            assert [a["zone"] for a in page.evaluate(f"{ST}.activeAlerts")] == ["UA-KV"]  # live: today's alert
            page.evaluate(f"""() => {{ const s = document.getElementById('scrub'); s.value = {back_s};
                s.dispatchEvent(new Event('change')); }}""")
            page.wait_for_function(f"{ST}.mode === 'history' && {ST}.historyShown > 0 "
                                   f"&& {ST}.activeAlerts.length === 1 && {ST}.activeAlerts[0].zone === 'UA-KC'",
                                   timeout=10_000)
            assert page.evaluate(f"{ST}.historyT") == pytest.approx(t_mid, abs=1e-3)
            assert now[0] == t_b
            shown = page.evaluate(f"Object.fromEntries([...{ST}.tracks.values()].map(t => [t.id, [t.lat, t.lon]]))")
            assert set(shown) == set(stored), screen
            for track, (lat, lon) in shown.items():
                assert abs(lat - stored[track].lat) < 1e-6 and abs(lon - stored[track].lon) < 1e-6
            assert "Kyiv City" in page.inner_text("#alerts") and page.inner_text("#feed") == "HISTORY"
            page.screenshot(path=str(ARTIFACTS / ("map-history-mid-wave.png" if screen == "desktop"
                                                  else f"map-history-mid-wave-{screen}.png")))
            page.locator("#live").scroll_into_view_if_needed()
            page.click("#live")
            page.wait_for_function(f"{ST}.mode === 'live' && {ST}.activeAlerts[0].zone === 'UA-KV'", timeout=5_000)
            page.close()
            assert outside == [], screen


def _tile_xy(lat: float, lon: float, z: int) -> tuple[int, int]:
    """XYZ tile of a position (Web Mercator, as Leaflet and OpenStreetMap number them)."""
    n = 2 ** z
    y = (1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def _write_pmtiles(path: Path, tiles: dict[tuple[int, int, int], bytes], attribution: str = "",
                   tile_type: str = "PNG") -> Path:
    """A PMTiles v3 archive of the given XYZ tiles, written with the reference Python writer."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    with write(str(path)) as w:
        for (tz, tx, ty), data in sorted(tiles.items(), key=lambda kv: zxy_to_tileid(*kv[0])):
            w.write_tile(zxy_to_tileid(tz, tx, ty), data)
        w.finalize({"tile_type": TileType[tile_type], "tile_compression": Compression.NONE,
                    "min_lon_e7": int(29e7), "min_lat_e7": int(49e7), "max_lon_e7": int(32e7),
                    "max_lat_e7": int(52e7)}, {"attribution": attribution})
    return path


def test_operator_tiles_from_a_directory_mbtiles_or_pmtiles_are_served_by_skytrace(tmp_path, browser):  # noqa: F811
    """Rivers and roads come from tiles the operator supplies: a z/x/y directory or a PMTiles archive (drawn under
    the map, every request to 127.0.0.1), or an MBTiles file (TMS rows flipped); bad settings and files are one-line
    errors."""
    import io
    import json
    import sqlite3
    import urllib.error
    import urllib.request

    from PIL import Image

    from skytrace.errors import SkytraceError
    from skytrace.service.tiles import TileSource

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (40, 90, 160)).save(buf, "PNG")
    png = buf.getvalue()
    z = 8
    (x0, y0), (x1, y1) = _tile_xy(51.2, 29.5, z), _tile_xy(49.7, 31.6, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            (tmp_path / "tiles" / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
            (tmp_path / "tiles" / str(z) / str(x) / f"{y}.png").write_bytes(png)
    mb = tmp_path / "region.mbtiles"
    with sqlite3.connect(mb) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT, tile_data BLOB)")
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", "png"), ("maxzoom", "12"),
                                                             ("attribution", "© test tiles")])
        db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x0, 2 ** z - 1 - y0, png))
    pm = _write_pmtiles(tmp_path / "region.pmtiles", {(z, x, y): png for x in range(x0, x1 + 1)
                                                      for y in range(y0, y1 + 1)}, attribution="© test pmtiles")
    table = SensorTable.from_sensors([Sensor(id="ac0", kind="acoustic", lat=50.45, lon=30.52, alt_m=150.0,
                                             bearing_sigma_deg=3.0, max_range_m=6000.0, sound_speed_mps=343.0)])

    def service() -> LiveService:
        return LiveService(table=table, zones=None, stage=FixedPicture(
            TrackSnapshot(t=T0, track=[], status=[], lat=np.zeros(0), lon=np.zeros(0), alt_m=np.zeros(0),
                          ve=np.zeros(0), vn=np.zeros(0), vu=np.zeros(0), pos_sigma_m=np.zeros(0)), []),
            store=open_store(None), step_s=0.25, clock=lambda: T0)

    with ServerThread(create_app(service(), tiles=str(mb))) as server:
        with urllib.request.urlopen(f"{server.url}/tiles/{z}/{x0}/{y0}", timeout=10) as r:
            assert r.read() == png and r.headers["content-type"] == "image/png"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server.url}/tiles/{z}/{x0}/{2 ** z - 1 - y0}", timeout=10)  # unflipped row
        assert err.value.code == 404
        with urllib.request.urlopen(server.url + "/api/v1/map", timeout=10) as r:
            assert json.loads(r.read())["tiles"] == {"url": "tiles/{z}/{x}/{y}", "max_zoom": 12,
                                                       "attribution": "© test tiles", "local": True}
    with ServerThread(create_app(service(), tiles=str(pm))) as server:
        with urllib.request.urlopen(f"{server.url}/tiles/{z}/{x0}/{y0}", timeout=10) as r:
            assert r.read() == png and r.headers["content-type"] == "image/png"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server.url}/tiles/{z}/{x1 + 1}/{y0}", timeout=10)  # outside the archive
        assert err.value.code == 404
        with urllib.request.urlopen(server.url + "/api/v1/map", timeout=10) as r:
            assert json.loads(r.read())["tiles"] == {"url": "tiles/{z}/{x}/{y}", "max_zoom": z,
                                                       "attribution": "© test pmtiles", "local": True}
    for source, screen in ((tmp_path / "tiles", "desktop"), (pm, "phone")):  # drawn, nothing fetched from outside
        with ServerThread(create_app(service(), tiles=str(source))) as server:
            page = browser.new_page(**VIEWPORTS[screen])
            outside = _no_external_requests(page, server.url)
            page.goto(server.url + "/")
            page.wait_for_function(f"{ST} && {ST}.tiles && {ST}.sensorsLoaded > 0", timeout=30_000)
            map_do(page, f"m.setView([50.45, 30.52], {z}, {{animate: false}});")
            page.wait_for_function(f"{ST}.tilesLoaded >= 4", timeout=15_000)
            page.close()
        assert outside == [], source
    (tmp_path / "cut.pmtiles").write_bytes(pm.read_bytes()[:100])  # truncated inside the header
    (tmp_path / "empty.pmtiles").write_bytes(b"")
    vector = _write_pmtiles(tmp_path / "vector.pmtiles", {(z, x0, y0): b"\x1a\x00"}, tile_type="MVT")
    for bad in ("ftp://tiles.example/{z}/{x}/{y}.png", "https://tiles.example/tile.png", str(tmp_path / "none"),
                str(tmp_path / "cut.pmtiles"), str(tmp_path / "empty.pmtiles"), str(vector)):
        with pytest.raises(SkytraceError):
            TileSource.from_setting(bad)
    assert TileSource.from_setting("") is None
    assert TileSource.from_setting("https://tiles.lan/{z}/{x}/{y}.png").client()["local"] is False


class PictureSequence(FixedTracks):
    """A track source showing one picture until ``t_switch``, another after (the past differs from now)."""

    def __init__(self, before: TrackSnapshot, after: TrackSnapshot, t_switch: float):
        super().__init__(before)
        self.after, self.t_switch = after, t_switch

    def advance(self, t_now: float) -> TrackSnapshot:
        return dataclasses.replace(self.snap if t_now < self.t_switch else self.after, t=t_now)


def test_history_playback_shows_the_class_stored_then(browser):  # noqa: F811
    """Ten minutes stepped on a virtual clock: for the first five an ADS-B aircraft, a Remote ID drone, a possible
    drone and a track whose claimed ADS-B identity the identity check does not believe; then only the possible
    drone. Scrubbed back to minute 2, the map shows each track with the class stored then (the live picture no
    longer has them): aircraft, Remote ID, and the flagged claim drawn as a possible drone."""
    n = 4
    z = np.zeros(n)
    before = TrackSnapshot(
        t=T0, track=["T0001", "T0002", "T0003", "T0004"], status=["confirmed"] * n,
        lat=np.array([50.50, 50.36, 50.44, 50.40]), lon=np.array([30.86, 30.75, 30.50, 30.66]),
        alt_m=np.array([120.0, 200.0, 3500.0, 90.0]), ve=z + 20.0, vn=z, vu=z, pos_sigma_m=z + 50.0,
        cls=[None, "manned", "manned", "cooperative-uav"],
        target_id=[None, "icao:508035", "icao:4b1805", "rid:UA-RID-0042"],
        identity_flag=[None, "drone engine heard, no radar plot", None, None])
    after = before.take(np.array([0]))
    table = SensorTable.from_sensors([Sensor(id="ac0", kind="acoustic", lat=50.4, lon=30.5, alt_m=150.0,
                                             bearing_sigma_deg=3.0)])
    stage = Pipeline(table, tracker=PictureSequence(before, after, T0 + 300), policy=FixedAlerts([]),
                     config=PipelineConfig(alert_every_s=0.0))
    now = [T0]
    from skytrace.zones_grid import default_zones

    svc = LiveService(table=table, zones=default_zones(), stage=stage, store=open_store(None), step_s=0.25,
                      clock=lambda: now[0])
    for t in np.arange(T0, T0 + 600 + 1, 2.0):
        now[0] = float(t)
        svc.step_once(float(t))
    stored = {p.track: (p.cls, p.target_id, p.identity_flag) for p in svc.store.track_states(T0 + 100, T0 + 120)}
    assert stored["T0003"] == ("manned", "icao:4b1805", None)
    assert stored["T0002"] == ("manned", "icao:508035", "drone engine heard, no radar plot")
    with ServerThread(create_app(svc)) as server:
        page, outside = _open(browser, server, f"{ST} && {ST}.zonesLoaded > 0 && {ST}.serverT === {now[0]} "
                              f"&& {ST}.tracks.size === 1", viewport={"width": 1000, "height": 700})
        page.evaluate("""() => { const s = document.getElementById('scrub'); s.value = -480;
            s.dispatchEvent(new Event('change')); }""")
        page.wait_for_function(f"{ST}.mode === 'history' && {ST}.historyShown === 4", timeout=10_000)
        shown = page.evaluate(f"Object.fromEntries([...{ST}.tracks.values()].map(t => [t.id, [t.cls, t.targetId, "
                              "t.flag]]))")
        assert shown == {"T0001": [None, None, None],
                         "T0002": ["manned", "icao:508035", "drone engine heard, no radar plot"],
                         "T0003": ["manned", "icao:4b1805", None],
                         "T0004": ["cooperative-uav", "rid:UA-RID-0042", None]}
        _settle(page, 50.44, 30.68, 10)
        assert page.evaluate(f"{ST}.classDrawn") == {"drone": 2, "manned": 1, "cooperative-uav": 1}
        page.close()
    assert outside == []
