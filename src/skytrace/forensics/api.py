"""REST endpoints of the evidence registry (FastAPI router, mounted by ``skytrace serve --evidence VAULT``).

All under ``/api/v1/forensics``:

- ``GET /incidents``, ``/debris``, ``/components``, ``/media`` — lists, filtered by their parent (``?incident=``,
  ``?debris=``, ``?component=``), paged (``limit`` 1-500, ``offset``);
- ``GET /incidents/{id}``, ``/debris/{id}``, ``/components/{id}``, ``/media/{sha256}`` — one record (404 if none);
- ``GET /custody`` — the custody log's verification: intact or not, entries, head hash, the first findings
  (edits, deletions, reordering, swapped keys, changed or missing originals, RFC 3161 tokens, registry rows edited
  outside skytrace);
- ``POST /incidents``, ``/debris``, ``/components`` — register a record; only when the service was given a write
  key (``SKYTRACE_EVIDENCE_KEY``), sent as ``Authorization: Bearer <key>`` and compared in constant time.
  Bodies are JSON (``Content-Type: application/json``, at most 64 KiB), validated field by field (unknown fields
  refused, lengths bounded); every write is signed into the custody log with the body's ``actor``.

Read-only by default: without a key the POST endpoints answer 403. The service's Host/Origin guard (no CORS, no
DNS rebinding) applies to these routes as to the rest of the API.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from skytrace.errors import SkytraceError

MAX_BODY_BYTES = 64 * 1024
MAX_LIMIT = 500
MAX_FINDINGS = 100
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
SHA_PATTERN = r"^[0-9a-f]{64}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    actor: str = Field(..., min_length=1, max_length=200, description="who registers this (custody log)")


class IncidentIn(_Body):
    id: str = Field(..., pattern=ID_PATTERN)
    time: str | float = Field(..., description="ISO 8601 with zone, or UNIX s")
    lat: float = Field(..., ge=-90, le=90)
    lon: float = Field(..., ge=-180, le=180)
    place: str = Field("", max_length=500)
    description: str = Field("", max_length=5000)
    tracks: list[str] = Field(default_factory=list, max_length=1000)


class DebrisIn(_Body):
    id: str = Field(..., pattern=ID_PATTERN)
    incident: str = Field(..., pattern=ID_PATTERN)
    time: str | float = Field(..., description="recovery time: ISO 8601 with zone, or UNIX s")
    lat: float = Field(..., ge=-90, le=90)
    lon: float = Field(..., ge=-180, le=180)
    recovered_by: str = Field("", max_length=500)
    condition: str = Field("", max_length=2000)
    airframe_markings: str = Field("", max_length=2000)
    serial: str = Field("", max_length=200)


class ComponentIn(_Body):
    id: str = Field(..., pattern=ID_PATTERN)
    debris: str = Field(..., pattern=ID_PATTERN)
    category: str = Field(..., max_length=40)
    marking_raw: str = Field("", max_length=2000)
    part_number: str = Field("", max_length=200)
    manufacturer_read: str = Field("", max_length=500)
    serial: str = Field("", max_length=200)
    date_code: str = Field("", max_length=40)
    markings_removed: bool = False


def forensics_router(vault_root: str | Path, db: str = "", write_key: str | None = None) -> APIRouter:
    """The registry's endpoints over the vault at ``vault_root`` and the store ``db`` (default: its skytrace.db).

    ``write_key`` enables the POST endpoints (at least 16 characters); without it the API is read-only.
    """
    from skytrace.forensics.custody import Vault

    root = Path(vault_root)
    Vault.open(root)  # fail at start-up, not on the first request, when it is not a vault
    if write_key is not None and len(write_key) < 16:
        raise SkytraceError("the evidence write key must be at least 16 characters")
    db_url = db or str(root / "skytrace.db")
    expected = f"Bearer {write_key}".encode() if write_key else None
    router = APIRouter(prefix="/api/v1/forensics", tags=["forensics"])

    @contextmanager
    def registry(signing: bool = False) -> Iterator[Any]:
        from skytrace.forensics.registry import Registry

        # one connection per request: sqlite3 connections belong to one thread, and requests run in a pool
        reg = Registry(db_url, Vault.open(root) if signing else Vault(root))
        try:
            yield reg
        except SkytraceError as exc:
            raise HTTPException(422, str(exc)) from None
        finally:
            reg.close()

    def page(limit: int = Query(100, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=10_000_000)
             ) -> tuple[int, int]:
        return limit, offset

    def listing(kind: str, where: dict, paging: tuple[int, int]) -> dict:
        limit, offset = paging
        cond = {k: v for k, v in where.items() if v is not None} or None
        with registry() as reg:
            return {"total": reg.count(kind, cond), "offset": offset, "items": reg.list(kind, cond, limit, offset)}

    def one(kind: str, rec_id: str) -> dict:
        with registry() as reg:
            rows = reg.list(kind, {"id" if kind != "media" else "sha256": rec_id})
        if not rows:
            raise HTTPException(404, f"no {kind} {rec_id!r}")
        return rows[0]

    id_query = {"pattern": ID_PATTERN, "max_length": 100}

    @router.get("/incidents", summary="Incidents (time, place, linked tracks)")
    def incidents(paging: tuple[int, int] = Depends(page)) -> dict:
        return listing("incident", {}, paging)

    @router.get("/incidents/{rec_id}", summary="One incident")
    def incident(rec_id: str = PathParam(..., **id_query)) -> dict:
        return one("incident", rec_id)

    @router.get("/debris", summary="Debris items, optionally of one incident")
    def debris_list(incident: str | None = Query(None, **id_query), paging: tuple[int, int] = Depends(page)) -> dict:
        return listing("debris", {"incident": incident}, paging)

    @router.get("/debris/{rec_id}", summary="One debris item")
    def debris(rec_id: str = PathParam(..., **id_query)) -> dict:
        return one("debris", rec_id)

    @router.get("/components", summary="Components, optionally of one debris item")
    def components(debris: str | None = Query(None, **id_query), paging: tuple[int, int] = Depends(page)) -> dict:
        return listing("component", {"debris": debris}, paging)

    @router.get("/components/{rec_id}", summary="One component")
    def component(rec_id: str = PathParam(..., **id_query)) -> dict:
        return one("component", rec_id)

    @router.get("/media", summary="Media records (originals by SHA-256, EXIF), by debris item or component")
    def media(debris: str | None = Query(None, **id_query), component: str | None = Query(None, **id_query),
              paging: tuple[int, int] = Depends(page)) -> dict:
        return listing("media", {"debris": debris, "component": component}, paging)

    @router.get("/media/{sha256}", summary="One media record")
    def media_one(sha256: str = PathParam(..., pattern=SHA_PATTERN)) -> dict:
        return one("media", sha256)

    @router.get("/custody", summary="Verification of the custody log, originals, timestamps and registry rows")
    def custody() -> dict:
        from skytrace.forensics.custody import verify_vault

        try:
            findings, n = verify_vault(root)
            problems = [str(f) for f in findings]
            with registry() as reg:
                problems += reg.check_against_log()
            count, head = Vault(root).head()
        except SkytraceError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"intact": not problems, "entries": n, "head": head, "problems": len(problems),
                "findings": problems[:MAX_FINDINGS]}

    async def authorised(request: Request) -> None:
        """Write access: a key configured, sent as a bearer token; a JSON body of bounded size."""
        if expected is None:
            raise HTTPException(403, "the evidence registry is read-only here (start the service with "
                                     "SKYTRACE_EVIDENCE_KEY set to enable writes)")
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            raise HTTPException(401, "missing or wrong evidence write key", headers={"WWW-Authenticate": "Bearer"})
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise HTTPException(415, "Content-Type must be application/json")
        size = request.headers.get("content-length")
        if size is None or not re.fullmatch(r"\d{1,9}", size) or int(size) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body must declare a Content-Length of at most {MAX_BODY_BYTES} bytes")

    @router.post("/incidents", status_code=201, summary="Register an incident (write key required)",
                 dependencies=[Depends(authorised)])
    def post_incident(body: IncidentIn) -> dict:
        with registry(signing=True) as reg:
            return reg.add_incident(body.actor, body.id, body.time, body.lat, body.lon, body.place,
                                    body.description, body.tracks)

    @router.post("/debris", status_code=201, summary="Register a debris item (write key required)",
                 dependencies=[Depends(authorised)])
    def post_debris(body: DebrisIn) -> dict:
        with registry(signing=True) as reg:
            return reg.add_debris(body.actor, body.id, body.incident, body.time, body.lat, body.lon,
                                  body.recovered_by, body.condition, body.airframe_markings, body.serial)

    @router.post("/components", status_code=201, summary="Register a component (write key required)",
                 dependencies=[Depends(authorised)])
    def post_component(body: ComponentIn) -> dict:
        with registry(signing=True) as reg:
            return reg.add_component(body.actor, body.id, body.debris, body.category, body.marking_raw,
                                     body.part_number, body.manufacturer_read, body.serial, body.date_code,
                                     body.markings_removed)

    return router
