"""Component attribution: markings read off a recovered part scored against a reference catalogue the user keeps.

Catalogue entries (JSON list or CSV): ``id, manufacturer, aliases, part_number_patterns, category, country,
sources, reliability`` — patterns use ``*`` (any run of characters) and ``?`` (one character); in CSV the list
fields are separated by ``|``. ``reliability`` is the grade of the documenting sources (A = confirmed by the
manufacturer or a physical examination ... E = unverified), shown with every match, never used to inflate a score.

Scoring, feature by feature, every score explained:

- part number (weight 0.6): marking tokens and the stated part number are normalised (upper case, separators
  dropped, Cyrillic letters mapped to the Latin letters they look like, other Cyrillic transliterated,
  GOST 7.79-2000 system B) and compared with each pattern: an exact match scores 1.0; a match after folding the
  typical misreadings of worn or photographed markings (O/Q/D->0, I/L->1, B->8, S->5, Z->2, G->6) scores 0.92;
  otherwise the normalised Levenshtein similarity (rapidfuzz) of the folded strings, over the pattern's literal
  part (its characters before a trailing ``*``);
- manufacturer (0.25): rapidfuzz ``token_set_ratio`` of the stated manufacturer (or the whole marking) against the
  entry's name and aliases, transliterated;
- category (0.15): 1 when the examiner's category equals the entry's, 0.5 when none was stated, else 0.
- date code (a flag, not a score): a YYWW or YYYYWW code later than the incident is impossible — a misreading, a
  relabelled or a planted part — and is flagged on every candidate.

A candidate is reported as a match when its total is at least ``threshold`` (default 0.74, chosen on seed 1 of
the synthetic bench, bench/bench_attribution.py). The presence of a part proves nothing about how it reached
the drone (diversion, resale, counterfeit): the report states this limit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from skytrace.errors import FormatError, SkytraceError

CATEGORIES = ("engine", "gnss", "imu", "flight_controller", "servo", "transceiver", "power_converter", "fuze",
              "airframe", "other")
RELIABILITY = ("A", "B", "C", "D", "E")
WEIGHTS = {"part_number": 0.6, "manufacturer": 0.25, "category": 0.15}
DEFAULT_THRESHOLD = 0.74  # chosen on bench seed 1; reported on seeds 2, 3

# Cyrillic letters that look like Latin ones (upper case after .upper())
_HOMOGLYPHS = str.maketrans({"А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
                             "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "З": "3",
                             "Ь": "b"})
# Cyrillic -> Latin transliteration for names (GOST 7.79-2000 system B; Ukrainian letters added)
_TRANSLIT = dict(zip("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯІЇЄҐ",
                     ["A", "B", "V", "G", "D", "E", "YO", "ZH", "Z", "I", "J", "K", "L", "M", "N", "O", "P", "R",
                      "S", "T", "U", "F", "X", "CZ", "CH", "SH", "SHH", "", "Y", "", "E", "YU", "YA", "I", "YI", "YE",
                      "G"], strict=True))
_MISREAD = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "B": "8", "S": "5", "Z": "2",
                          "G": "6"})
_SEPARATORS = re.compile(r"[\s\-_./,:;]+")


def latinise(text: str) -> str:
    """Upper case; Cyrillic letters that look like Latin ones become those (a part number misread or typed in the
    wrong script), the remaining Cyrillic is transliterated."""
    s = text.upper().translate(_HOMOGLYPHS)
    return "".join(_TRANSLIT.get(c, c) for c in s)


def transliterate(text: str) -> str:
    """Upper case, Cyrillic transliterated letter by letter (names written in Cyrillic)."""
    return "".join(_TRANSLIT.get(c, c) for c in text.upper())


def normalise_part(text: str) -> str:
    """Part number as compared: latinised, separators removed."""
    return _SEPARATORS.sub("", latinise(text))


def fold_misreadings(text: str) -> str:
    return text.translate(_MISREAD)


def _rf():
    try:
        from rapidfuzz import fuzz
        from rapidfuzz.distance import Levenshtein
    except ImportError:  # pragma: no cover
        raise SkytraceError("component attribution needs the forensics extra: pip install 'skytrace[forensics]'"
                            ) from None
    return fuzz, Levenshtein


def _pattern_regex(pattern: str) -> re.Pattern:
    return re.compile("^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$")


@dataclass
class CatalogueEntry:
    id: str
    manufacturer: str
    part_number_patterns: list[str]
    category: str
    country: str = ""
    aliases: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    reliability: str = "E"

    def __post_init__(self) -> None:
        self._regex = [_pattern_regex(normalise_part(p)) for p in self.part_number_patterns]
        self._regex_folded = [_pattern_regex(fold_misreadings(normalise_part(p))) for p in self.part_number_patterns]
        # the fixed part of each pattern for fuzzy comparison: up to its trailing '*', '?' kept (filled per token)
        self._literal = [fold_misreadings(normalise_part(p)).rstrip("*").replace("*", "")
                         for p in self.part_number_patterns]
        self._tail_wild = [normalise_part(p).endswith("*") for p in self.part_number_patterns]


def _fuzzy_part(token: str, literal: str, tail_wild: bool) -> float:
    """Best normalised Levenshtein similarity (rapidfuzz) of a folded token to a pattern's fixed part.

    With a trailing wildcard, token prefixes of the literal's length +-2 are tried (a dropped or doubled character
    shifts the rest); a '?' takes the token's character at that position.
    """
    _, lev = _rf()
    lengths = range(max(len(literal) - 2, 1), len(literal) + 3) if tail_wild else [len(token)]
    best = 0.0
    for m in lengths:
        cand = token[:m]
        lit = "".join(cand[i] if c == "?" and i < len(cand) else c for i, c in enumerate(literal))
        best = max(best, float(lev.normalized_similarity(cand, lit)))
    return best


_FIELDS = ("id", "manufacturer", "part_number_patterns", "category", "country", "aliases", "sources", "reliability")


def _entry(path: str, where: str, item: dict) -> CatalogueEntry:
    if not isinstance(item, dict):
        raise FormatError(path, "must be an object", field=where)
    unknown = set(item) - set(_FIELDS)
    if unknown:
        raise FormatError(path, f"unknown field(s) {sorted(unknown)}", field=where)
    vals: dict = {}
    for name in ("id", "manufacturer", "category"):
        v = item.get(name)
        if not isinstance(v, str) or not v.strip():
            raise FormatError(path, "missing or empty", field=f"{where}.{name}")
        vals[name] = v.strip()
    if vals["category"] not in CATEGORIES:
        raise FormatError(path, f"unknown category {vals['category']!r} (one of {', '.join(CATEGORIES)})",
                          field=f"{where}.category")
    for name in ("part_number_patterns", "aliases", "sources"):
        v = item.get(name, [])
        if isinstance(v, str):
            v = [x.strip() for x in v.split("|") if x.strip()]
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            raise FormatError(path, "must be a list of non-empty strings", field=f"{where}.{name}")
        vals[name] = [x.strip() for x in v]
    if not vals["part_number_patterns"]:
        raise FormatError(path, "needs at least one pattern", field=f"{where}.part_number_patterns")
    for pat in vals["part_number_patterns"]:
        if len(pat) > 64 or pat.count("*") > 2 or not normalise_part(pat).replace("*", "").replace("?", ""):
            raise FormatError(path, f"pattern {pat!r}: at most 64 characters and 2 '*', not only wildcards",
                              field=f"{where}.part_number_patterns")
    rel = str(item.get("reliability", "E")).strip().upper()
    if rel not in RELIABILITY:
        raise FormatError(path, f"reliability must be one of {', '.join(RELIABILITY)}", field=f"{where}.reliability")
    return CatalogueEntry(country=str(item.get("country", "")).strip(), reliability=rel, **vals)


def parse_catalogue(items: list[dict], path: str = "<catalogue>") -> list[CatalogueEntry]:
    entries = [_entry(path, f"[{i}]", it) for i, it in enumerate(items)]
    ids = [e.id for e in entries]
    dup = sorted({x for x in ids if ids.count(x) > 1})
    if dup:
        raise FormatError(path, f"duplicate catalogue id(s) {dup[:5]}")
    if not entries:
        raise FormatError(path, "the catalogue is empty")
    return entries


def read_catalogue(path: str | os.PathLike) -> list[CatalogueEntry]:
    """Read a reference catalogue from JSON (a list, or {"components": [...]}) or CSV (header row of field names)."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(str(p), "file not found")
    if p.stat().st_size > 64 << 20:
        raise FormatError(str(p), "larger than 64 MiB")
    text = p.read_text(encoding="utf-8-sig", errors="strict")
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        items = [{k: v for k, v in r.items() if k is not None and v not in (None, "")} for r in rows]
    else:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise FormatError(str(p), f"not valid JSON ({exc})") from None
        items = doc.get("components") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise FormatError(str(p), "expected a list of catalogue entries or {\"components\": [...]}")
    return parse_catalogue(items, str(p))


@dataclass
class Observation:
    """What an examiner read off a component."""

    marking: str  # raw marking text, as read (any script)
    part_number: str = ""  # the examiner's reading of the part number, if any
    manufacturer: str = ""  # logo or name as read, if any
    category: str = ""
    date_code: str = ""
    incident_date: dt.date | None = None


@dataclass
class Feature:
    name: str
    score: float
    weight: float
    explanation: str


@dataclass
class Candidate:
    entry: CatalogueEntry
    score: float
    features: list[Feature]
    flags: list[str]

    @property
    def match(self) -> bool:
        return self.score >= DEFAULT_THRESHOLD

    def explain(self) -> str:
        parts = [f"{f.name} {f.score:.2f} x {f.weight:.2f}: {f.explanation}" for f in self.features]
        return "; ".join(parts + self.flags)


_DATE_CODE = re.compile(r"^(?:(\d{2})|(\d{4}))(\d{2})$")


def parse_date_code(code: str) -> dt.date | None:
    """YYWW or YYYYWW (year, ISO week) -> the Monday of that week; None when not a date code."""
    c = _SEPARATORS.sub("", code.strip())
    m = _DATE_CODE.match(c)
    if not m:
        return None
    year = int(m.group(2)) if m.group(2) else 2000 + int(m.group(1))
    week = int(m.group(3))
    if not 1 <= week <= 53:
        return None
    try:
        return dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        return None


def _tokens(obs: Observation) -> list[str]:
    """Candidate part-number strings: the stated part number, marking tokens, and adjacent pairs joined."""
    toks = [t for t in re.split(r"\s+", latinise(obs.marking)) if t]
    out = [normalise_part(obs.part_number)] if obs.part_number.strip() else []
    out += [normalise_part(t) for t in toks]
    out += [normalise_part(a + b) for a, b in itertools.pairwise(toks)]
    return [t for t in dict.fromkeys(out) if len(t) >= 3]


def _part_feature(entry: CatalogueEntry, tokens: list[str]) -> Feature:
    best = Feature("part_number", 0.0, WEIGHTS["part_number"], "no part number read")
    for tok in tokens:
        folded = fold_misreadings(tok)
        for pat, rx, rxf, lit, wild in zip(entry.part_number_patterns, entry._regex, entry._regex_folded,
                                           entry._literal, entry._tail_wild, strict=True):
            if rx.match(tok):
                return Feature("part_number", 1.0, WEIGHTS["part_number"], f"{tok} matches {pat} exactly")
            if rxf.match(folded):
                f = Feature("part_number", 0.92, WEIGHTS["part_number"],
                            f"{tok} matches {pat} after folding misreadings (O/0, I/1, B/8, S/5, Z/2, G/6)")
            else:
                sim = _fuzzy_part(folded, lit, wild)
                f = Feature("part_number", round(0.92 * sim, 3), WEIGHTS["part_number"],
                            f"{tok} is {sim:.0%} similar to {pat} (Levenshtein, after folding misreadings)")
            if f.score > best.score:
                best = f
    return best


def _manufacturer_feature(entry: CatalogueEntry, obs: Observation) -> Feature:
    fuzz, _ = _rf()
    raw = obs.manufacturer or obs.marking
    stated = bool(obs.manufacturer.strip())
    best, name = 0.0, entry.manufacturer
    for n in [entry.manufacturer, *entry.aliases]:
        for text in {latinise(raw), transliterate(raw)}:
            s = fuzz.token_set_ratio(text, transliterate(n)) / 100.0
            if s > best:
                best, name = s, n
    if not stated and best < 0.6:  # the marking need not name its maker: absence is no evidence against
        return Feature("manufacturer", 0.5, WEIGHTS["manufacturer"], "no manufacturer read")
    src = "stated manufacturer" if stated else "marking"
    return Feature("manufacturer", round(best, 3), WEIGHTS["manufacturer"], f"{src} vs {name!r}: {best:.0%}")


def _category_feature(entry: CatalogueEntry, obs: Observation) -> Feature:
    if not obs.category:
        return Feature("category", 0.5, WEIGHTS["category"], "no category stated")
    if obs.category == entry.category:
        return Feature("category", 1.0, WEIGHTS["category"], f"both {entry.category}")
    return Feature("category", 0.0, WEIGHTS["category"], f"examined {obs.category}, catalogue {entry.category}")


def score_component(obs: Observation, catalogue: list[CatalogueEntry], top: int = 3) -> list[Candidate]:
    """The ``top`` best catalogue candidates for one observation, best first, each explained."""
    if obs.category and obs.category not in CATEGORIES:
        raise SkytraceError(f"unknown component category {obs.category!r} (one of {', '.join(CATEGORIES)})")
    tokens = _tokens(obs)
    flags = []
    if obs.date_code:
        d = parse_date_code(obs.date_code)
        if d is None:
            flags.append(f"date code {obs.date_code!r} not read as YYWW/YYYYWW")
        elif obs.incident_date and d > obs.incident_date:
            flags.append(f"IMPOSSIBLE date code {obs.date_code} (week of {d.isoformat()}) is after the incident "
                         f"({obs.incident_date.isoformat()}): misread, relabelled or planted")
    out = []
    for e in catalogue:
        feats = [_part_feature(e, tokens), _manufacturer_feature(e, obs), _category_feature(e, obs)]
        total = sum(f.score * f.weight for f in feats)
        out.append(Candidate(e, round(total, 4), feats, list(flags)))
    out.sort(key=lambda c: -c.score)
    return out[:top]


def attribute_registry(registry, catalogue_path: str | os.PathLike, actor: str, component: str | None = None,
                       top: int = 3) -> dict[str, list[Candidate]]:
    """Score the registered components (or one) against a catalogue file; store the top candidates with their
    explanations (replacing earlier ones of that component) and the catalogue's SHA-256."""
    from skytrace.forensics.custody import sha256_file

    catalogue = read_catalogue(catalogue_path)
    cat_sha = sha256_file(catalogue_path)
    comps = [registry.get("component", component)] if component else registry.list("component")
    out = {}
    for c in comps:
        deb = registry.get("debris", c["debris"])
        inc = registry.get("incident", deb["incident"])
        obs = Observation(marking=c["marking_raw"] or "", part_number=c["part_number"] or "",
                          manufacturer=c["manufacturer_read"] or "", category=c["category"] or "",
                          date_code=c["date_code"] or "",
                          incident_date=dt.datetime.fromtimestamp(inc["t"], dt.UTC).date())
        cands = score_component(obs, catalogue, top=top)
        registry.execute("DELETE FROM forensic_attributions WHERE component = ?", (c["id"],))
        for rank, cand in enumerate(cands, start=1):
            registry.insert("attribution", {
                "component": c["id"], "rank": rank, "catalogue_id": cand.entry.id,
                "manufacturer": cand.entry.manufacturer, "country": cand.entry.country,
                "reliability": cand.entry.reliability, "score": cand.score, "is_match": int(cand.match),
                "explanation": cand.explain(), "catalogue_sha256": cat_sha}, actor)
        out[c["id"]] = cands
    return out
