"""Evidence registry: incidents, debris items, components, media, attributions and screening decisions.

The tables live in the same database as the service's history store (``--db``: a SQLite path / ``sqlite:///``
URL, the default, or a ``postgresql://`` URL), next to its tracks, under names prefixed ``forensic_``; this module
adds them itself and never alters the store's own tables. Every write is also logged in the custody log (action
``register``, with the SHA-256 of the record's canonical JSON), so an edit of the database made outside skytrace
shows up as a record whose hash no longer matches its log entry (:meth:`Registry.check_against_log`).

Components of the category ``fuze`` (warhead fuzes) are registered like any other part for documentation, but
skytrace gives no handling guidance for them: explosive ordnance is for EOD specialists only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import sqlite3
from pathlib import Path

from skytrace.errors import SkytraceError
from skytrace.forensics.attribution import CATEGORIES
from skytrace.forensics.custody import Vault, canonical_json

FUZE_NOTE = "explosive ordnance: handled only by EOD specialists; skytrace gives no handling guidance"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")

# column name -> type; "F" is a float column (REAL / DOUBLE PRECISION)
TABLES: dict[str, dict[str, str]] = {
    "forensic_incidents": {"id": "TEXT PRIMARY KEY", "t": "F", "lat": "F", "lon": "F", "place": "TEXT",
                           "description": "TEXT", "tracks": "TEXT"},
    "forensic_debris": {"id": "TEXT PRIMARY KEY", "incident": "TEXT", "t_recovered": "F", "lat": "F", "lon": "F",
                        "recovered_by": "TEXT", "condition": "TEXT", "airframe_markings": "TEXT", "serial": "TEXT"},
    "forensic_components": {"id": "TEXT PRIMARY KEY", "debris": "TEXT", "category": "TEXT", "marking_raw": "TEXT",
                            "part_number": "TEXT", "part_number_norm": "TEXT", "manufacturer_read": "TEXT",
                            "serial": "TEXT", "date_code": "TEXT", "markings_removed": "INTEGER",
                            "handling_note": "TEXT"},
    "forensic_media": {"sha256": "TEXT", "kind": "TEXT", "original": "TEXT", "name": "TEXT", "debris": "TEXT",
                       "component": "TEXT", "exif": "TEXT", "working_copy": "TEXT"},
    "forensic_attributions": {"component": "TEXT", "rank": "INTEGER", "catalogue_id": "TEXT",
                              "manufacturer": "TEXT", "country": "TEXT", "reliability": "TEXT", "score": "F",
                              "is_match": "INTEGER", "explanation": "TEXT", "catalogue_sha256": "TEXT"},
    "forensic_screening": {"id": "TEXT PRIMARY KEY", "subject": "TEXT", "entity_id": "TEXT", "entity_name": "TEXT",
                           "dataset": "TEXT", "dataset_version": "TEXT", "score": "F", "explanation": "TEXT",
                           "decision": "TEXT", "reviewer": "TEXT", "decided_at": "TEXT", "note": "TEXT"},
}
KINDS = {"incident": "forensic_incidents", "debris": "forensic_debris", "component": "forensic_components",
         "media": "forensic_media", "attribution": "forensic_attributions", "screening": "forensic_screening"}


class RegistryError(SkytraceError):
    """A registry record is invalid or refers to something that does not exist."""


def check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise RegistryError(f"`{name}` must be 1-100 characters of letters, digits, . _ : - (got {value!r})")
    return value


def check_latlon(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise RegistryError(f"position ({lat}, {lon}) is outside lat [-90, 90] / lon [-180, 180]")


def parse_time(value: str | float) -> float:
    """UNIX seconds from a number or an ISO 8601 time with a zone (e.g. 2026-11-23T03:10:00Z)."""
    if isinstance(value, int | float):
        t = float(value)
    else:
        try:
            t = float(value)
        except ValueError:
            try:
                d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise RegistryError(f"time {value!r} is neither UNIX seconds nor ISO 8601") from None
            if d.tzinfo is None:
                raise RegistryError(f"time {value!r} has no time zone; add Z for UTC") from None
            t = d.timestamp()
    if not math.isfinite(t):
        raise RegistryError(f"time {value!r} is not finite")
    return t


def _record_hash(kind: str, record: dict) -> str:
    body = {k: (repr(v) if isinstance(v, float) else v) for k, v in record.items()}
    return hashlib.sha256(canonical_json({"kind": kind, "record": body})).hexdigest()


class Registry:
    """The forensic tables in the store's database; every write logged in ``vault``."""

    def __init__(self, url: str, vault: Vault | None = None):
        self.vault = vault
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise RegistryError("a postgresql:// store needs psycopg 3: pip install 'skytrace[postgres]'"
                                    ) from None
            try:
                self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise RegistryError(f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}") from None
            self._ph, ftype = "%s", "DOUBLE PRECISION"
        else:
            path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
            if "://" in path:
                raise RegistryError(f"unknown store URL scheme in {url!r} (use sqlite:///path or postgresql://...)")
            if path != ":memory:" and not Path(path).parent.is_dir():
                raise RegistryError(f"cannot create the database {path}: its directory does not exist")
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._ph, ftype = "?", "REAL"
        for table, cols in TABLES.items():
            spec = ", ".join(f"{c} {ftype if t == 'F' else t}" for c, t in cols.items())
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({spec})")

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------------------------------- generic
    def execute(self, sql: str, args: tuple = ()) -> None:
        """Run one statement written with ``?`` placeholders on either back-end."""
        self._db.execute(sql.replace("?", self._ph), args)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        cur = self._db.execute(sql.replace("?", self._ph), args)
        return list(cur.fetchall())

    def insert(self, kind: str, record: dict, actor: str) -> dict:
        """Insert a record of ``kind`` (unknown fields ignored, missing ones NULL) and log it in the custody log."""
        table = KINDS[kind]
        cols = list(TABLES[table])
        row = {c: record.get(c) for c in cols}
        key = "id" if "id" in TABLES[table] else None
        if key and self._rows(f"SELECT 1 FROM {table} WHERE id = ?", (row["id"],)):
            raise RegistryError(f"{kind} {row['id']!r} already exists")
        self._db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([self._ph] * len(cols))})",
                         tuple(row[c] for c in cols))
        if self.vault is not None:
            self.vault.append("register", actor, _record_hash(kind, row),
                              {"kind": kind, "id": str(row.get("id") or row.get("sha256") or row.get("component"))})
        return row

    def _where(self, kind: str, where: dict | None) -> tuple[str, list[str], str, tuple]:
        if kind not in KINDS:
            raise RegistryError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        table = KINDS[kind]
        cols = list(TABLES[table])
        sql, args = "", ()
        if where:
            for c in where:
                if c not in cols:
                    raise RegistryError(f"unknown field {c!r} of {kind}")
            sql = " WHERE " + " AND ".join(f"{c} = ?" for c in where)
            args = tuple(where.values())
        return table, cols, sql, args

    def list(self, kind: str, where: dict | None = None, limit: int | None = None, offset: int = 0) -> list[dict]:
        """Records of ``kind`` whose fields equal ``where``'s values, in id order; a page with ``limit``."""
        table, cols, cond, args = self._where(kind, where)
        order = "id" if "id" in cols else cols[0]
        sql = f"SELECT {', '.join(cols)} FROM {table}{cond} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args = (*args, int(limit), int(offset))
        return [dict(zip(cols, r, strict=True)) for r in self._rows(sql, args)]

    def count(self, kind: str, where: dict | None = None) -> int:
        table, _, cond, args = self._where(kind, where)
        return int(self._rows(f"SELECT COUNT(*) FROM {table}{cond}", args)[0][0])

    def get(self, kind: str, rec_id: str) -> dict:
        rows = self.list(kind, {"id": rec_id})
        if not rows:
            raise RegistryError(f"no {kind} {rec_id!r}")
        return rows[0]

    # ---------------------------------------------------------------------------------------- records
    def add_incident(self, actor: str, id: str, t: str | float, lat: float, lon: float, place: str = "",
                     description: str = "", tracks: list[str] | None = None) -> dict:
        check_id("id", id)
        check_latlon(lat, lon)
        return self.insert("incident", {"id": id, "t": parse_time(t), "lat": float(lat), "lon": float(lon),
                                         "place": place, "description": description,
                                         "tracks": json.dumps(sorted(set(tracks or [])))}, actor)

    def add_debris(self, actor: str, id: str, incident: str, t_recovered: str | float, lat: float, lon: float,
                   recovered_by: str = "", condition: str = "", airframe_markings: str = "", serial: str = ""
                   ) -> dict:
        check_id("id", id)
        self.get("incident", incident)
        check_latlon(lat, lon)
        return self.insert("debris", {"id": id, "incident": incident, "t_recovered": parse_time(t_recovered),
                                       "lat": float(lat), "lon": float(lon), "recovered_by": recovered_by,
                                       "condition": condition, "airframe_markings": airframe_markings,
                                       "serial": serial}, actor)

    def add_component(self, actor: str, id: str, debris: str, category: str, marking_raw: str = "",
                      part_number: str = "", manufacturer_read: str = "", serial: str = "", date_code: str = "",
                      markings_removed: bool = False) -> dict:
        from skytrace.forensics.attribution import normalise_part

        check_id("id", id)
        self.get("debris", debris)
        if category not in CATEGORIES:
            raise RegistryError(f"unknown component category {category!r} (one of {', '.join(CATEGORIES)})")
        return self.insert("component", {
            "id": id, "debris": debris, "category": category, "marking_raw": marking_raw,
            "part_number": part_number, "part_number_norm": normalise_part(part_number) if part_number else "",
            "manufacturer_read": manufacturer_read, "serial": serial, "date_code": date_code,
            "markings_removed": int(bool(markings_removed)),
            "handling_note": FUZE_NOTE if category == "fuze" else ""}, actor)

    def add_media(self, actor: str, path: str | Path, debris: str = "", component: str = "") -> dict:
        """Ingest a file into the vault (untouched original, content-addressed) and register it."""
        if self.vault is None:
            raise RegistryError("media need an evidence vault (--vault)")
        if debris:
            self.get("debris", debris)
        if component:
            self.get("component", component)
        exif = read_exif(Path(path))
        sha, _ = self.vault.ingest(path, actor, {"debris": debris, "component": component})
        return self.insert("media", {"sha256": sha, "kind": "original", "original": sha, "name": Path(path).name,
                                      "debris": debris, "component": component, "exif": json.dumps(exif),
                                      "working_copy": ""}, actor)

    def check_against_log(self) -> list[str]:
        """Records whose hash matches no ``register`` entry of the custody log (edited outside skytrace)."""
        if self.vault is None:
            return []
        logged = {e["object"] for e in self.vault.entries() if e["action"] == "register"}
        bad = []
        for kind in ("incident", "debris", "component", "media"):
            for row in self.list(kind):
                if _record_hash(kind, row) not in logged:
                    bad.append(f"{kind} {row.get('id') or row.get('sha256')}: record differs from what was "
                               "registered in the custody log")
        return bad


def read_exif(path: Path) -> dict:
    """EXIF tags of an image as text (empty for other files); the original file keeps all of them untouched."""
    try:
        from PIL import ExifTags, Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return {}
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            out = {ExifTags.TAGS.get(k, str(k)): str(v)[:200] for k, v in exif.items()}
            gps = exif.get_ifd(0x8825)
            if gps:
                out["GPSInfo"] = {ExifTags.GPSTAGS.get(k, str(k)): str(v)[:100] for k, v in gps.items()}
            return out
    except (OSError, ValueError, SyntaxError):
        return {}
