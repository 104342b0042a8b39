"""Sanctions screening of manufacturers and suppliers against FollowTheMoney data the user loads.

The list is the user's (an OpenSanctions export in FtM JSON lines, say): skytrace bundles none, since that data's
licence is non-commercial. Each subject (a company name, optionally a country code) becomes an FtM ``Company``;
candidates are pre-selected by rapidfuzz ``token_set_ratio`` on their names (blocking) and scored with
nomenklatura's ``logic-v2`` matcher, whose per-feature explanation is kept. A hit at or above ``threshold`` is
recorded as *pending*: it needs a human decision (``match``, ``no-match`` or ``unsure``, with reviewer and note),
which is logged in the custody log; the report shows every hit with its decision, or NOT REVIEWED.

References: FollowTheMoney data model (followthemoney.tech); nomenklatura matching algorithms
(github.com/opensanctions/nomenklatura).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from skytrace.errors import FormatError, SkytraceError

SCREENED_SCHEMATA = ("LegalEntity", "Company", "Organization", "PublicBody")
DECISIONS = ("match", "no-match", "unsure")
DEFAULT_THRESHOLD = 0.7
BLOCKING_MIN = 60.0


def _libs():
    try:
        from followthemoney import model
        from nomenklatura.matching import LogicV2, ScoringConfig
        from rapidfuzz import fuzz, process
    except ImportError:  # pragma: no cover
        raise SkytraceError("sanctions screening needs the forensics extra: pip install 'skytrace[forensics]'"
                            ) from None
    return model, LogicV2, ScoringConfig, fuzz, process


@dataclass
class EntityList:
    """Entities of an FtM file that can be companies, with the file's name and SHA-256 as its version."""

    entities: list  # FtM entity proxies
    names: list[str]  # one per (entity, name)
    owner: list[int]  # entity index of each name
    dataset: str
    version: str


def load_entities(path: str | os.PathLike, dataset: str | None = None) -> EntityList:
    """Read FtM entities (JSON lines, or one JSON array); keep those of company-like schemata."""
    model, *_ = _libs()
    p = Path(path)
    if not p.is_file():
        raise FormatError(str(p), "file not found")
    raw = p.read_bytes()
    version = "sha256:" + hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8", errors="strict")
    stripped = text.lstrip()
    try:
        items = json.loads(stripped) if stripped.startswith("[") else None
    except ValueError as exc:
        raise FormatError(str(p), f"not valid JSON ({exc})") from None
    if items is None:
        items = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise FormatError(str(p), f"not valid JSON ({exc})", line=i) from None
    entities, names, owner = [], [], []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("schema"), str) or not item.get("id"):
            raise FormatError(str(p), "an FtM entity needs `id` and `schema`", line=i)
        try:
            proxy = model.get_proxy(item)
        except Exception as exc:  # followthemoney raises several types for unknown schemata / bad properties
            raise FormatError(str(p), f"not a valid FtM entity ({exc})", line=i) from None
        if not any(proxy.schema.is_a(s) for s in SCREENED_SCHEMATA):
            continue
        for name in proxy.get("name"):
            names.append(name)
            owner.append(len(entities))
        entities.append(proxy)
    if not entities:
        raise FormatError(str(p), f"no entities of the schemata {', '.join(SCREENED_SCHEMATA)}")
    return EntityList(entities, names, owner, dataset or p.name, version)


@dataclass
class Hit:
    subject: str
    entity_id: str
    entity_name: str
    score: float
    explanation: str


def screen(subjects: list[tuple[str, str]], entities: EntityList, threshold: float = DEFAULT_THRESHOLD
           ) -> list[Hit]:
    """Hits of (name, country code or "") subjects against the entities, best first per subject."""
    model, logic, scoring_config, fuzz, process = _libs()
    cfg = scoring_config.defaults()
    hits: list[Hit] = []
    for name, country in subjects:
        if not name.strip():
            continue
        q = model.make_entity("Company")
        q.id = "subject-" + hashlib.sha256(name.encode()).hexdigest()[:16]
        q.add("name", name)
        if country and len(country) == 2:
            q.add("country", country.lower())
        cand = process.extract(name, entities.names, scorer=fuzz.token_set_ratio, score_cutoff=BLOCKING_MIN,
                               limit=50)
        seen: set[int] = set()
        for _, _, j in cand:
            k = entities.owner[j]
            if k in seen:
                continue
            seen.add(k)
            ent = entities.entities[k]
            res = logic.compare(q, ent, cfg)
            if res.score >= threshold:
                expl = "; ".join(f"{f}: {r.score:.2f} {r.detail or ''}".strip() for f, r in res.explanations.items()
                                 if r.score)
                hits.append(Hit(name, ent.id, ent.caption, round(float(res.score), 4), expl))
    hits.sort(key=lambda h: (h.subject, -h.score))
    return hits


def record_hits(registry, hits: list[Hit], entities: EntityList, actor: str) -> list[dict]:
    """Store hits as pending decisions (one record per subject x entity x dataset version)."""
    out = []
    for h in hits:
        hid = "hit-" + hashlib.sha256(f"{h.subject}|{h.entity_id}|{entities.version}".encode()).hexdigest()[:12]
        if registry.list("screening", {"id": hid}):
            continue
        out.append(registry.insert("screening", {
            "id": hid, "subject": h.subject, "entity_id": h.entity_id, "entity_name": h.entity_name,
            "dataset": entities.dataset, "dataset_version": entities.version, "score": h.score,
            "explanation": h.explanation, "decision": "pending", "reviewer": "", "decided_at": "", "note": ""},
            actor))
    return out


def decide(registry, hit_id: str, decision: str, reviewer: str, note: str = "") -> dict:
    """Record a reviewer's decision on a hit (and log it in the custody log)."""
    if decision not in DECISIONS:
        raise SkytraceError(f"decision must be one of {', '.join(DECISIONS)}")
    if not reviewer.strip():
        raise SkytraceError("a decision needs the reviewer's name")
    registry.get("screening", hit_id)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry.execute("UPDATE forensic_screening SET decision = ?, reviewer = ?, decided_at = ?, note = ? WHERE id = ?",
                     (decision, reviewer, now, note, hit_id))
    if registry.vault is not None:
        registry.vault.append("decision", reviewer, None, {"hit": hit_id, "decision": decision, "note": note})
    return registry.get("screening", hit_id)
