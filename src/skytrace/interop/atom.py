"""Atom 1.0 (RFC 4287) index of CAP messages: the feed CAP aggregators poll (e.g. the WMO alert hub convention:
one entry per CAP message, linking to it with type ``application/cap+xml``)."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from skytrace.errors import FormatError

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_CAP_BYTES = 1 << 20


def _cap_fields(xml: bytes, source: str) -> dict:
    if len(xml) > MAX_CAP_BYTES:
        raise FormatError(source, "CAP message over 1 MiB")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FormatError(source, f"malformed XML: {exc}") from None
    if root.tag != f"{{{CAP_NS}}}alert":
        raise FormatError(source, "not a CAP 1.2 alert")

    def text(path: str) -> str | None:
        e = root.find(path, {"c": CAP_NS})
        return e.text if e is not None else None

    out = {k: text(f"c:{k}") for k in ("identifier", "sender", "sent", "status", "msgType")}
    for k in ("identifier", "sender", "sent"):
        if not out[k]:
            raise FormatError(source, f"CAP message without {k}")
    out["headline"] = text("c:info/c:headline") or text("c:info/c:event") or out["identifier"]
    out["summary"] = text("c:info/c:description")
    out["area"] = text("c:info/c:area/c:areaDesc")
    try:
        datetime.fromisoformat(out["sent"])
    except ValueError:
        raise FormatError(source, f"CAP sent {out['sent']!r} is not a date-time") from None
    return out


def cap_atom_feed(messages: list[tuple[str, bytes]], feed_id: str, self_url: str,
                  title: str = "skytrace drone alerts (CAP 1.2)", author: str = "skytrace") -> bytes:
    """Atom feed of ``messages`` = [(url of the CAP file, CAP XML bytes)], newest first."""
    entries = []
    for url, xml in messages:
        entries.append((url, _cap_fields(xml, url)))
    entries.sort(key=lambda e: datetime.fromisoformat(e[1]["sent"]), reverse=True)
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})

    def el(parent, tag, text=None, **attrib):
        e = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", **attrib)
        if text is not None:
            e.text = text
        return e

    el(root, "id", feed_id)
    el(root, "title", title)
    updated = entries[0][1]["sent"] if entries else "1970-01-01T00:00:00+00:00"
    el(root, "updated", updated)
    a = el(root, "author")
    el(a, "name", author)
    el(root, "link", rel="self", href=self_url, type="application/atom+xml")
    for url, f in entries:
        e = el(root, "entry")
        el(e, "id", f"urn:cap:{f['sender']}:{f['identifier']}")
        head = f["headline"]
        if f["msgType"] and f["msgType"] != "Alert":
            head = f"{f['msgType']}: {head}"
        el(e, "title", head)
        el(e, "updated", f["sent"])
        el(e, "published", f["sent"])
        if f["summary"]:
            el(e, "summary", f["summary"])
        if f["area"]:
            el(e, "category", term=f["area"])
        el(e, "link", rel="alternate", href=url, type="application/cap+xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
