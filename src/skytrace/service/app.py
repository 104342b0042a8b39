"""REST + websocket API of the live service (FastAPI), and the static web map.

Endpoints (all under ``/api/v1``; the OpenAPI spec is at ``/openapi.json``, an offline reference at ``/docs``):

- ``GET  /status``                       feed health, counters, step timing
- ``GET  /sensors``, ``GET /zones``      the network and the alert zones (GeoJSON, simplified for the map)
- ``GET  /places``                       towns for the offline base map (GeoNames, >= 5,000 inhabitants)
- ``GET  /rivers``                       rivers and lakes for the offline base map (Natural Earth 1:50m)
- ``GET  /tracks``                       the current picture (columns, as on the websocket)
- ``GET  /alerts``                       active alerts, and stored alert periods with ``?since=``
- ``GET  /history/near``                 what flew within ``radius_m`` of a point between ``t0`` and ``t1``
- ``GET  /history/states``               stored track states in [t0, t1] (the map's timeline)
- ``POST /detections``, ``POST /sightings``  reports over HTTP (same JSON as MQTT; sightings: position sensors)
- ``POST /heartbeats``  "alive, heard nothing" of nodes (same JSON as MQTT, :mod:`skytrace.io.heartbeat`)
- ``WS   /ws``                           stream of ``tracks``, ``alerts`` and ``status`` messages (JSON text)
- ``/forensics/...``                     the evidence registry, with ``serve --evidence`` (skytrace.forensics.api)

Everything from a client is hostile: bodies are size-capped and validated exactly like MQTT payloads; query
arguments are range-checked; user errors are 4xx with a one-line ``detail``, never a traceback.

Browser-borne attacks (docs/security.md): every request and websocket must carry a ``Host`` in the allowed list
(default 127.0.0.1, localhost, [::1]: defeats DNS rebinding), a request with an ``Origin`` of another site is
refused (403; the websocket too), no CORS headers are ever sent, and ingest requires ``Content-Type:
application/json`` (a cross-site form or ``text/plain`` POST cannot set it without a CORS preflight, which fails).
HTTP ingest accepts only signed batches (:mod:`skytrace.security.signing`) unless the app is created with
``insecure_demo=True``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hmac
import math
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import msgspec
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from skytrace.io.mqtt import MAX_PAYLOAD_BYTES, decode_detections, open_signed_batch
from skytrace.service.core import ENCODER, LiveService
from skytrace.store.base import StoreError

MAX_HISTORY_WINDOW_S = 24 * 3600.0
MAX_STATES_WINDOW_S = 3600.0
HISTORY_DEFAULT_ROWS = 20_000  # track states one history request reads by default (bounded before reading)
HISTORY_MAX_ROWS = 100_000
MAX_WS_CLIENTS = 200
WS_SEND_TIMEOUT_S = 10.0  # a websocket client that does not take one message within this is disconnected
WS_STALL_S = 5.0  # when every slot is taken, a client with no completed send for this long gives its slot up
ACK_TIMEOUT_S = 10.0  # an HTTP report not committed within this gets 503 (it stays queued and is stored later)
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
DETECTION_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"$ref": "#/components/schemas/DetectionIn"},
              {"type": "array", "items": {"$ref": "#/components/schemas/DetectionIn"}}]}}}}}


class DetectionIn(BaseModel):
    """One detection (the detections.jsonl record of docs/formats.md); ``class`` is accepted too."""

    t: float
    sensor: str
    bearing_deg: float | None = None
    elevation_deg: float | None = None
    range_m: float | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    pos_sigma_m: float | None = None
    alt_sigma_m: float | None = None
    snr_db: float | None = None
    cls: str | None = Field(default=None, alias="class")
    class_conf: float | None = None
    t_arrival: float | None = None


HEARTBEAT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"$ref": "#/components/schemas/HeartbeatIn"},
              {"type": "array", "items": {"$ref": "#/components/schemas/HeartbeatIn"}}]}}}}}


class HeartbeatIn(BaseModel):
    """A sensor saying "alive, heard nothing" at ``t`` (the heartbeats.jsonl record); with --keys a signed batch
    with no detections instead."""

    t: float
    sensor: str


class IngestResult(BaseModel):
    accepted: int
    rejected: int
    reasons: list[str]


class ErrorOut(BaseModel):
    detail: str | list[Any]  # one line for the service's own errors; a list for request validation errors


INGEST_ERRORS: dict = {
    401: {"model": ErrorOut, "description": "missing or wrong ingest token (when one is configured)"},
    403: {"model": ErrorOut, "description": "HTTP ingest closed (the service has no key registry)"},
    413: {"model": ErrorOut, "description": "body too large"},
    415: {"model": ErrorOut, "description": "Content-Type is not application/json"},
    422: {"model": IngestResult, "description": "nothing accepted (invalid, unsigned, forged, replayed, ...)"},
    503: {"model": ErrorOut, "description": "overloaded or not stored yet: not acknowledged, send again later"},
}


QUERY_ERRORS: dict = {422: {"model": ErrorOut, "description": "invalid arguments (e.g. t1 < t0, window too long)"}}


class TrackStateOut(BaseModel):
    t: float
    track: str
    status: str
    lat: float
    lon: float
    alt_m: float
    ve: float
    vn: float
    vu: float
    pos_sigma_m: float
    class_: str | None = Field(None, alias="class", description="manned, cooperative-uav, ... (absent: none known)")
    target_id: str | None = Field(None, description="identity claimed by a cooperative target (icao:..., rid:...)")
    identity_flag: str | None = Field(None, description="why that claim is not believed (absent: believed)")


class NearTrack(BaseModel):
    track: str
    first_t: float
    last_t: float
    closest_m: float


class AlertOut(BaseModel):
    zone: str
    start: float
    end: float | None
    level: str
    tracks: list[str]


def _json(obj: Any) -> Response:
    return Response(ENCODER.encode(obj), media_type="application/json")


def _check_window(t0: float, t1: float, max_s: float) -> None:
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0:
        raise HTTPException(422, "t0 and t1 must be finite with t0 <= t1")
    if t1 - t0 > max_s:
        raise HTTPException(422, f"window t1 - t0 = {t1 - t0:.0f} s exceeds {max_s:.0f} s")


def zones_geojson(service: LiveService, tolerance_deg: float = 0.005) -> dict:
    """Zone polygons for the map, simplified (topology-preserving) to keep the page light on a phone."""
    if service.zones is None:
        return {"type": "FeatureCollection", "features": []}
    cached = getattr(service.zones, "_map_geojson", None)
    if cached is not None and cached[0] == tolerance_deg:  # a demo round serves the same zones again
        return cached[1]
    doc = service.zones.to_geojson()
    from shapely.geometry import mapping, shape

    for f in doc["features"]:
        f["geometry"] = mapping(shape(f["geometry"]).simplify(tolerance_deg, preserve_topology=True))
    service.zones._map_geojson = (tolerance_deg, doc)
    return doc


def _hostname(value: str) -> str:
    """``host[:port]`` -> host, lower case (IPv6 literals keep their brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostOriginGuard:
    """ASGI middleware: refuse a Host not in ``allowed_hosts`` (400) and a foreign Origin (403), HTTP and websocket.

    An Origin is accepted when its host is an allowed host or it is listed in ``allowed_origins`` exactly
    (``scheme://host[:port]``, e.g. the public name of the reverse proxy). Requests without an Origin (curl, sensor
    nodes, same-origin GETs) pass; browsers always send it on cross-origin POSTs and on websockets.
    """

    def __init__(self, app, allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...],
                 counts: dict[str, int] | None = None):
        self.app = app
        self.hosts = {h.lower() for h in allowed_hosts}
        self.origins = {o.lower().rstrip("/") for o in allowed_origins}
        self.rejected = counts if counts is not None else {}
        self.rejected.update({"rejected_host": 0, "rejected_origin": 0})

    def _verdict(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if _hostname(host) not in self.hosts:
            self.rejected["rejected_host"] += 1
            return 400, "Host not allowed (start the service with --allow-host NAME to serve another name)"
        origin = headers.get(b"origin")
        if origin is not None:
            o = origin.decode("latin-1").lower().rstrip("/")
            if o not in self.origins and _hostname(o.split("://", 1)[-1]) not in self.hosts:
                self.rejected["rejected_origin"] += 1
                return 403, "cross-origin requests are not allowed"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        verdict = self._verdict(dict(scope.get("headers") or ()))
        if verdict is None:
            return await self.app(scope, receive, send)
        code, detail = verdict
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:100]})
            return None
        body = ENCODER.encode({"detail": detail})
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None


@functools.cache
def places_json() -> bytes:
    """The base map's towns (``data/basemap-places.json``), read once."""
    return resources.files("skytrace.data").joinpath("basemap-places.json").read_bytes()


@functools.cache
def rivers_json() -> bytes:
    """The base map's rivers and lakes (``data/basemap-rivers.json``, Natural Earth 1:50m), read once."""
    return resources.files("skytrace.data").joinpath("basemap-rivers.json").read_bytes()


def create_app(service: LiveService, mqtt=None, ingest_token: str | None = None, verifier=None,
               insecure_demo: bool = False, allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS,
               allowed_origins: tuple[str, ...] = (), durable: bool = True, routers: tuple = (),
               tiles: str = "", ingests: tuple = ()) -> FastAPI:
    """The ASGI app for ``service``; ``mqtt`` (an :class:`~skytrace.io.mqtt.MqttIngest`) and ``ingests`` (more
    feeds with the same contract, e.g. :class:`~skytrace.io.jetstream.NatsIngest`) are started with it.

    ``routers``: further FastAPI routers served under the same guard (e.g. the evidence registry's,
    :func:`skytrace.forensics.api.forensics_router`, added by ``skytrace serve --evidence``).

    HTTP ingest: with ``verifier`` (:class:`skytrace.security.signing.Verifier`) only signed batches are accepted;
    without one, ingest is refused (403) unless ``insecure_demo`` (a local demo on loopback) accepts plain
    detections. With ``ingest_token``, the POST endpoints also require ``Authorization: Bearer <token>``
    (compared in constant time). Reading endpoints stay open to whoever can reach 127.0.0.1 or the reverse proxy
    in front; ``allowed_hosts`` / ``allowed_origins``: see :class:`HostOriginGuard`.

    ``durable``: HTTP reports are answered 202 only after the store has committed them
    (:mod:`skytrace.service.inbox`); ``mqtt`` then acknowledges QoS 1 messages after the commit too.
    """
    feeds = [f for f in (mqtt, *ingests) if f is not None]
    if durable:
        inbox = service.use_inbox()
        for feed in feeds:  # MQTT (PUBACK) and JetStream (ack) too: acknowledged after the commit
            if getattr(feed, "inbox", None) is None:
                feed.use_inbox(inbox)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for feed in feeds:
            await asyncio.to_thread(feed.start)
        for inp in service.inputs:  # live feeds (ASTERIX, SBS, aircraft.json, Remote ID): skytrace.interop.live
            await asyncio.to_thread(inp.start)
        service.start()
        try:
            yield
        finally:
            for inp in service.inputs:
                await asyncio.to_thread(inp.stop)
            for feed in feeds:
                await asyncio.to_thread(feed.stop)
            await service.stop()

    app = FastAPI(title="skytrace live service", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Early warning against one-way attack drones: live tracks, alerts and history. "
                              "Times are UNIX seconds UTC, positions WGS84, altitudes metres above the ellipsoid.")
    zones_doc = zones_geojson(service)
    from skytrace.service.tiles import TileSource

    tile_source = TileSource.from_setting(tiles)  # [service] map_tiles; none by default (fully offline)
    guard_counts: dict[str, int] = {}
    if verifier is not None:
        service.auth = verifier

    @app.get("/api/v1/status", summary="Feed health and counters")
    def status() -> dict:
        return {**service.status(), "http_guard": dict(guard_counts), "websocket": dict(ws_counts)}

    @app.get("/api/v1/sensors", summary="Sensors of the network")
    def sensors() -> Response:
        return _json({"sensors": service.table.records})

    @app.get("/api/v1/zones", summary="Alert zones (GeoJSON FeatureCollection)")
    def zones() -> Response:
        return _json(zones_doc)

    @app.get("/api/v1/tracks", summary="Current tracks (columns: track, lat, lon, alt_m, ve, vn, vu, ...)")
    def tracks() -> Response:
        snap = service.snapshot
        if snap is None:
            return _json({"type": "tracks", "t": None, "track": []})
        return _json(service.tracks_message(snap))

    @app.get("/api/v1/alerts", summary="Active alerts, or stored alert periods since a time",
             response_model=list[AlertOut], responses=QUERY_ERRORS)
    def alerts(since: float | None = Query(None, description="UNIX s; all periods overlapping [since, now]")):
        if since is None:
            return _json([msgspec.to_builtins(a) for a in service.alerts])
        if not math.isfinite(since):
            raise HTTPException(422, "since must be finite")
        return _json([msgspec.to_builtins(a) for a in service.store.alerts(since, math.inf)])

    @app.get("/api/v1/places", summary="Towns for the offline base map (GeoNames, population >= 5,000)")
    def places() -> Response:
        return Response(places_json(), media_type="application/json")

    @app.get("/api/v1/rivers", summary="Rivers and lakes for the offline base map (Natural Earth 1:50m, GeoJSON)")
    def rivers() -> Response:
        return Response(rivers_json(), media_type="application/json")  # GeoJSON

    @app.get("/api/v1/map", summary="Base-map settings of the web map (optional tiles; none: fully offline)")
    def map_settings() -> Response:
        return _json({"tiles": tile_source.client() if tile_source is not None else None})

    @app.get("/tiles/{z}/{x}/{y}", summary="A base-map tile from the configured directory or MBTiles file",
             include_in_schema=False)
    def tile(z: int, x: int, y: int) -> Response:
        found = tile_source.get(z, x, y) if tile_source is not None else None
        if found is None:
            raise HTTPException(404, "no such tile")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/v1/cap", summary="CAP 1.2 feed: index of the latest alert messages (newest first)")
    def cap_index(request: Request, limit: int = Query(100, ge=1, le=1000)) -> Response:
        msgs = list(service.cap_messages)[-limit:][::-1]
        # relative to this index's own URL (/api/v1/cap): "cap/61.xml" resolves to /api/v1/cap/61.xml, and
        # "href" is absolute (behind a proxy under a prefix, root_path keeps it right)
        base = str(request.url_for("cap_message", seq=0)).rsplit("/", 1)[0]
        return _json([{"seq": seq, "t": t, "zone": zone, "kind": kind, "url": f"cap/{seq}.xml",
                       "href": f"{base}/{seq}.xml"} for seq, t, zone, kind, _ in msgs])

    @app.get("/api/v1/cap/{seq}.xml", summary="One CAP 1.2 message (application/cap+xml)",
             responses={200: {"content": {"application/cap+xml": {}}}, 404: {"model": ErrorOut,
                        "description": "no such message (only the latest are kept)"}})
    def cap_message(seq: int) -> Response:
        for s, _, _, _, xml in service.cap_messages:
            if s == seq:
                return Response(xml, media_type="application/cap+xml")
        raise HTTPException(404, f"no CAP message {seq} (only the latest {service.cap_messages.maxlen} are kept)")

    @app.get("/api/v1/history/near", summary="Tracks that came within radius_m of a point in [t0, t1]",
             response_model=list[NearTrack], responses=QUERY_ERRORS)
    def history_near(lat: float = Query(..., ge=-90, le=90), lon: float = Query(..., ge=-180, le=180),
                     radius_m: float = Query(2000.0, gt=0, le=500_000), t0: float = Query(...),
                     t1: float = Query(...),
                     max_states: int = Query(HISTORY_DEFAULT_ROWS, ge=1, le=HISTORY_MAX_ROWS,
                                             description="read at most this many track states (bounded before "
                                                         "reading); header X-Truncated: true when hit")):
        _check_window(t0, t1, MAX_HISTORY_WINDOW_S)
        try:
            found, truncated = service.store.track_ids_near_bounded(lat, lon, radius_m, t0, t1, max_states)
        except StoreError as exc:
            raise HTTPException(422, str(exc)) from None
        resp = _json(sorted(found.values(), key=lambda o: o["first_t"]))
        resp.headers["X-Truncated"] = "true" if truncated else "false"
        return resp

    @app.get("/api/v1/history/states", summary="Stored track states in [t0, t1] (timeline), paged by time",
             response_model=list[TrackStateOut], responses=QUERY_ERRORS)
    def history_states(t0: float = Query(...), t1: float = Query(...),
                       limit: int = Query(HISTORY_DEFAULT_ROWS, ge=1, le=HISTORY_MAX_ROWS,
                                          description="at most this many rows; when hit, header X-Next-T0 gives "
                                                      "the t0 of the next page (rows at that instant repeat)")):
        _check_window(t0, t1, MAX_STATES_WINDOW_S)
        rows = service.store.track_states(t0, t1, limit)
        resp = _json(rows)
        if len(rows) >= limit:
            resp.headers["X-Next-T0"] = repr(float(rows[-1].t))
        return resp

    expected_auth = f"Bearer {ingest_token}".encode() if ingest_token else None

    async def _read_ingest_body(request: Request) -> bytes:
        """Token, signing mode, Content-Type (CSRF) and size checks common to every ingest endpoint."""
        if expected_auth is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), expected_auth):
            raise HTTPException(401, "missing or wrong ingest token", headers={"WWW-Authenticate": "Bearer"})
        if verifier is None and not insecure_demo:
            raise HTTPException(403, "HTTP ingest needs signed reports: start the service with --keys keys.json "
                                     "(or --insecure-demo for a local demonstration)")
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":  # CSRF: a cross-site form or text/plain POST cannot send this type
            raise HTTPException(415, "Content-Type must be application/json")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PAYLOAD_BYTES:
                raise HTTPException(413, f"body larger than {MAX_PAYLOAD_BYTES} bytes")
        return body

    def _queue_for_store(batch_id: tuple[str, int] | None, dets: list) -> concurrent.futures.Future | None:
        """Queue a received batch (reports, or a signed heartbeat's sequence number) for the store's next commit;
        None when there is no store inbox or nothing to store. 503 when the inbox filled up meanwhile: the sender
        may send the batch again, so its sequence number is forgotten."""
        inbox = service.inbox
        if inbox is None or not (dets or batch_id is not None):
            return None
        sensor, seq = batch_id if batch_id is not None else (None, None)
        fut = inbox.put_future(sensor, seq, dets)
        if fut is None:
            if batch_id is not None:
                verifier.forget(*batch_id)
            raise HTTPException(503, "overloaded: retry later", headers={"Retry-After": "1"})
        return fut

    async def _stored(fut: concurrent.futures.Future | None) -> None:
        """Wait for the commit of a queued batch (503 after ACK_TIMEOUT_S: the store is slow or down)."""
        if fut is None:
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), ACK_TIMEOUT_S)
        except TimeoutError:
            raise HTTPException(503, "accepted for tracking but not stored yet (the store is slow or down)",
                                headers={"Retry-After": "5"}) from None

    async def _ingest(request: Request, position_only: bool) -> JSONResponse:
        body = await _read_ingest_body(request)
        inbox = service.inbox
        if inbox is not None and not inbox.has_room():  # overload: refuse before any work, the node retries
            inbox.stats.shed_http += 1
            raise HTTPException(503, "overloaded: retry later", headers={"Retry-After": "1"})
        stats = service.ingest_stats
        before = len(stats.reasons), stats.rejected_detections, stats.rejected_messages
        kinds = ("position",) if position_only else None
        batch_id = None
        if verifier is not None:  # signature checks and decoding run off the event loop
            dets, batch_id = await asyncio.to_thread(open_signed_batch, verifier, body, service.table, stats, None,
                                                     "http", kinds)
        else:
            dets = await asyncio.to_thread(decode_detections, body, service.table, stats, None, "http", kinds)
        fut = _queue_for_store(batch_id, dets)
        service.submit(dets)  # tracking does not wait for the store
        await _stored(fut)  # ... the acknowledgement does: 202 only once the reports are committed
        rejected = stats.rejected_detections - before[1] + (stats.rejected_messages - before[2])
        result = {"accepted": len(dets), "rejected": rejected, "reasons": stats.reasons[before[0]:][:5]}
        return JSONResponse(result, status_code=202 if dets or not rejected else 422)

    @app.post("/api/v1/detections", summary="Submit detections (object or array)", status_code=202,
              response_model=IngestResult, openapi_extra=DETECTION_BODY, responses=INGEST_ERRORS)
    async def post_detections(request: Request):
        return await _ingest(request, position_only=False)

    @app.post("/api/v1/sightings", summary="Submit sightings (position reports of citizen/observer sensors)",
              status_code=202, response_model=IngestResult, openapi_extra=DETECTION_BODY, responses=INGEST_ERRORS)
    async def post_sightings(request: Request):
        return await _ingest(request, position_only=True)

    @app.post("/api/v1/heartbeats", summary="Submit heartbeats (a node alive that heard nothing)", status_code=202,
              response_model=IngestResult, openapi_extra=HEARTBEAT_BODY, responses=INGEST_ERRORS)
    async def post_heartbeats(request: Request):
        from skytrace.io.heartbeat import decode_heartbeats, open_signed_heartbeat

        body = await _read_ingest_body(request)
        stats = service.heartbeat_stats
        before = len(stats.reasons), stats.rejected_detections, stats.rejected_messages
        batch_id = None
        if verifier is not None:
            beats, batch_id = await asyncio.to_thread(open_signed_heartbeat, verifier, body, service.table, stats,
                                                      None, "http")
        else:
            beats = await asyncio.to_thread(decode_heartbeats, body, service.table, stats, None, "http")
        fut = _queue_for_store(batch_id, [])  # its sequence number: a replay after a restart is refused too
        service.heartbeat(beats)
        await _stored(fut)
        rejected = stats.rejected_detections - before[1] + (stats.rejected_messages - before[2])
        result = {"accepted": len(beats), "rejected": rejected, "reasons": stats.reasons[before[0]:][:5]}
        return JSONResponse(result, status_code=202 if beats or not rejected else 422)

    ws_slots: dict[asyncio.Queue, float] = {}  # a client's queue -> monotonic time of its last completed send
    ws_counts = {"clients": 0, "refused": 0, "evicted_slow": 0}

    def _evict_one() -> bool:
        """Make room for a new client by evicting one that does not keep up (its queue full, or no send completed
        for WS_STALL_S): a client that stops reading must not hold a slot against the operator's map."""
        now = asyncio.get_running_loop().time()
        stalled = [q for q, t in ws_slots.items() if q.full() or now - t > WS_STALL_S]
        if not stalled:
            return False
        q = min(stalled, key=lambda k: ws_slots[k])
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)  # its handler closes the socket as soon as its current send finishes or times out
        ws_slots.pop(q, None)
        ws_counts["evicted_slow"] += 1
        return True

    @app.websocket("/api/v1/ws")
    async def ws(websocket: WebSocket):
        if len(ws_slots) >= MAX_WS_CLIENTS and not _evict_one():  # bounded fan-out: memory and CPU per client
            ws_counts["refused"] += 1
            await websocket.close(code=1013, reason="too many clients")
            return
        await websocket.accept()
        q = service.subscribe()
        loop = asyncio.get_running_loop()
        ws_slots[q] = loop.time()
        ws_counts["clients"] = len(ws_slots)

        async def send(text: str) -> None:  # a client that cannot take a message within the timeout is dropped
            await asyncio.wait_for(websocket.send_text(text), WS_SEND_TIMEOUT_S)
            if q in ws_slots:
                ws_slots[q] = loop.time()

        evicted = False
        try:
            # the current picture first, so a new client does not wait for the next step
            if service.snapshot is not None:
                await send(ENCODER.encode(service.tracks_message(service.snapshot)).decode())
            await send(ENCODER.encode(service.alerts_message(service.clock())).decode())
            while (blob := await q.get()) is not None:
                await send(blob.decode())
            evicted = True
        except TimeoutError:
            ws_counts["evicted_slow"] += 1
            evicted = True
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            service.unsubscribe(q)
            ws_slots.pop(q, None)
            ws_counts["clients"] = len(ws_slots)
            with contextlib.suppress(Exception):
                await (websocket.close(code=1008, reason="evicted: not reading") if evicted else websocket.close())

    # DetectionIn is referenced by the raw-body endpoints' schema: register it in the spec
    original_openapi = app.openapi

    def openapi() -> dict:
        spec = original_openapi()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["DetectionIn"] = DetectionIn.model_json_schema()
        schemas["HeartbeatIn"] = HeartbeatIn.model_json_schema()
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    for router in routers:
        app.include_router(router)
    @app.get("/docs", include_in_schema=False)
    @app.get("/redoc", include_in_schema=False)
    def api_reference() -> Response:
        """The API reference, rendered in the page from /openapi.json (no CDN: works on a closed network)."""
        return Response(resources.files("skytrace").joinpath("web/reference.html").read_bytes(),
                        media_type="text/html; charset=utf-8")

    @app.api_route("/api/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                   include_in_schema=False)
    def api_fallback(request: Request, rest: str) -> Response:
        """An API path with a method it does not have (405 with the right ``Allow``) or no such path (404): without
        this, the static files mounted at / would answer for the API with their own methods."""
        allowed = sorted({m for r in app.routes if getattr(r, "methods", None) and r is not api_fallback_route
                          and r.matches({"type": "http", "path": request.url.path, "method": "GET"})[0].value
                          for m in r.methods})
        if allowed:
            return JSONResponse({"detail": "method not allowed"}, 405, headers={"Allow": ", ".join(allowed)})
        return JSONResponse({"detail": "not found"}, 404)

    api_fallback_route = app.routes[-1]
    web_dir = resources.files("skytrace").joinpath("web")
    app.mount("/", StaticFiles(directory=str(web_dir), html=True), name="web")
    app.add_middleware(HostOriginGuard, allowed_hosts=tuple(allowed_hosts), allowed_origins=tuple(allowed_origins),
                       counts=guard_counts)
    return app
