"""``skytrace serve``: the live service (MQTT + HTTP in; REST, websocket and the web map out) on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import typer


def serve(
    directory: Path = typer.Argument(..., help="Directory with sensors.json and optionally zones.geojson."),
    port: int | None = typer.Option(None, "--port", help="HTTP port, bound to 127.0.0.1 only (default: [service] "
                                                          "port, 8080)."),
    zones: Path | None = typer.Option(None, "--zones", help="zones.geojson (default: [zones] of the configuration: "
                                                            "oblasts + 15 km cells, as offline)."),
    db: str = typer.Option("", "--db", help="Store: a SQLite path, sqlite:///path or postgresql://... "
                                            "(default: skytrace.db in DIRECTORY)."),
    mqtt: str = typer.Option("", "--mqtt", help="MQTT broker host:port to subscribe to (default: none)."),
    mqtt_client_id: str = typer.Option("skytrace-service", "--mqtt-client-id",
                                       help="MQTT client id: the broker keeps this id's persistent session (QoS 1 "
                                            "messages queued while the service is down); one per service."),
    nats: str = typer.Option("", "--nats", help="NATS JetStream server URL to read reports from, e.g. "
                                                "nats://127.0.0.1:4222, or a cluster's servers comma-separated (stream "
                                                "SKYTRACE; default: none)."),
    nats_replicas: int = typer.Option(1, "--nats-replicas", min=1, max=5,
                                      help="Copies of the stream if the service creates it: 3 on a 3-server "
                                           "JetStream cluster (give --nats every server, comma-separated)."),
    truth_replay: bool = typer.Option(False, "--truth-replay",
                                      help="Show DIRECTORY/truth.jsonl (and alerts.jsonl) instead of tracking."),
    speed: float = typer.Option(1.0, "--speed", help="Clock speed (x wall clock); with --speed N the clock "
                                                      "starts at the first detection's time."),
    step_s: float | None = typer.Option(None, "--step-s", help="Pipeline step and websocket update period (s; "
                                                                "default [service] step_s)."),
    tracker_frame_s: float | None = typer.Option(None, "--tracker-frame-s",
                                                 help="Tracker processing frame (s of sensor time); short = even "
                                                      "load (default [service] tracker_frame_s)."),
    cap_status: str | None = typer.Option(None, "--cap-status",
                                          help="CAP status of alert messages: Actual for real operations, else "
                                               "Exercise (default [service] cap_status)."),
    keys: str | None = typer.Option(None, "--keys", help="Sensor key registry (skytrace keys): HTTP and MQTT "
                                                          "then accept only signed batches (default [service] keys)."),
    cot: str = typer.Option("", "--cot", help="Stream tracks and alert zones as Cursor on Target to a TAK server "
                                               "input (tcp://host:port, tls://..., udp://group:port)."),
    cat062: str = typer.Option("", "--cat062", help="Send system tracks as ASTERIX CAT062 over UDP to host:port."),
    webhook: str = typer.Option("", "--webhook", help="POST every alert event to this URL, signed with HMAC-SHA256 "
                                                       "(secret from SKYTRACE_WEBHOOK_SECRET)."),
    asterix_udp: str = typer.Option("", "--asterix-udp", help="Listen for ASTERIX CAT048/CAT015 radar plots on UDP "
                                                               "HOST:PORT (e.g. 127.0.0.1:8600); each radar is a "
                                                               "sensor cat048-<SAC>-<SIC> of sensors.json."),
    sbs: str = typer.Option("", "--sbs", help="Read ADS-B from a BaseStation (SBS) feed, HOST[:PORT] (port 30003 "
                                              "of dump1090/readsb); reconnects with backoff."),
    aircraft_json: str = typer.Option("", "--aircraft-json", help="Poll readsb/dump1090 aircraft.json at this "
                                                                  "http(s):// URL (every --aircraft-json-every-s)."),
    aircraft_json_every_s: float = typer.Option(1.0, "--aircraft-json-every-s", help="aircraft.json poll period (s)."),
    remote_id_mqtt: str = typer.Option("", "--remote-id-mqtt", help="Subscribe to Remote ID frames forwarded by "
                                                                    "receivers on skytrace/v1/remote-id/<receiver> "
                                                                    "at this MQTT broker HOST:PORT."),
    cooperative_slots: int = typer.Option(2048, "--cooperative-slots", help="Most ADS-B aircraft and Remote ID "
                                                                            "drones followed at once (reports of "
                                                                            "more are refused and counted)."),
    insecure_demo: bool = typer.Option(False, "--insecure-demo", help="Accept unsigned HTTP reports (a local "
                                                                      "demonstration only: anyone on this machine "
                                                                      "can then inject drones)."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Also serve this Host name (e.g. the reverse "
                                                                  "proxy's public name); repeatable."),
    evidence: Path | None = typer.Option(None, "--evidence", help="Evidence vault (skytrace forensics init): serve "
                                                                  "its registry under /api/v1/forensics and the "
                                                                  "page /forensics.html; read-only unless "
                                                                  "SKYTRACE_EVIDENCE_KEY is set."),
    tiles: str | None = typer.Option(None, "--tiles", help="Base-map tiles under the map: a z/x/y tile directory or "
                                     "an .mbtiles or .pmtiles file served by skytrace, or an http(s) URL template "
                                     "(default: [service] map_tiles; none: fully offline)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the live service until interrupted.

    HTTP ingest takes signed batches (--keys) or, for a local demo, unsigned reports (--insecure-demo).
    SKYTRACE_INGEST_TOKEN additionally requires `Authorization: Bearer <token>`; SKYTRACE_MQTT_USER and
    SKYTRACE_MQTT_PASSWORD are the service's broker credentials (SKYTRACE_NATS_USER and SKYTRACE_NATS_PASSWORD
    for --nats).
    """
    from skytrace.config import load_config
    from skytrace.io.mqtt import MqttIngest
    from skytrace.service.app import create_app
    from skytrace.service.build import add_live_inputs, add_output_sinks, build_service, parse_hostport
    from skytrace.service.runner import BIND_HOST, ensure_port_free, run_server

    conf = load_config()
    port = conf.service.port if port is None else port
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 0 < port < 65536:
        raise typer.BadParameter(f"--port {port} is not a TCP port")
    if nats and not all(u.strip().startswith(("nats://", "tls://")) for u in nats.split(",")):
        raise typer.BadParameter(f"--nats must be a nats:// or tls:// URL (or several, comma-separated), got {nats!r}")
    ensure_port_free(port)  # before loading anything, and before printing a map URL that is someone else's
    if cap_status is not None and cap_status not in ("Actual", "Exercise", "System", "Test", "Draft"):
        raise typer.BadParameter("--cap-status must be one of Actual, Exercise, System, Test, Draft")
    service = build_service(directory, db or str(Path(directory) / "skytrace.db"), truth_replay, speed, step_s,
                            tracker_frame_s=tracker_frame_s, cap_status=cap_status, zones=zones, config=conf,
                            cooperative_slots=cooperative_slots if (sbs or aircraft_json or remote_id_mqtt) else 0)
    inputs = add_live_inputs(service, asterix_udp or None, sbs or None, aircraft_json or None,
                             remote_id_mqtt or None, aircraft_json_every_s,
                             os.environ.get("SKYTRACE_MQTT_USER") or None,
                             os.environ.get("SKYTRACE_MQTT_PASSWORD") or None)
    outputs = add_output_sinks(service, cot or None, cat062 or None, webhook or None,
                               (os.environ.get("SKYTRACE_WEBHOOK_SECRET") or "").encode() or None)
    verifier = None
    keys = keys if keys is not None else (conf.service.keys or None)
    if keys:
        from skytrace.security.signing import make_verifier

        sc = conf.service
        verifier = make_verifier(keys, service.table, max_future_s=sc.signed_max_future_s,
                                 max_age_s=sc.signed_max_age_s, replay_window=sc.replay_window)
        # the replay windows survive a restart: batches stored before are replays, not new reports
        verifier.seed(service.store.recent_batch_seqs(sc.replay_window))
    if (n_open := service.store.close_open_alerts(time.time())):
        typer.echo(f"closed {n_open} alert period(s) left open by a previous run (re-raised if still threatened)")
    # reports are acknowledged (HTTP 202, MQTT PUBACK) only once stored
    inbox = service.use_inbox(conf.service.inbox_max_queued)
    ingest = None
    if mqtt:
        host, mport = parse_hostport(mqtt, 1883)
        ingest = MqttIngest(service.table, service.submit, host, mport, client_id=mqtt_client_id, verifier=verifier,
                            inbox=inbox, on_heartbeats=service.heartbeat,
                            username=os.environ.get("SKYTRACE_MQTT_USER") or None,
                            password=os.environ.get("SKYTRACE_MQTT_PASSWORD") or None)
        ingest.stats = service.ingest_stats
        ingest.heartbeat_stats = service.heartbeat_stats
    extra_ingests: tuple = ()
    if nats:
        from skytrace.io.jetstream import NatsIngest

        js_ingest = NatsIngest(service.table, service.submit, nats, verifier=verifier, inbox=inbox,
                               on_heartbeats=service.heartbeat, user=os.environ.get("SKYTRACE_NATS_USER") or None,
                               password=os.environ.get("SKYTRACE_NATS_PASSWORD") or None, replicas=nats_replicas)
        js_ingest.stats = service.ingest_stats
        js_ingest.heartbeat_stats = service.heartbeat_stats
        js_ingest.check()  # no server there: one error line now, not a traceback from the web server's start
        extra_ingests = (js_ingest,)
    spare = len(service.coop.slots) if service.coop is not None else 0
    typer.echo(f"skytrace serving {len(service.table) - spare} sensors"
               + (f" (+{spare} spare rows for ADS-B aircraft and Remote ID drones)" if spare else "") + ", "
               f"{len(service.zones) if service.zones else 0} zones; store {service.store.url}")
    typer.echo(f"map: http://{BIND_HOST}:{port}/   API: http://{BIND_HOST}:{port}/docs")
    if outputs:
        typer.echo("outputs: " + ", ".join(type(s).__name__ for s in outputs))
    if inputs:
        typer.echo("inputs: " + ", ".join(i.name for i in inputs))
    token = os.environ.get("SKYTRACE_INGEST_TOKEN") or None
    if token is not None and len(token) < 16:
        raise typer.BadParameter("SKYTRACE_INGEST_TOKEN must be at least 16 characters")
    mode = ("signed batches only (" + str(keys) + ")" if verifier is not None else
            "UNSIGNED ACCEPTED (--insecure-demo)" if insecure_demo else "closed (no --keys)")
    typer.echo("HTTP ingest: " + mode + (", token required" if token else ""))
    routers = ()
    if evidence is not None:
        from skytrace.forensics.api import forensics_router

        ev_key = os.environ.get("SKYTRACE_EVIDENCE_KEY") or None
        # the registry lives in the store given with --db (shared with `skytrace forensics --db`), else the vault's
        routers = (forensics_router(evidence, db, ev_key),)
        typer.echo(f"evidence registry: {evidence} ({'writes with key' if ev_key else 'read-only'})")
    run_server(create_app(service, ingest, ingest_token=token, verifier=verifier, insecure_demo=insecure_demo,
                          allowed_hosts=(*conf.service.allowed_hosts, *allow_host),
                          allowed_origins=tuple(conf.service.allowed_origins), routers=routers,
                          tiles=conf.service.map_tiles if tiles is None else tiles, ingests=extra_ingests), port)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
