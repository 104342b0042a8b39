// skytrace live map: zones as the base layer (no tiles: works offline), sensors, tracks with trails and
// constant-velocity predicted paths, zones coloured by alert state, active alerts, timeline, stale-feed indicator.
// One canvas renderer for everything (1,000+ moving tracks stay cheap); state exposed on window.skytrace for tests.
"use strict";
(function () {
  const TRAIL_POINTS = 60, PREDICT_S = 300, STALL_S = 5;
  const st = window.skytrace = { tracks: new Map(), zoneAlert: new Set(), frameMs: [], msgs: 0, lastMsgWall: 0,
                                 mode: "live", feedStalled: true, lastStatus: null };
  const renderer = L.canvas({ padding: 0.2 });
  const map = L.map("map", { preferCanvas: true, renderer, zoomControl: false, attributionControl: false,
                             zoomSnap: 0.25 }).setView([49.0, 31.5], 6);
  st.map = map;
  L.control.zoom({ position: "bottomleft" }).addTo(map);
  map.createPane("tracks").style.zIndex = 450;  // tracks above zones and sensors, on their own canvas
  const trackRenderer = L.canvas({ padding: 0.2, pane: "tracks" });
  const zoneLayers = new Map();
  // an alerted zone is filled red; a parent zone (an oblast) with an alerted cell inside is outlined ("partial")
  const zoneStyle = (id) => st.zoneAlert.has(id)
    ? { color: "#ff6b6b", weight: 2, fillColor: "#e5484d", fillOpacity: 0.45 }
    : (st.rollup && st.rollup[id] === "partial"
      ? { color: "#ff9f43", weight: 2, dashArray: "6 4", fillColor: "#1c2836", fillOpacity: 0.6 }
      : { color: "#4b5a6b", weight: 1, fillColor: "#1c2836", fillOpacity: 0.6 });
  const trackLayer = L.layerGroup().addTo(map);
  const $ = (id) => document.getElementById(id);
  const fitPad = { paddingTopLeft: [10, 40], paddingBottomRight: [10, 10] };
  const fmtTime = (t) => new Date(t * 1000).toISOString().substring(11, 19) + "Z";

  fetch("api/v1/zones").then((r) => r.json()).then((gj) => {
    const layer = L.geoJSON(gj, { renderer, style: (f) => zoneStyle(String(f.properties.id)),
      onEachFeature: (f, l) => { zoneLayers.set(String(f.properties.id), l); l.bindTooltip(f.properties.name); } });
    layer.addTo(map);
    layer.bringToBack();
    if (gj.features.length && !st.sensorBounds) map.fitBounds(layer.getBounds(), fitPad);
    st.zonesLoaded = gj.features.length;
  });
  fetch("api/v1/sensors").then((r) => r.json()).then((doc) => {
    const pts = doc.sensors.filter((s) => s.lat != null).map((s) => [s.lat, s.lon]);
    if (pts.length > 1) {  // the network's area is where the picture is: start there
      st.sensorBounds = L.latLngBounds(pts).pad(0.15);
      map.fitBounds(st.sensorBounds, fitPad);
    }
    for (const s of doc.sensors) {
      if (s.lat == null) continue;
      L.circleMarker([s.lat, s.lon], { renderer, radius: 2.5, color: "#3fb9ff", weight: 1, fillOpacity: 0.8 })
        .bindTooltip(`${s.id} (${s.kind})`).addTo(map);
    }
    st.sensorsLoaded = doc.sensors.length;
  });

  function predicted(lat, lon, ve, vn) {
    const dlat = (vn * PREDICT_S) / 111320, dlon = (ve * PREDICT_S) / (111320 * Math.cos((lat * Math.PI) / 180));
    return [[lat, lon], [lat + dlat, lon + dlon]];
  }

  function showTracks(m, keepTrails) {
    const seen = new Set();
    for (let i = 0; i < m.track.length; i++) {
      const id = m.track[i], ll = [m.lat[i], m.lon[i]];
      seen.add(id);
      let tr = st.tracks.get(id);
      if (!tr) {
        tr = { trail: [], marker: L.circleMarker(ll, { renderer: trackRenderer, radius: 4, color: "#ffb020", weight: 2,
                                                       fillOpacity: 0.9 }).addTo(trackLayer),
               line: L.polyline([], { renderer: trackRenderer, color: "#ffb020", weight: 1.5, opacity: 0.7 }).addTo(trackLayer),
               pred: L.polyline([], { renderer: trackRenderer, color: "#ffb020", weight: 1, dashArray: "4 4",
                                      opacity: 0.8 }).addTo(trackLayer) };
        tr.marker.bindTooltip(() => `${id} ${tr.alt.toFixed(0)} m ${(tr.speed * 3.6).toFixed(0)} km/h`);
        st.tracks.set(id, tr);
      }
      tr.alt = m.alt_m[i];
      tr.speed = Math.hypot(m.ve[i], m.vn[i]);
      if (!keepTrails) tr.trail.length = 0;
      tr.trail.push(ll);
      if (tr.trail.length > TRAIL_POINTS) tr.trail.shift();
      tr.marker.setLatLng(ll);
      tr.line.setLatLngs(tr.trail);
      tr.pred.setLatLngs(predicted(m.lat[i], m.lon[i], m.ve[i], m.vn[i]));
    }
    for (const [id, tr] of st.tracks) {
      if (!seen.has(id)) {
        trackLayer.removeLayer(tr.marker); trackLayer.removeLayer(tr.line); trackLayer.removeLayer(tr.pred);
        st.tracks.delete(id);
      }
    }
    $("counts").textContent = `${m.track.length} tracks`;
    if (m.t) $("clock").textContent = fmtTime(m.t);
  }

  function showAlerts(active, rollup) {
    const zones = new Set(active.map((a) => a.zone));
    const oldPartial = Object.keys(st.rollup || {});
    st.rollup = rollup || {};
    const changed = new Set([...zones, ...st.zoneAlert, ...oldPartial, ...Object.keys(st.rollup)]);
    st.zoneAlert = zones;
    for (const id of changed) { const l = zoneLayers.get(id); if (l) l.setStyle(zoneStyle(id)); }
    const ul = $("alerts");
    ul.innerHTML = "";
    if (!active.length) ul.innerHTML = '<li class="none">none</li>';
    for (const a of active) {
      const li = document.createElement("li");
      const name = zoneLayers.get(a.zone)?.feature?.properties?.name || a.zone;
      const eta = a.eta_s != null ? `, ETA ${Math.max(0, a.eta_s / 60).toFixed(1)} min` : "";
      const p = a.probability != null ? `, P ${(a.probability * 100).toFixed(0)}%` : "";
      li.textContent = `${name} — ${a.level} since ${fmtTime(a.start)} (${a.tracks.length} tracks${eta}${p})`;
      li.dataset.zone = a.zone;
      ul.appendChild(li);
    }
    $("n-alerts").textContent = active.length;
  }

  function setFeed() {
    const el = $("feed");
    const silent = (performance.now() - st.lastMsgWall) / 1000 > STALL_S;
    if (st.mode === "history") { el.className = "feed history"; el.textContent = "HISTORY"; return; }
    const stalled = silent || st.feedStalled;
    el.className = "feed " + (stalled ? "stalled" : "live");
    el.textContent = silent ? "NO CONNECTION" : (st.feedStalled ? "FEED STALLED" : "LIVE");
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
      }
      else if (m.type === "status") { st.lastStatus = m; st.feedStalled = m.feed_stalled; st.serverT = m.t; }
    };
    ws.onclose = () => setTimeout(connect, 1000);
  }
  connect();

  // Timeline: seconds back from the newest server time (up to 6 h); 0 = live. Shows the stored track states
  // (1 Hz) and the alert periods at that instant; ▶ plays history forward at 30x until it catches up with live.
  const scrub = $("scrub");
  let playTimer = null;
  async function showHistory(t) {
    st.mode = "history";
    st.historyT = t;
    const back = t - (st.serverT || Date.now() / 1000);
    $("scrub-label").textContent = `${fmtTime(t)} (${(back / 60).toFixed(1)} min)`;
    const rows = await (await fetch(`api/v1/history/states?t0=${t - 1.5}&t1=${t}`)).json();
    const last = new Map();
    for (const r of rows) last.set(r.track, r);
    const cols = { t, track: [], lat: [], lon: [], alt_m: [], ve: [], vn: [] };
    for (const r of last.values()) for (const k of Object.keys(cols)) if (k !== "t") cols[k].push(r[k]);
    if (st.mode !== "history") return;  // went live while fetching
    showTracks(cols, playTimer !== null);
    const alerts = await (await fetch(`api/v1/alerts?since=${t}`)).json();
    if (st.mode === "history") showAlerts(alerts.filter((a) => a.start <= t && (a.end == null || a.end >= t)));
    st.historyShown = cols.track.length;
  }
  scrub.addEventListener("change", () => {
    const back = Number(scrub.value);
    if (back === 0) { goLive(); return; }
    showHistory((st.serverT || Date.now() / 1000) + back);
  });
  function stopPlay() { if (playTimer) { clearInterval(playTimer); playTimer = null; } $("play").textContent = "▶ 30x"; }
  $("play").addEventListener("click", () => {
    if (playTimer) { stopPlay(); return; }
    if (st.mode !== "history") { scrub.value = -1800; showHistory((st.serverT || Date.now() / 1000) - 1800); }
    $("play").textContent = "❚❚";
    playTimer = setInterval(() => {
      const t = st.historyT + 30;
      const now = st.serverT || Date.now() / 1000;
      if (t >= now) { goLive(); return; }
      scrub.value = Math.round(t - now);
      showHistory(t);
    }, 1000);
  });
  function goLive() { stopPlay(); st.mode = "live"; scrub.value = 0; $("scrub-label").textContent = "live";
                      if (st.lastAlerts) showAlerts(st.lastAlerts, st.lastRollup); }
  $("live").addEventListener("click", goLive);

  // History at a point: right-click (long-press on a phone) asks the store what flew within 2 km in the last 12 h.
  map.on("contextmenu", async (e) => {
    const t1 = st.serverT || Date.now() / 1000, t0 = t1 - 12 * 3600;
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
