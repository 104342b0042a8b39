// skytrace live map (offline: no tiles, nothing fetched from outside the service).
// Layers, bottom to top: oblasts (the land, coloured by the alert roll-up when zoomed out), 15 km cells (drawn
// only when alerted or zoomed in, so 3,300 zones stay cheap), places (GeoNames towns, label hierarchy by zoom),
// sensor coverage (acoustic audible ranges, radar coverage; off by default), sensors (muted, toggleable), tracks
// (one canvas: uncertainty circle, trail, 5-min fan, class symbol with heading, label). Classes: a non-cooperative
// track is a possible drone (amber arrow); ADS-B aircraft (manned, cyan aeroplane) and Remote ID drones
// (cooperative, green diamond) are drawn apart by colour AND shape, and get no threat fan.
// Warning and imminent differ in colour (yellow / magenta, colour-blind safe) AND pattern (dashed outline / hatched
// fill). Times are local (Europe/Kyiv unless ?tz=...) with UTC on hover. State is on window.skytrace for tests.
"use strict";
(function () {
  const TRAIL_POINTS = 60, PREDICT_S = 300, FAN_DEG = 12, STALL_S = 5, CELL_ZOOM = 9, HISTORY_LOOKBACK_S = 30;
  const query = new URLSearchParams(location.search);
  const TZ = query.get("tz") || "Europe/Kyiv";
  const CAT = window.SKYTRACE_MESSAGES || {};
  const LANG = (query.get("lang") || navigator.language || "en").slice(0, 2) === "uk" ? "uk" : "en";
  const t = (k, v = {}) => String((CAT[LANG] || {})[k] ?? (CAT.en || {})[k] ?? k).replace(/\{(\w+)\}/g, (_, n) => v[n] ?? "");
  const tr = t;
  document.documentElement.lang = LANG;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const COL = { warning: "#f2c12e", imminent: "#e0287d", drone: "#ffb020", coast: "#9aa4ae", manned: "#5cc8ff",
                coop: "#5fd38d", acoustic: "#4f8fd6", radar: "#9b7fe0",
               river: "#2f6f9f" };
  // One font for the canvas and the page (CSS --map-font), read at each draw: a test can pin it.
  const font = (spec) => `${spec} ${getComputedStyle(document.documentElement).getPropertyValue("--map-font").trim() || "system-ui, sans-serif"}`;
  const st = window.skytrace = { tracks: new Map(), zoneAlert: new Set(), zoneLevel: new Map(), rollup: {},
                                 frameMs: [], msgs: 0, lastMsgWall: 0, mode: "live", feedStalled: true,
                                 lastStatus: null, tz: TZ, lang: LANG, labelsDrawn: 0, placesDrawn: 0, newAlerts: 0,
                                 classDrawn: {}, coverageDrawn: 0 };
  const $ = (id) => document.getElementById(id);
  const renderer = L.canvas({ padding: 0.2 });
  const map = L.map("map", { preferCanvas: true, renderer, zoomControl: false, attributionControl: false,
                             zoomSnap: 0.25 }).setView([49.0, 31.5], 6);
  st.map = map;
  L.control.zoom({ position: "bottomleft" }).addTo(map);
  map.createPane("rivers").style.zIndex = 402;  // over the land (the oblasts' fill), under the alert cells
  map.getPane("rivers").style.pointerEvents = "none";
  map.createPane("cells").style.zIndex = 405;
  map.createPane("coverage").style.zIndex = 410;
  map.createPane("places").style.zIndex = 420;
  map.createPane("drones").style.zIndex = 450;
  for (const p of ["coverage", "places", "drones"]) map.getPane(p).style.pointerEvents = "none";
  const cellRenderer = L.canvas({ padding: 0.2, pane: "cells" });
  const fitPad = { paddingTopLeft: [10, 40], paddingBottomRight: [10, 10] };

  // ---------------------------------------------------------------------------------------------- time
  const fmt = (opts) => { try { return new Intl.DateTimeFormat("en-GB", { timeZone: TZ, ...opts }); }
                          catch (e) { return new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", ...opts }); } };
  const hms = fmt({ hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const dayFmt = fmt({ day: "numeric", month: "short" });
  const fmtTime = (t) => hms.format(new Date(t * 1000));
  const fmtUtc = (t) => new Date(t * 1000).toISOString().replace("T", " ").substring(0, 19) + " UTC";
  const fmtDur = (s) => s < 90 ? `${Math.max(0, Math.round(s))} ${t("u_s")}` : s < 5400 ? `${Math.round(s / 60)} ${t("u_min")}`
    : `${Math.floor(s / 3600)} ${t("u_h")} ${Math.round((s % 3600) / 60)} ${t("u_min")}`;
  const nowT = () => st.serverT || Date.now() / 1000;

  // ---------------------------------------------------------------------------------------------- hatch
  function hatch(color) {  // a diagonal stripe pattern: "imminent" reads without colour vision
    const c = document.createElement("canvas"); c.width = c.height = 8;
    const g = c.getContext("2d"); g.strokeStyle = color; g.lineWidth = 2.5;
    g.beginPath(); g.moveTo(-2, 10); g.lineTo(10, -2); g.moveTo(6, 10); g.lineTo(10, 6); g.moveTo(-2, 2);
    g.lineTo(2, -2); g.stroke();
    return g.createPattern(c, "repeat");
  }
  const HATCH = hatch(COL.imminent);
  const cellStyle = (level) => level === "imminent"
    ? { color: COL.imminent, weight: 2.5, dashArray: null, fillColor: HATCH, fillOpacity: 0.9 }
    : level === "warning" ? { color: COL.warning, weight: 2, dashArray: "6 4", fillColor: COL.warning, fillOpacity: 0.28 }
      : { color: "#34465a", weight: 0.6, dashArray: null, fillOpacity: 0 };

  // ---------------------------------------------------------------------------------------------- zones
  const oblasts = new Map(), cells = new Map(), cellLayers = new Map(), zoneName = new Map();
  const cellGroup = L.layerGroup().addTo(map);
  const worstChild = new Map();  // oblast -> worst level among its alerted cells
  // An oblast alerted itself is filled with its level's style; an oblast with alerted cells (the roll-up) gets
  // the level's outline when zoomed out (so one alerted cell does not look like a whole alerted oblast).
  function oblastStyle(id) {
    const base = { color: "#52657a", weight: 1, dashArray: null, fillColor: "#1a2633", fillOpacity: st.tiles ? 0.12 : 0.75 };
    const own = st.zoneLevel.get(id);
    if (own === "imminent") return { ...base, color: COL.imminent, weight: 3, fillColor: HATCH, fillOpacity: 0.55 };
    if (own) return { ...base, color: COL.warning, weight: 2.5, dashArray: "8 5", fillColor: "#3d3518", fillOpacity: 0.85 };
    const child = map.getZoom() < CELL_ZOOM ? worstChild.get(id) : null;
    if (child === "imminent") return { ...base, color: COL.imminent, weight: 2.5, fillColor: "#2a1a26" };
    if (child) return { ...base, color: COL.warning, weight: 2, dashArray: "8 5", fillColor: "#26261d" };
    return base;
  }
  fetch("api/v1/zones").then((r) => r.json()).then((gj) => {
    const obl = [];
    for (const f of gj.features) {
      const id = String(f.properties.id);
      zoneName.set(id, f.properties.name);
      if (f.properties.parent) cells.set(id, f); else obl.push(f);
    }
    const layer = L.geoJSON({ type: "FeatureCollection", features: obl }, { renderer,
      style: (f) => oblastStyle(String(f.properties.id)),
      onEachFeature: (f, l) => { oblasts.set(String(f.properties.id), l); l.on("click", (e) => zoneClick(e, String(f.properties.id))); } });
    layer.addTo(map);
    layer.bringToBack();
    if (obl.length && !st.sensorBounds) map.fitBounds(layer.getBounds(), fitPad);
    st.zonesLoaded = gj.features.length;
    st.cellsTotal = cells.size;
    refreshZones();
    rerenderAlerts();  // names and roll-up need the zones
  });
  // Optional base tiles (rivers, roads, terrain) chosen by the operator ([service] map_tiles): from skytrace itself
  // (a tile directory or MBTiles file) or the operator's tile server. None by default: nothing leaves the service.
  fetch("api/v1/map").then((r) => r.ok ? r.json() : {}).then((cfg) => {
    if (!cfg.tiles) return;
    st.tiles = cfg.tiles; st.tilesLoaded = 0; st.tilesFailed = 0;
    const layer = L.tileLayer(cfg.tiles.url, { maxNativeZoom: cfg.tiles.max_zoom, maxZoom: 20, opacity: 0.85 });
    layer.on("tileload", () => st.tilesLoaded++).on("tileerror", () => st.tilesFailed++).addTo(map);
    for (const [id, l] of oblasts) l.setStyle(oblastStyle(id));  // the land becomes a tint over the tiles
    if (cfg.tiles.attribution) {
      const a = document.createElement("div"); a.className = "attribution"; a.textContent = cfg.tiles.attribution;
      document.body.appendChild(a);
    }
  });
  function cellBounds(f) {
    if (!f._b) f._b = L.geoJSON(f).getBounds();
    return f._b;
  }
  // Cells drawn: alerted ones always; all cells in view only when zoomed in (a few hundred, not 3,300).
  function refreshZones() {
    const want = new Set([...st.zoneAlert].filter((id) => cells.has(id)));
    if (map.getZoom() >= CELL_ZOOM) {
      const view = map.getBounds().pad(0.1);
      for (const [id, f] of cells) if (view.intersects(cellBounds(f))) want.add(id);
    }
    for (const [id, l] of cellLayers) if (!want.has(id)) { cellGroup.removeLayer(l); cellLayers.delete(id); }
    for (const id of want) {
      let l = cellLayers.get(id);
      if (!l) {
        l = L.geoJSON(cells.get(id), { renderer: cellRenderer, style: () => cellStyle(st.zoneLevel.get(id)) });
        l.on("click", (e) => zoneClick(e, id));
        cellLayers.set(id, l); cellGroup.addLayer(l);
      } else l.setStyle(cellStyle(st.zoneLevel.get(id)));
    }
    for (const [id, l] of oblasts) l.setStyle(oblastStyle(id));
    st.cellsDrawn = cellLayers.size;
  }
  map.on("zoomend moveend", refreshZones);

  // ---------------------------------------------------------------------------------------------- rivers
  // Natural Earth 1:50m rivers and lakes, shipped with skytrace (nothing fetched from outside): orientation for
  // an operator without tiles. Thin and muted, never over the alert cells or the drones; a checkbox hides them.
  const riverLayer = L.geoJSON(null, { renderer: L.canvas({ padding: 0.2, pane: "rivers" }), interactive: false,
    style: (f) => f.properties.kind === "lake"
      ? { color: COL.river, weight: 0.8, fillColor: COL.river, fillOpacity: 0.55, opacity: 0.8 }
      : { color: COL.river, weight: 1.6, opacity: 0.8 } });
  riverLayer.addTo(map);
  fetch("api/v1/rivers").then((r) => r.ok ? r.json() : { features: [] }).then((gj) => {
    riverLayer.addData(gj);
    st.riversLoaded = (gj.features || []).length;
  });
  st.riverLayer = riverLayer;

  // ---------------------------------------------------------------------------------------------- places
  let places = [];
  fetch("api/v1/places").then((r) => r.ok ? r.json() : { places: [] }).then((doc) => {
    places = doc.places || [];
    st.placesLoaded = places.length;
    placeLayer.redraw();
    rerenderAlerts();  // cells are named after their towns
  });
  const minPopAt = (z) => z < 6.5 ? 400000 : z < 7.5 ? 90000 : z < 8.5 ? 25000 : z < 9.5 ? 8000 : 0;
  function nearestPlace(lat, lon, maxKm) {
    let best = null, bestD = maxKm * maxKm;
    const k = Math.cos((lat * Math.PI) / 180);
    for (const p of places) {
      const dy = (p.lat - lat) * 111.32, dx = (p.lon - lon) * 111.32 * k, d = dx * dx + dy * dy;
      if (d < bestD) { best = p; bestD = d; }
    }
    return best;
  }
  const biggestIn = (b) => places.find((p) => b.contains([p.lat, p.lon]));  // places are sorted by population
  // Display name of a zone: oblasts by name; a 15 km cell by the biggest nearby town and its oblast.
  function displayName(id) {
    const f = cells.get(id);
    if (!f) return zoneName.get(id) || id;
    const c = cellBounds(f).getCenter(), p = biggestIn(cellBounds(f)) || nearestPlace(c.lat, c.lng, 14);
    const obl = zoneName.get(f.properties.parent) || f.properties.parent;
    return p ? t("area", { town: p.name, obl }) : t("cell", { obl, id: id.split(":")[1] || id });
  }
  st.displayName = displayName;
  const placeOf = (id) => displayName(id).split(",")[0];  // short form for drone labels

  // ---------------------------------------------------------------------------------------------- canvas overlay
  // One canvas over the map redrawn by a callback (places, drones): labels and rotated symbols that Leaflet's
  // vector layers cannot draw, at the cost of one draw call per frame for all of them.
  const Overlay = L.Layer.extend({
    initialize(draw, pane) { this._draw = draw; this._pane = pane; },
    onAdd(m) {
      this._c = L.DomUtil.create("canvas", "overlay");
      m.getPane(this._pane).appendChild(this._c);
      m.on("moveend zoomend resize viewreset", this.redraw, this);
      m.on("zoomstart", () => { this._c.style.visibility = "hidden"; });
      this.redraw();
    },
    onRemove(m) { L.DomUtil.remove(this._c); m.off("moveend zoomend resize viewreset", this.redraw, this); },
    redraw() {
      if (!this._map) return;
      const size = this._map.getSize(), dpr = window.devicePixelRatio || 1, c = this._c;
      L.DomUtil.setPosition(c, this._map.containerPointToLayerPoint([0, 0]));
      if (c.width !== size.x * dpr || c.height !== size.y * dpr) {
        c.width = size.x * dpr; c.height = size.y * dpr; c.style.width = size.x + "px"; c.style.height = size.y + "px";
      }
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, size.x, size.y);
      c.style.visibility = "visible";
      this._draw(g, this._map, size);
    },
  });
  // Label placement: a coarse occupancy grid; a label that would overlap a placed one is skipped.
  function labelGrid() {
    const taken = new Set(), cell = 8;
    return (x, y, w, h) => {
      const keys = [];
      for (let i = Math.floor(x / cell); i <= Math.floor((x + w) / cell); i++)
        for (let j = Math.floor(y / cell); j <= Math.floor((y + h) / cell); j++) {
          const k = i + "," + j; if (taken.has(k)) return false; keys.push(k);
        }
      for (const k of keys) taken.add(k);
      return true;
    };
  }
  const placeLayer = new Overlay((g, m, size) => {
    const minPop = minPopAt(m.getZoom()), fits = labelGrid();
    let n = 0, smallest = Infinity;
    g.font = font("12px"); g.textBaseline = "middle";
    for (const p of places) {  // sorted by population: big towns win the label space
      if (p.pop < minPop) break;
      const pt = m.latLngToContainerPoint([p.lat, p.lon]);
      if (pt.x < -50 || pt.y < -20 || pt.x > size.x + 50 || pt.y > size.y + 20) continue;
      const big = p.pop >= 400000, w = g.measureText(p.name).width + 6;
      if (!fits(pt.x - 3, pt.y - 7, w + 6, 14)) continue;
      g.fillStyle = big ? "#e6edf3" : "#b7c3cf";
      g.beginPath(); g.arc(pt.x, pt.y, big ? 3.5 : 2.2, 0, 2 * Math.PI); g.fill();
      g.font = big ? font("600 13px") : font("12px");
      g.lineWidth = 3; g.strokeStyle = "rgba(14,22,33,0.85)"; g.strokeText(p.name, pt.x + 5, pt.y);
      g.fillText(p.name, pt.x + 5, pt.y);
      n++; smallest = p.pop;  // sorted by population: the last one drawn is the smallest
    }
    st.placesDrawn = n; st.placesSmallestPop = n ? smallest : null;
  }, "places");
  placeLayer.addTo(map);

  // ---------------------------------------------------------------------------------------------- sensors
  const sensorLayer = L.layerGroup().addTo(map);
  let sensorList = [];
  fetch("api/v1/sensors").then((r) => r.json()).then((doc) => {
    sensorList = doc.sensors.filter((s) => s.lat != null && s.max_range_m);
    if (map.hasLayer(coverageLayer)) coverageLayer.redraw();
    const pts = doc.sensors.filter((s) => s.lat != null).map((s) => [s.lat, s.lon]);
    if (pts.length > 1) {  // the network's area is where the picture is: start there
      st.sensorBounds = L.latLngBounds(pts).pad(0.15);
      map.fitBounds(st.sensorBounds, fitPad);
    }
    for (const s of doc.sensors) {
      if (s.lat == null) continue;
      L.circleMarker([s.lat, s.lon], { renderer, radius: s.kind === "radar" ? 4 : 1.8, color: "#6b8299", weight: 1,
                                       opacity: 0.5, fillOpacity: 0.35, interactive: true })
        .bindTooltip(`sensor ${s.id} (${s.kind})`).addTo(sensorLayer);
    }
    st.sensorsLoaded = doc.sensors.length;
  });
  const toggle = (id, layer) => $(id).addEventListener("change", (e) => {
    if (e.target.checked) layer.addTo(map); else map.removeLayer(layer);
  });
  toggle("layer-sensors", sensorLayer);

  // Coverage: where each sensor can hear or see a target (acoustic nodes: their audible range; radars: their
  // instrumented range), from sensors.json's max_range_m. Each kind is filled as one path with the non-zero
  // rule, so overlapping circles make one evenly tinted union (coverage, not a count) with its own outline.
  const coverageLayer = new Overlay((g, m, size) => {
    const mpp = (lat) => (40075016.686 * Math.cos((lat * Math.PI) / 180)) / Math.pow(2, m.getZoom() + 8);
    let n = 0;
    for (const [kind, col, fill] of [["acoustic", COL.acoustic, 0.16], ["radar", COL.radar, 0.12]]) {
      g.beginPath();
      for (const s of sensorList) {
        if ((kind === "radar") !== (s.kind === "radar")) continue;
        const p = m.latLngToContainerPoint([s.lat, s.lon]), r = s.max_range_m / mpp(s.lat);
        if (p.x + r < 0 || p.y + r < 0 || p.x - r > size.x || p.y - r > size.y) continue;
        g.moveTo(p.x + r, p.y); g.arc(p.x, p.y, r, 0, 2 * Math.PI);
        n++;
      }
      g.globalAlpha = fill; g.fillStyle = col; g.fill("nonzero");
      g.globalAlpha = 0.5; g.strokeStyle = col; g.lineWidth = 0.8; g.stroke();
      g.globalAlpha = 1;
    }
    st.coverageDrawn = n;
  }, "coverage");
  toggle("layer-coverage", coverageLayer);
  $("layer-coverage").addEventListener("change", (e) => { if (!e.target.checked) st.coverageDrawn = 0; });
  toggle("layer-places", placeLayer);
  toggle("layer-rivers", riverLayer);

  // ---------------------------------------------------------------------------------------------- drones
  const M_PER_DEG = 111320;
  const offset = (lat, lon, de, dn) => [lat + dn / M_PER_DEG, lon + de / (M_PER_DEG * Math.cos((lat * Math.PI) / 180))];
  let showLabels = true;
  $("layer-labels").addEventListener("change", (e) => { showLabels = e.target.checked; trackLayer.redraw(); });
  const trackLayer = new Overlay((g, m, size) => {
    const fits = labelGrid(), z = m.getZoom();
    let nLabels = 0;
    const drawn = { drone: 0, manned: 0, "cooperative-uav": 0 };
    const mpp = (lat) => (40075016.686 * Math.cos((lat * Math.PI) / 180)) / Math.pow(2, z + 8);
    for (const tr of st.tracks.values()) {
      const p = m.latLngToContainerPoint([tr.lat, tr.lon]);
      if (p.x < -200 || p.y < -200 || p.x > size.x + 200 || p.y > size.y + 200) continue;
      const coast = tr.status === "coasting", tentative = tr.status === "tentative";
      // a claim the identity check does not believe (e.g. a drone carrying an airliner's ADS-B) is a possible drone
      const kind = tr.flag ? "drone" : tr.cls === "manned" ? "manned" : tr.cls === "cooperative-uav" ? "cooperative-uav" : "drone";
      const col = coast || tentative ? COL.coast : kind === "manned" ? COL.manned : kind === "drone" ? COL.drone : COL.coop;
      drawn[kind]++;
      const r = tr.sigma / mpp(tr.lat);  // 1-sigma position uncertainty
      if (r > 4) {
        g.beginPath(); g.arc(p.x, p.y, Math.min(r, 400), 0, 2 * Math.PI);
        g.fillStyle = "rgba(255,176,32,0.08)"; g.fill();
        g.strokeStyle = "rgba(255,176,32,0.45)"; g.lineWidth = 1; g.setLineDash([2, 3]); g.stroke(); g.setLineDash([]);
      }
      if (tr.trail.length > 1) {
        g.beginPath();
        tr.trail.forEach((ll, i) => { const q = m.latLngToContainerPoint(ll); if (i) g.lineTo(q.x, q.y); else g.moveTo(q.x, q.y); });
        g.strokeStyle = coast ? "rgba(154,164,174,0.6)" : "rgba(255,176,32,0.6)"; g.lineWidth = 1.5; g.stroke();
      }
      const hdg = Math.atan2(tr.ve, tr.vn), dist = tr.speed * PREDICT_S;
      if (tr.speed > 5 && kind === "drone") {  // the 5-min fan: where constant speed with +-12 deg of heading change takes it
        const a = (FAN_DEG * Math.PI) / 180, ends = [-a, 0, a].map((d) => m.latLngToContainerPoint(
          offset(tr.lat, tr.lon, dist * Math.sin(hdg + d), dist * Math.cos(hdg + d))));
        g.beginPath(); g.moveTo(p.x, p.y); g.lineTo(ends[0].x, ends[0].y); g.lineTo(ends[1].x, ends[1].y);
        g.lineTo(ends[2].x, ends[2].y); g.closePath();
        g.fillStyle = "rgba(255,176,32,0.10)"; g.fill();
        g.beginPath(); g.moveTo(p.x, p.y); g.lineTo(ends[1].x, ends[1].y);
        g.setLineDash([4, 4]); g.strokeStyle = "rgba(255,176,32,0.7)"; g.lineWidth = 1; g.stroke(); g.setLineDash([]);
      }
      // class symbol with heading (screen y grows downwards: rotate by the compass heading): arrow = possible
      // drone, aeroplane = manned aircraft (ADS-B), diamond with a heading tick = Remote ID drone
      g.save(); g.translate(p.x, p.y); g.rotate(hdg);
      g.beginPath();
      if (kind === "manned") {
        g.moveTo(0, -10); g.lineTo(1.6, -4); g.lineTo(9, 1); g.lineTo(9, 3); g.lineTo(1.6, 0.5); g.lineTo(1.2, 6);
        g.lineTo(4, 8.5); g.lineTo(4, 10); g.lineTo(0, 9); g.lineTo(-4, 10); g.lineTo(-4, 8.5); g.lineTo(-1.2, 6);
        g.lineTo(-1.6, 0.5); g.lineTo(-9, 3); g.lineTo(-9, 1); g.lineTo(-1.6, -4);
      } else if (kind === "cooperative-uav") {
        g.moveTo(0, -7); g.lineTo(6, 0); g.lineTo(0, 7); g.lineTo(-6, 0); g.closePath();
      } else { g.moveTo(0, -9); g.lineTo(6, 7); g.lineTo(0, 3); g.lineTo(-6, 7); }
      g.closePath();
      if (coast || tentative) { g.setLineDash([2, 2]); g.strokeStyle = col; g.lineWidth = 1.5; g.stroke(); g.setLineDash([]); }
      else { g.fillStyle = col; g.fill(); g.strokeStyle = "#0e1621"; g.lineWidth = 1; g.stroke(); }
      if (kind === "cooperative-uav") {  // its heading
        g.beginPath(); g.moveTo(0, -7); g.lineTo(0, -13); g.strokeStyle = col; g.lineWidth = 2; g.stroke();
      }
      g.restore();
      if (!showLabels) continue;
      const who = kind === "manned" ? t("cls_manned", { id: tr.targetId || "" })
        : kind === "cooperative-uav" ? t("cls_coop", { id: tr.targetId || "" })
          : tr.flag ? t("cls_claims", { id: tr.targetId || "?" }) : "";
      const l1 = tr.id + (who ? " · " + who : "") + (coast ? " (coasting)" : tentative ? " (tentative)" : "");
      const l2 = `${(tr.speed * 3.6).toFixed(0)} km/h · ${tr.alt.toFixed(0)} m`;
      const th = st.threat && st.threat.get(tr.id);
      const lines = [[l1, col], [l2, "#d0d7de"]];
      if (th) lines.push([`→ ${placeOf(th.zone)}${th.eta_s != null ? " " + fmtEta(th.eta_s) : ""}`,
                          th.level === "imminent" ? "#ff8fc4" : COL.warning]);
      g.font = font("11px");
      const w = Math.max(...lines.map(([txt]) => g.measureText(txt).width)) + 4, h = 12 * lines.length + 2;
      if (!fits(p.x + 9, p.y - 13, w, h)) continue;
      g.textBaseline = "middle"; g.lineWidth = 3; g.strokeStyle = "rgba(14,22,33,0.9)";
      lines.forEach(([txt, c], i) => {
        const y = p.y - 6 + 12 * i;
        g.strokeText(txt, p.x + 10, y); g.fillStyle = c; g.fillText(txt, p.x + 10, y);
      });
      nLabels++;
    }
    st.labelsDrawn = nLabels;
    st.classDrawn = drawn;
  }, "drones");
  trackLayer.addTo(map);

  function showTracks(m, keepTrails) {
    const seen = new Set();
    for (let i = 0; i < m.track.length; i++) {
      const id = m.track[i];
      seen.add(id);
      let tr = st.tracks.get(id);
      if (!tr) { tr = { id, trail: [], firstT: m.t }; st.tracks.set(id, tr); }
      Object.assign(tr, { lat: m.lat[i], lon: m.lon[i], alt: m.alt_m[i], ve: m.ve[i], vn: m.vn[i],
                          vu: m.vu ? m.vu[i] : 0, speed: Math.hypot(m.ve[i], m.vn[i]),
                          sigma: m.pos_sigma_m ? m.pos_sigma_m[i] : 0, status: m.status ? m.status[i] : "confirmed",
                          cls: m["class"] ? m["class"][i] : null, targetId: m.target_id ? m.target_id[i] : null,
                          flag: m.identity_flag ? m.identity_flag[i] : null, t: m.t });
      if (!keepTrails) tr.trail.length = 0;
      tr.trail.push([tr.lat, tr.lon]);
      if (tr.trail.length > TRAIL_POINTS) tr.trail.shift();
    }
    for (const id of [...st.tracks.keys()]) if (!seen.has(id)) st.tracks.delete(id);
    trackLayer.redraw();
    const coasting = [...st.tracks.values()].filter((t) => t.status === "coasting").length;
    $("counts").textContent = t("tracks_count", { n: m.track.length }) + (coasting ? t("coasting_n", { n: coasting }) : "");
    if (m.t) setClock(m.t);
  }
  function setClock(t) {
    const sp = st.lastStatus && st.lastStatus.clock_speed;  // an accelerated replay says how fast it plays
    $("clock").textContent = `${fmtTime(t)} ${dayFmt.format(new Date(t * 1000))}` + (sp && sp !== 1 ? ` · ${sp.toFixed(sp < 10 ? 1 : 0)}x` : "");
    $("clock").title = `${fmtUtc(t)} (shown in ${TZ})`;
  }
  // a click near a drone: its details (the label shows the essentials already); it wins over the zone under it
  function trackAt(p) {
    let best = null, bestD = 14 * 14;
    for (const tr of st.tracks.values()) {
      const q = map.latLngToContainerPoint([tr.lat, tr.lon]), d = (q.x - p.x) ** 2 + (q.y - p.y) ** 2;
      if (d < bestD) { best = tr; bestD = d; }
    }
    return best;
  }
  function zoneClick(e, id) { if (!trackAt(e.containerPoint)) showZone(id); }
  map.on("click", (e) => {
    const best = trackAt(e.containerPoint);
    if (!best) return;
    const hdg = ((Math.atan2(best.ve, best.vn) * 180) / Math.PI + 360) % 360;
    L.popup().setLatLng([best.lat, best.lon]).setContent(
      `<div class="pop"><b>${best.id}</b> ${best.status} · ${best.flag ? t("cls_suspect", { id: best.targetId || "", why: best.flag })
        : best.cls === "manned" ? t("cls_manned", { id: best.targetId || "" })
        : best.cls === "cooperative-uav" ? t("cls_coop", { id: best.targetId || "" }) : t("cls_drone")}<br>${(best.speed * 3.6).toFixed(0)} km/h heading ` +
      `${hdg.toFixed(0)}°, ${best.alt.toFixed(0)} m, climb ${best.vu.toFixed(1)} m/s<br>position ±${best.sigma.toFixed(0)} m ` +
      `(1σ); tracked ${fmtDur(best.t - best.firstT)} on this screen</div>`).openOn(map);
    st.popupTrack = best.id;
  });

  // ---------------------------------------------------------------------------------------------- alerts
  const LEVEL_RANK = { imminent: 0, warning: 1 };
  const urgency = (a, b) => (LEVEL_RANK[a.level] ?? 2) - (LEVEL_RANK[b.level] ?? 2)
    || (a.eta_s ?? 1e9) - (b.eta_s ?? 1e9) || (b.probability ?? 0) - (a.probability ?? 0) || a.start - b.start;
  const fmtEta = (s) => s == null ? "" : s <= 30 ? t("now") : t("in", { dur: fmtDur(s) });
  let known = null;  // zone ids alerted at the previous message (null: first message, no sound)
  let muted = localStorage.getItem("skytrace.muted") === "1";
  const setMute = () => { $("mute").textContent = muted ? t("sound_off") : t("sound_on"); $("mute").setAttribute("aria-pressed", String(muted)); };
  $("mute").addEventListener("click", () => { muted = !muted; localStorage.setItem("skytrace.muted", muted ? "1" : "0"); setMute(); });
  setMute();
  function announce(n) {
    st.newAlerts += n;
    const panel = $("panel");
    panel.classList.remove("flash"); void panel.offsetWidth; panel.classList.add("flash");
    if (muted) return;
    try {
      const ctx = st.audio || (st.audio = new AudioContext()), o = ctx.createOscillator(), gain = ctx.createGain();
      o.frequency.value = 880; gain.gain.value = 0.08; o.connect(gain); gain.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.25);
      st.beeps = (st.beeps || 0) + 1;
    } catch (e) { /* no audio device: the flash stays */ }
  }
  function showAlerts(active, rollup) {
    const levels = new Map(active.map((a) => [a.zone, a.level]));
    if (known && st.mode === "live") {
      const fresh = [...levels.keys()].filter((z) => !known.has(z));
      if (fresh.length) announce(fresh.length);
    }
    if (st.mode === "live") known = new Set(levels.keys());
    st.zoneAlert = new Set(levels.keys());
    st.zoneLevel = levels;
    st.rollup = rollup || {};
    worstChild.clear();
    for (const a of active) {
      const par = cells.get(a.zone)?.properties?.parent;
      if (par && worstChild.get(par) !== "imminent") worstChild.set(par, a.level);
    }
    for (const [par, kind] of Object.entries(st.rollup))  // the server's roll-up (covers zones not yet loaded)
      if (oblasts.has(par) && !worstChild.has(par) && kind === "partial") worstChild.set(par, "warning");
    refreshZones();
    st.activeAlerts = active.slice().sort(urgency);
    // each drone's most urgent threatened zone (shown under its label: where it goes and when)
    st.threat = new Map();
    for (const al of st.activeAlerts) for (const id of al.tracks || []) if (!st.threat.has(id)) st.threat.set(id, al);
    trackLayer.redraw();
    const ul = $("alerts");
    ul.innerHTML = "";
    if (!active.length) { const li = document.createElement("li"); li.className = "none"; li.textContent = t("none"); ul.appendChild(li); }
    const now = nowT();
    for (const a of st.activeAlerts) {
      const li = document.createElement("li");
      li.className = a.level;
      li.dataset.zone = a.zone;
      li.tabIndex = 0;
      const lvl = document.createElement("span");
      lvl.className = "lvl"; lvl.textContent = a.level === "imminent" ? t("imminent") : t("warning");
      const name = document.createElement("b"); name.textContent = displayName(a.zone);
      const meta = document.createElement("div"); meta.className = "meta";
      const bits = [];
      if (a.eta_s != null) bits.push(t("eta", { eta: fmtEta(a.eta_s) }));
      if (a.probability != null) bits.push(`P ${(a.probability * 100).toFixed(0)}%`);
      const onMap = a.tracks.filter((id) => st.tracks.has(id)).length;  // the rest have ended or are not drawn
      bits.push((a.tracks.length === 1 ? t("track_1") : t("tracks_n", { n: a.tracks.length })) +
                (onMap < a.tracks.length ? t("on_map", { n: onMap }) : ""));
      const since = document.createElement("span");
      since.textContent = t("since", { time: fmtTime(a.start), dur: fmtDur(now - a.start) });
      since.title = fmtUtc(a.start);
      meta.textContent = bits.join(" · ") + " · "; meta.appendChild(since);
      li.append(lvl, " ", name, meta);
      li.addEventListener("click", () => showZone(a.zone));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") showZone(a.zone); });
      ul.appendChild(li);
    }
    $("n-alerts").textContent = active.length;
    // roll-up by oblast: how many cells of each are alerted, worst level first
    const byObl = new Map();
    for (const a of active) {
      const par = cells.get(a.zone)?.properties?.parent || a.zone;
      const o = byObl.get(par) || { n: 0, imm: 0 };
      o.n++; if (a.level === "imminent") o.imm++;
      byObl.set(par, o);
    }
    const ru = $("rollup");
    ru.innerHTML = "";
    for (const [par, o] of [...byObl].sort((x, y) => y[1].imm - x[1].imm || y[1].n - x[1].n)) {
      const d = document.createElement("div");
      d.className = "ru " + (o.imm ? "imminent" : "warning"); d.dataset.zone = par;
      const obl = zoneName.get(par) || par;
      d.textContent = (o.n === 1 ? t("zone_1", { obl }) : t("zones_n", { obl, n: o.n })) + (o.imm ? t("imminent_n", { n: o.imm }) : "");
      d.addEventListener("click", () => showZone(par));
      ru.appendChild(d);
    }
  }
  function rerenderAlerts() {
    if (st.mode === "live" && st.lastAlerts) showAlerts(st.lastAlerts, st.lastRollup);
  }
  // Zoom to a zone and say why it is alerted: level, probability, ETA, certainty, tracks, the engine's reason.
  function showZone(id) {
    const f = cells.get(id), l = oblasts.get(id);
    const b = f ? cellBounds(f) : l ? l.getBounds() : null;
    if (!b) return;
    // Leaflet ignores a new view while a zoom animation runs (the page's own fits, a pinch): go there after it
    const go = () => map.fitBounds(b.pad(f ? 1.5 : 0.05), { ...fitPad, maxZoom: 10 });
    if (map._animatingZoom) map.once("zoomend", go); else go();
    const a = (st.activeAlerts || []).find((x) => x.zone === id);
    const el = document.createElement("div");
    el.className = "reason";
    const h = document.createElement("b"); h.textContent = displayName(id); el.appendChild(h);
    const lines = [];
    if (a) {
      lines.push(`${t(a.level === "imminent" ? "imminent" : "warning")} ` + t("since", { time: fmtTime(a.start), dur: fmtDur(nowT() - a.start) }));
      if (a.probability != null) lines.push(t("prob", { p: (a.probability * 100).toFixed(0) }));
      if (a.eta_s != null) lines.push(t("first_arrival", { eta: fmtEta(a.eta_s) }));
      if (a.certainty) lines.push(t("certainty", { c: a.certainty }));
      lines.push(t("tracks_list", { list: a.tracks.join(", ") || t("none") }));
      if (a.reason) lines.push(t("why", { r: a.reason }));
    } else lines.push(t("no_alert"));
    for (const t of lines) { const d = document.createElement("div"); d.textContent = t; el.appendChild(d); }
    L.popup({ maxWidth: 320 }).setLatLng(b.getCenter()).setContent(el).openOn(map);
    st.shownZone = id;
  }
  st.showZone = showZone;

  // ---------------------------------------------------------------------------------------------- health
  // Three separate ages: the link to the service, the sensor feed, the pipeline step.
  function setFeed() {
    const el = $("feed");
    const linkAge = (performance.now() - st.lastMsgWall) / 1000, silent = linkAge > STALL_S;
    const s = st.lastStatus;
    $("h-link").textContent = t("link", { age: st.lastMsgWall ? fmtDur(linkAge) : "–" });
    $("h-link").className = "hb " + (silent ? "bad" : "ok");
    const dataAge = s && s.last_detection_age_s != null ? s.last_detection_age_s : null;
    $("h-data").textContent = t("data", { age: dataAge == null ? "–" : fmtDur(dataAge) });
    $("h-data").className = "hb " + (s && s.feed_stalled ? "bad" : "ok");
    const stepS = s ? s.step_ms_last / 1000 : null;
    $("h-lag").textContent = t("step", { dt: stepS == null ? "–" : stepS < 1 ? (stepS * 1000).toFixed(0) + " ms" : stepS.toFixed(1) + " s" });
    $("h-lag").className = "hb " + (s && s.step_s && stepS > 4 * s.step_s ? "bad" : "ok");
    if (st.mode === "history") { el.className = "feed history"; el.textContent = t("feed_history"); return; }
    const ended = s && s.replay_done;
    const stalled = silent || (st.feedStalled && !ended);
    el.className = "feed " + (ended && !silent ? "ended" : stalled ? "stalled" : "live");
    el.textContent = t(silent ? "feed_none" : ended ? "feed_ended" : st.feedStalled ? "feed_stalled" : "feed_live");
    st.stalledShown = stalled;
  }
  setInterval(setFeed, 500);

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
                             location.pathname.replace(/[^/]*$/, "") + "api/v1/ws");
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      st.msgs++;
      st.lastMsgWall = performance.now();
      if (m.type === "tracks" && st.mode === "live") showTracks(m, true);
      else if (m.type === "alerts") {
        st.lastAlerts = m.active; st.lastRollup = m.rollup;
        if (st.mode === "live") showAlerts(m.active, m.rollup);
      } else if (m.type === "status") {
        const firstClock = !st.serverT;
        st.lastStatus = m; st.feedStalled = m.feed_stalled; st.serverT = m.t;
        if (st.mode === "live") setClock(m.t);
        // alerts shown before the service's clock arrived gave their durations from this device's clock (a replay's
        // night is hours back): draw them again on the service's time
        if (firstClock) rerenderAlerts();
      }
    };
    ws.onclose = () => setTimeout(connect, 1000);
  }
  connect();

  // ---------------------------------------------------------------------------------------------- timeline
  // Seconds back from the newest server time (up to 6 h); 0 = live. Shows the newest stored state of each track
  // within 30 s before that instant (stored at most 1 Hz, sparser under load) and the alerts active then.
  const scrub = $("scrub");
  let playTimer = null;
  async function showHistory(t) {
    st.mode = "history";
    st.historyT = t;
    setFeed();  // the feed badge says HISTORY at once, not at its next half-second refresh
    const back = t - nowT();
    $("scrub-label").textContent = `${fmtTime(t)} (${tr("ago", { dur: fmtDur(-back) })})`;
    $("scrub-label").title = fmtUtc(t);
    const rows = await (await fetch(`api/v1/history/states?t0=${t - HISTORY_LOOKBACK_S}&t1=${t}`)).json();
    const last = new Map();
    for (const r of rows) last.set(r.track, r);
    const cols = { t, track: [], status: [], lat: [], lon: [], alt_m: [], ve: [], vn: [], vu: [], pos_sigma_m: [],
                   class: [], target_id: [], identity_flag: [] };  // the class as stored then (null: none known)
    for (const r of last.values()) for (const k of Object.keys(cols)) if (k !== "t") cols[k].push(r[k] ?? null);
    if (st.mode !== "history") return;  // went live while fetching
    showTracks(cols, playTimer !== null);
    const alerts = await (await fetch(`api/v1/alerts?since=${t}`)).json();
    if (st.mode === "history") showAlerts(alerts.filter((a) => a.start <= t && (a.end == null || a.end >= t)), {});
    st.historyShown = cols.track.length;
  }
  st.historyLookbackS = HISTORY_LOOKBACK_S;
  scrub.addEventListener("change", () => {
    const back = Number(scrub.value);
    if (back === 0) { goLive(); return; }
    showHistory(nowT() + back);
  });
  function stopPlay() { if (playTimer) { clearInterval(playTimer); playTimer = null; } $("play").textContent = "▶ 30x"; }
  $("play").addEventListener("click", () => {
    if (playTimer) { stopPlay(); return; }
    if (st.mode !== "history") { scrub.value = -1800; showHistory(nowT() - 1800); }
    $("play").textContent = "❚❚";
    playTimer = setInterval(() => {
      const t = st.historyT + 30, now = nowT();
      if (t >= now) { goLive(); return; }
      scrub.value = Math.round(t - now);
      showHistory(t);
    }, 1000);
  });
  function goLive() { stopPlay(); st.mode = "live"; scrub.value = 0; $("scrub-label").textContent = t("live_label");
                      if (st.lastAlerts) showAlerts(st.lastAlerts, st.lastRollup); setFeed(); }
  $("live").addEventListener("click", goLive);

  // History at a point: right-click (long-press on a phone) asks the store what flew within 2 km in the last 12 h.
  map.on("contextmenu", async (e) => {
    const t1 = nowT(), t0 = t1 - 12 * 3600;
    const { lat, lng } = e.latlng;
    const popup = L.popup().setLatLng(e.latlng).setContent("searching…").openOn(map);
    const url = `api/v1/history/near?lat=${lat.toFixed(6)}&lon=${lng.toFixed(6)}&radius_m=2000&t0=${t0}&t1=${t1}`;
    const rows = await (await fetch(url)).json();
    const el = document.createElement("div");
    el.className = "near";
    el.textContent = rows.length ? `${rows.length} tracks within 2 km in the last 12 h:` : "nothing within 2 km in the last 12 h";
    for (const r of rows.slice(0, 20)) {
      const d = document.createElement("div");
      d.textContent = `${r.track}: ${fmtTime(r.first_t)}–${fmtTime(r.last_t)}, closest ${(r.closest_m / 1000).toFixed(2)} km`;
      el.appendChild(d);
    }
    popup.setContent(el);
    st.nearResult = rows;
  });

  // Frame times (ms between animation frames) for the responsiveness benchmark; last 3,600 kept.
  let prev = performance.now();
  function frame(now) { st.frameMs.push(now - prev); prev = now; if (st.frameMs.length > 3600) st.frameMs.shift();
                        requestAnimationFrame(frame); }
  requestAnimationFrame(frame);
})();
