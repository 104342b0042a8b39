"""The investigator's report of one incident: HTML and PDF (WeasyPrint), plus a FollowTheMoney export.

Sections: incident and custody (log head, signing key, the custody log and the hash manifest of every original),
track map and launch-area probabilities (from ``skytrace forensics link``), photo sheet, component table with
attribution scores and explanations, sanctions hits with dataset version and the reviewer's decision, stated
limits. Reading an original for the photo sheet is an access and is logged as such.

WeasyPrint: https://doc.courtbouillon.org/weasyprint/ (HTML/CSS to PDF).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
from pathlib import Path

from skytrace.errors import SkytraceError
from skytrace.forensics.custody import Vault
from skytrace.forensics.registry import Registry

LIMITS = [
    "The presence of a component proves nothing about how it reached the drone: diversion, resale, counterfeit and "
    "stock bought before any restriction all leave the same marking.",
    "Attribution scores compare markings with the user's reference catalogue; a part missing from the catalogue "
    "cannot be attributed, and a catalogue entry is only as good as its sources (reliability grade shown).",
    "Track links and launch-area probabilities are model outputs (docs/forensics.md): they rank hypotheses under "
    "stated assumptions (fall and glide model, dog-leg route model, the catalogue of launch areas) and are not "
    "proof of origin on their own. Measured accuracy on simulated nights is given in docs/forensics.md.",
    "Sanctions hits are name matches against the dataset version shown; only a reviewer's decision turns a hit into "
    "a finding, and a list's absence of a name is not evidence of innocence.",
    "The custody log proves integrity from intake on; it cannot prove what happened to an item before intake. "
    "Truncation of the log's end is detected only against a head hash recorded outside the vault.",
]

CSS = """
@page { size: A4; margin: 16mm 14mm; @bottom-right { content: "page " counter(page) " of " counter(pages);
  font-size: 8pt; color: #555; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; color: #111; }
h1 { font-size: 16pt; margin: 0 0 4pt 0; } h2 { font-size: 12pt; border-bottom: 1px solid #999; margin-top: 14pt; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; } th, td { border: 1px solid #bbb; padding: 2pt 3pt;
  vertical-align: top; text-align: left; } th { background: #eee; }
td.mono, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; word-break: break-all; }
.flag { color: #a00; font-weight: bold; } .pending { color: #a60; font-weight: bold; }
.sheet { display: flex; flex-wrap: wrap; } .photo { width: 30%; margin: 4pt; font-size: 7pt; }
.photo img { width: 100%; border: 1px solid #888; } img.map { width: 100%; }
.small { font-size: 7.5pt; color: #444; }
"""


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x))


def _utc(t: float | None) -> str:
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(float(t), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: list[str], rows: list[list[str]], mono: set[int] | None = None) -> str:
    mono = mono or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class='mono'>{c}</td>" if i in mono else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def track_map_png(links: list[dict], tracks_path: str | None, debris: list[dict], areas) -> bytes:
    """A map of the linked tracks (whole history), the debris and the launch areas (matplotlib, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    want = {t["track"] for ln in links for t in ln["tracks"][:2]}
    if tracks_path and want:
        from skytrace.forensics.tracks import read_track_histories

        hist = read_track_histories(tracks_path)
        for k, name in enumerate(hist.ids):
            if name in want:
                sl = hist.rows(k)
                ax.plot(hist.lon[sl], hist.lat[sl], "-", lw=1.2, label=f"track {name}")
    for a in areas:
        ax.plot(a.lon, a.lat, "^", color="#a00", ms=7)
        ax.annotate(a.name, (a.lon, a.lat), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for d in debris:
        ax.plot(d["lon"], d["lat"], "x", color="k", ms=8, mew=2)
        ax.annotate(d["id"], (d["lon"], d["lat"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    mean_lat = sum(d["lat"] for d in debris) / len(debris) if debris else 50.0
    ax.set_aspect(1.0 / max(0.2, math.cos(math.radians(mean_lat))))
    ax.grid(alpha=0.3)
    if want:
        ax.legend(fontsize=7, loc="best")
    ax.set_title("Linked tracks (whole history), debris (x) and launch areas (triangles)", fontsize=9)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _thumbnail(path: Path) -> bytes | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((600, 600))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            return buf.getvalue()
    except (OSError, ValueError, SyntaxError):
        return None


def build_html(registry: Registry, vault: Vault, incident_id: str, actor: str, links_path: str | None = None,
               tracks_path: str | None = None, areas_path: str | None = None) -> str:
    from skytrace.forensics.inputs import read_launch_areas

    inc = registry.get("incident", incident_id)
    debris = registry.list("debris", {"incident": incident_id})
    deb_ids = {d["id"] for d in debris}
    comps = [c for c in registry.list("component") if c["debris"] in deb_ids]
    comp_ids = {c["id"] for c in comps}
    media = [m for m in registry.list("media") if m["debris"] in deb_ids or m["component"] in comp_ids]
    atts = [a for a in registry.list("attribution") if a["component"] in comp_ids]
    manufacturers = {a["manufacturer"] for a in atts if a["is_match"]}
    hits = [h for h in registry.list("screening") if h["subject"] in manufacturers]
    n, head = vault.head()
    key = (vault.trusted_path.read_text().split() or [""])[0] if vault.trusted_path.is_file() else ""
    parts = [f"<html><head><meta charset='utf-8'><title>Incident {_e(incident_id)}</title><style>{CSS}</style>"
             "</head><body>"]
    parts.append(f"<h1>Incident report {_e(incident_id)}</h1>")
    parts.append(f"<p>{_e(inc['description'])}</p>")
    parts.append(_table(["time", "place", "position", "linked tracks"],
                        [[_e(_utc(inc["t"])), _e(inc["place"]), f"{inc['lat']:.5f}, {inc['lon']:.5f}",
                          _e(", ".join(json.loads(inc["tracks"] or "[]")))]]))
    parts.append(f"<p class='small'>Generated {_e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC'))} by "
                 f"{_e(actor)}. Custody log head at generation: entry {n - 1}, hash <span class='mono'>{head}</span>;"
                 f" signing key (Ed25519) <span class='mono'>{_e(key)}</span>. Record both outside the vault: they "
                 "let anyone detect later changes (skytrace forensics verify --head ... --trusted-key ...).</p>")
    # debris
    parts.append("<h2>Debris items</h2>")
    parts.append(_table(["id", "recovered", "position", "by", "condition", "airframe markings", "serial"],
                        [[_e(d["id"]), _e(_utc(d["t_recovered"])), f"{d['lat']:.5f}, {d['lon']:.5f}",
                          _e(d["recovered_by"]), _e(d["condition"]), _e(d["airframe_markings"]), _e(d["serial"])]
                         for d in debris]))
    # tracks and launch areas
    parts.append("<h2>Track links and launch areas</h2>")
    if links_path:
        areas = read_launch_areas(areas_path)
        links = [json.loads(x) for x in Path(links_path).read_text().splitlines() if x.strip()]
        links = [ln for ln in links if ln["debris"] in deb_ids]
        parts.append(f"<img class='map' src='{_png_data_uri(track_map_png(links, tracks_path, debris, areas))}'/>")
        rows = []
        for ln in links:
            trk = ", ".join(f"{_e(t['track'])} ({t['p']:.2f})" for t in ln["tracks"][:3]) or "none"
            la = ", ".join(f"{_e(a['id'])} ({a['p']:.2f})" for a in ln["launch_areas"][:4])
            rows.append([_e(ln["debris"]), trk, f"{ln.get('p_none', 0):.2f}", la])
        parts.append(_table(["debris", "tracks (p)", "p none", "launch areas (p), best first"], rows))
    else:
        parts.append("<p>No links file was given (skytrace forensics link).</p>")
    # photos
    parts.append("<h2>Photo sheet</h2><div class='sheet'>")
    for m in media:
        p = vault.access(m["sha256"], actor, "report photo sheet")
        thumb = _thumbnail(p)
        img = f"<img src='{_png_data_uri(thumb)}'/>" if thumb else "<p>(not an image)</p>"
        exif = json.loads(m["exif"] or "{}")
        when = exif.get("DateTimeOriginal") or exif.get("DateTime") or ""
        parts.append(f"<div class='photo'>{img}<br/>{_e(m['name'])} — {_e(m['debris'] or m['component'])}"
                     f"<br/>{_e(when)}<br/><span class='mono'>{m['sha256']}</span></div>")
    parts.append("</div>")
    # components
    parts.append("<h2>Components and attribution</h2>")
    rows = []
    for c in comps:
        cand = sorted((a for a in atts if a["component"] == c["id"]), key=lambda a: a["rank"])
        best = cand[0] if cand else None
        flags = " ".join(f"<span class='flag'>{_e(x)}</span>" for x in ([c["handling_note"]] if c["handling_note"]
                                                                         else []))
        if c["markings_removed"]:
            flags += " <span class='flag'>markings removed</span>"
        att = "not attributed"
        if best:
            verdict = "MATCH" if best["is_match"] else "below threshold"
            att = (f"<b>{_e(best['manufacturer'])}</b> ({_e(best['catalogue_id'])}, {_e(best['country'])}, "
                   f"sources grade {_e(best['reliability'])}) score {best['score']:.2f} {verdict}<br/>"
                   f"<span class='small'>{_e(best['explanation'])}</span>")
        rows.append([_e(c["id"]), _e(c["category"]), _e(c["marking_raw"]), _e(c["serial"]), _e(c["date_code"]),
                     att + (" " + flags if flags else "")])
    parts.append(_table(["component", "category", "marking as read", "serial", "date code", "best candidate"],
                        rows))
    # sanctions
    parts.append("<h2>Sanctions screening</h2>")
    if hits:
        parts.append(_table(["subject", "listed entity", "dataset (version)", "score", "decision"],
                            [[_e(h["subject"]), f"{_e(h['entity_name'])} <span class='mono'>{_e(h['entity_id'])}"
                              "</span>", f"{_e(h['dataset'])} <span class='mono'>{_e(h['dataset_version'])}</span>",
                              f"{h['score']:.2f}<br/><span class='small'>{_e(h['explanation'])}</span>",
                              (f"{_e(h['decision'])} by {_e(h['reviewer'])} {_e(h['decided_at'])} {_e(h['note'])}"
                               if h["decision"] != "pending" else "<span class='pending'>NOT REVIEWED</span>")]
                             for h in hits]))
    else:
        parts.append("<p>No screening hits for the attributed manufacturers (or no screening was run).</p>")
    # custody
    parts.append("<h2>Hash manifest of originals</h2>")
    parts.append(_table(["file", "SHA-256", "linked to"],
                        [[_e(m["name"]), m["sha256"], _e(m["debris"] or m["component"])] for m in media], {1}))
    parts.append("<h2>Custody log</h2>")
    rows = []
    for e in vault.entries():
        det = ", ".join(f"{k}={v}" for k, v in e["details"].items() if k != "public_key")
        rows.append([str(e["seq"]), _e(e["time"]), _e(e["actor"]), _e(e["action"]),
                     _e((e["object"] or "")[:16]), _e(det[:160]), e["hash"][:16]])
    parts.append(_table(["#", "time (UTC)", "actor", "action", "object", "details", "hash"], rows, {4, 6}))
    parts.append("<h2>Limits</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in LIMITS) + "</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(registry: Registry, vault: Vault, incident_id: str, out_dir: str | Path, actor: str,
                 links_path: str | None = None, tracks_path: str | None = None, areas_path: str | None = None,
                 pdf: bool = True) -> dict:
    """Write report.html (and report.pdf); log the export with the files' SHA-256 in the custody log."""
    from skytrace.forensics.custody import sha256_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = build_html(registry, vault, incident_id, actor, links_path, tracks_path, areas_path)
    (out / "report.html").write_text(page, encoding="utf-8")
    files = {"report.html": sha256_file(out / "report.html")}
    if pdf:
        try:
            from weasyprint import HTML
        except (ImportError, OSError) as exc:
            raise SkytraceError(f"the PDF report needs WeasyPrint and its system libraries (Pango): "
                                f"pip install 'skytrace[forensics]' ({exc})") from None
        HTML(string=page, base_url=str(out)).write_pdf(out / "report.pdf")
        files["report.pdf"] = sha256_file(out / "report.pdf")
    vault.append("export", actor, None, {"incident": incident_id, **files})
    return files


def export_ftm(registry: Registry, incident_id: str) -> list[dict]:
    """The incident as FollowTheMoney entities: an Event, the attributed manufacturers (Company) and a Note per
    component linking them (so the findings can be loaded into FtM tools next to sanctions data)."""
    try:
        from followthemoney import model
    except ImportError:  # pragma: no cover
        raise SkytraceError("FtM export needs the forensics extra: pip install 'skytrace[forensics]'") from None
    inc = registry.get("incident", incident_id)
    ev = model.make_entity("Event")
    ev.make_id("skytrace-incident", incident_id)
    ev.add("name", f"Incident {incident_id}")
    ev.add("date", dt.datetime.fromtimestamp(inc["t"], dt.UTC).strftime("%Y-%m-%d"))
    ev.add("summary", inc["description"] or f"Downed drone at {inc['lat']:.4f}, {inc['lon']:.4f}")
    if inc["place"]:
        ev.add("location", inc["place"])
    out = [ev]
    deb_ids = {d["id"] for d in registry.list("debris", {"incident": incident_id})}
    comps = {c["id"]: c for c in registry.list("component") if c["debris"] in deb_ids}
    companies: dict[str, object] = {}
    for a in registry.list("attribution"):
        if a["component"] not in comps or not a["is_match"]:
            continue
        co = companies.get(a["manufacturer"])
        if co is None:
            co = model.make_entity("Company")
            co.make_id("skytrace-manufacturer", a["manufacturer"])
            co.add("name", a["manufacturer"])
            if a["country"] and len(a["country"]) == 2:
                co.add("country", a["country"].lower())
            companies[a["manufacturer"]] = co
            out.append(co)
            ev.add("involved", co.id)
        note = model.make_entity("Note")
        note.make_id("skytrace-component", a["component"], a["catalogue_id"])
        c = comps[a["component"]]
        note.add("description", f"Component {c['id']} ({c['category']}), marking {c['marking_raw']!r}: "
                                f"{a['explanation']}")
        note.add("entity", co.id)
        out.append(note)
    return [e.to_dict() for e in out]
