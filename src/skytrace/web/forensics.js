// The evidence registry page: lists incidents, debris, components and media from /api/v1/forensics, shows the
// custody log's verification, and registers records with the evidence key. No external requests; every value is
// inserted as text (textContent), never as HTML: the registry holds what investigators typed.
"use strict";
(function () {
  const API = "api/v1/forensics";
  const state = { incident: null, debris: null, loaded: 0, gen: 0 };
  window.skytraceForensics = state;

  function utc(t) {
    if (t === null || t === undefined || !isFinite(t)) return "";
    return new Date(t * 1000).toISOString().replace(".000Z", "Z");
  }

  async function get(path) {
    const r = await fetch(`${API}/${path}`, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  function fill(tableId, rows, cells, onPick, selected) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const [value, cls] of cells(row)) {
        const td = document.createElement("td");
        td.textContent = value === null || value === undefined ? "" : String(value);
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      tr.dataset.id = row.id || row.sha256;
      if (onPick) {
        tr.classList.add("pick");
        if (selected && selected === tr.dataset.id) tr.classList.add("sel");
        tr.addEventListener("click", () => onPick(row));
      }
      body.appendChild(tr);
    }
  }

  async function loadCustody(gen) {
    const el = document.getElementById("custody");
    try {
      const c = await get("custody");
      if (gen !== state.gen) return;
      el.className = "custody " + (c.intact ? "ok" : "bad");
      el.textContent = c.intact ? `custody log intact: ${c.entries} entries` :
        `custody log TAMPERED: ${c.problems} problem(s)`;
      el.title = c.intact ? `head ${c.head}` : c.findings.join("\n");
      state.custody = c;
    } catch (e) {
      el.className = "custody unknown";
      el.textContent = "custody log: " + e.message;
    }
  }

  async function loadIncidents(gen) {
    const d = await get("incidents?limit=500");
    if (gen !== state.gen) return;  // a newer refresh (another click) owns the tables
    fill("incidents", d.items, (r) => [[r.id], [utc(r.t)], [r.place], [`${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}`],
      [JSON.parse(r.tracks || "[]").join(", ")]], (r) => { state.incident = r.id; state.debris = null; refresh(); },
      state.incident);
  }

  async function loadDebris(gen) {
    const q = state.incident ? `&incident=${encodeURIComponent(state.incident)}` : "";
    const d = await get(`debris?limit=500${q}`);
    if (gen !== state.gen) return;  // a newer refresh (another click) owns the tables
    fill("debris", d.items, (r) => [[r.id], [r.incident], [utc(r.t_recovered)], [r.recovered_by], [r.condition],
      [r.airframe_markings]], (r) => { state.debris = r.id; refresh(); }, state.debris);
    document.getElementById("deb-filter").textContent = state.incident ? `of ${state.incident}` : "";
  }

  async function loadComponents(gen) {
    const q = state.debris ? `&debris=${encodeURIComponent(state.debris)}` : "";
    const d = await get(`components?limit=500${q}`);
    if (gen !== state.gen) return;  // a newer refresh (another click) owns the tables
    fill("components", d.items, (r) => [[r.id], [r.debris], [r.category], [r.marking_raw, "mono"],
      [r.part_number, "mono"], [r.date_code], [r.handling_note || (r.markings_removed ? "markings removed" : ""),
        r.handling_note ? "warn" : ""]]);
    // set after the rows: a test (or a person) seeing "of X" sees X's rows
    document.getElementById("comp-filter").textContent = state.debris ? `of ${state.debris}` : "";
  }

  async function loadMedia(gen) {
    const q = state.debris ? `&debris=${encodeURIComponent(state.debris)}` : "";
    const d = await get(`media?limit=500${q}`);
    if (gen !== state.gen) return;  // a newer refresh (another click) owns the tables
    fill("media", d.items, (r) => {
      let exif = {};
      try { exif = JSON.parse(r.exif || "{}"); } catch (e) { exif = {}; }
      return [[r.sha256, "mono"], [r.name], [r.debris], [r.component], [exif.DateTime || ""]];
    });
  }

  async function refresh() {
    const gen = ++state.gen;
    await Promise.all([loadCustody(gen), loadIncidents(gen), loadDebris(gen), loadComponents(gen), loadMedia(gen)]);
    if (gen === state.gen) state.loaded += 1;
  }

  function showFields() {
    const kind = document.getElementById("f-kind").value;
    for (const el of document.querySelectorAll("#add-form label[class]")) {
      el.hidden = !el.classList.contains(`k-${kind}`);
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const kind = f.get("kind");
    const out = document.getElementById("add-result");
    const body = { actor: f.get("actor"), id: f.get("id") };
    const fields = { incidents: ["time", "lat", "lon", "place"], debris: ["incident", "time", "lat", "lon",
      "recovered_by"], components: ["debris", "category", "marking_raw", "part_number"] }[kind];
    for (const k of fields) {
      const v = f.get(k);
      if (v === null || v === "") continue;
      body[k] = (k === "lat" || k === "lon") ? Number(v) : v;
    }
    const r = await fetch(`${API}/${kind}`, { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${f.get("key")}` } });
    const d = await r.json().catch(() => ({}));
    if (r.ok) {
      out.className = "ok";
      out.textContent = `registered ${d.id}`;
    } else {
      out.className = "err";
      out.textContent = typeof d.detail === "string" ? d.detail :
        (Array.isArray(d.detail) ? d.detail.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ") :
          `HTTP ${r.status}`);
    }
    await refresh();
  }

  document.getElementById("f-kind").addEventListener("change", showFields);
  document.getElementById("add-form").addEventListener("submit", submit);
  showFields();
  refresh();
})();
