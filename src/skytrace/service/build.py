"""Assemble a :class:`~skytrace.service.core.LiveService` from a directory of interchange files.

The directory holds ``sensors.json`` (required); with ``truth_replay`` also ``truth.jsonl`` and, if present, a
recorded ``alerts.jsonl``. Zones and every parameter come from the one configuration (:mod:`skytrace.config`),
so the service alerts the same zones as ``skytrace alerts`` and the demo.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from skytrace.alerting.identity import IdentityCheck
from skytrace.batch import SensorTable
from skytrace.config import SkytraceConfig, load_config, load_zones
from skytrace.errors import SkytraceError
from skytrace.io import formats
from skytrace.io.identity import CooperativeSensors, IdentityMap, reserve_slots
from skytrace.service.clock import ScaledClock
from skytrace.service.core import LiveService
from skytrace.service.stages import TruthReplayStage, pipeline_stage
from skytrace.store import open_store

LIVE_TRACKER_FRAME_S = 0.25


def build_service(directory: Path, db: str | None = None, truth_replay: bool = False, speed: float = 1.0,
                  step_s: float | None = None, stale_after_s: float | None = None,
                  tracker_frame_s: float | None = None, cap_status: str | None = None,
                  zones: str | Path | None = None, config: SkytraceConfig | None = None,
                  cooperative_slots: int = 0) -> LiveService:
    """A live service over the files of ``directory`` (see module docstring).

    The tracker processes reports in frames of ``tracker_frame_s`` of sensor time. Live, a short frame spreads
    the work evenly over the steps: at 5,000 reports/s, 1 s frames made every fourth step take ~0.7 s (p99
    latency ~1 s) and 0.25 s frames kept the p99 near 0.2 s (bench/bench_live.py, docs/service.md).

    ``cooperative_slots`` spare sensor rows are reserved for ADS-B aircraft and Remote ID drones met live (the
    tracker's sensor table is fixed; :class:`skytrace.io.identity.CooperativeSensors`). The pipeline tags tracks
    with the identity their transmitters claim and cross-checks it (:mod:`skytrace.alerting.identity`).
    """
    conf = config or load_config()
    sc = conf.service
    step_s = sc.step_s if step_s is None else step_s
    stale_after_s = sc.stale_after_s if stale_after_s is None else stale_after_s
    tracker_frame_s = sc.tracker_frame_s if tracker_frame_s is None else tracker_frame_s
    cap_status = sc.cap_status if cap_status is None else cap_status
    directory = Path(directory)
    if not directory.is_dir():
        raise SkytraceError(f"{directory} is not a directory (expected one with sensors.json)")
    if not speed > 0 or speed > 10_000:
        raise SkytraceError(f"--speed must be in (0, 10000], got {speed}")
    if not 0.01 <= step_s <= 10:
        raise SkytraceError(f"--step-s must be in [0.01, 10], got {step_s}")
    if not 0 <= cooperative_slots <= 100_000:
        raise SkytraceError(f"cooperative sensor rows must be in [0, 100000], got {cooperative_slots}")
    sensors = formats.read_sensors(directory / "sensors.json")
    table = SensorTable.from_sensors(sensors + reserve_slots(cooperative_slots))
    identities = IdentityMap()
    zone_set = load_zones(conf, zones)  # the same zones as every other mode (default: oblasts + cells)
    store = open_store(db)
    if truth_replay:
        truth = formats.read_truth(directory / "truth.jsonl")
        if not truth:
            raise SkytraceError(f"{directory / 'truth.jsonl'} has no truth points")
        alerts = formats.read_alerts(directory / "alerts.jsonl") if (directory / "alerts.jsonl").exists() else []
        stage = TruthReplayStage(truth, alerts, wall0=time.time(), speed=speed)
        clock = time.time
    else:
        if not 0.05 <= tracker_frame_s <= 5:
            raise SkytraceError(f"--tracker-frame-s must be in [0.05, 5], got {tracker_frame_s}")
        stage = pipeline_stage(table, zone_set, dataclasses.replace(conf.tracker, frame_s=tracker_frame_s),
                               conf.pipeline.alert_every_s, conf.pipeline, conf.alerting, conf.assess)
        stage.identity = IdentityCheck(table, identities, conf.identity)
        clock = time.time if speed == 1.0 else ScaledClock(speed)
    coop = CooperativeSensors(table, identities) if cooperative_slots else None
    return LiveService(coop=coop, table=table, zones=zone_set, stage=stage, store=store, step_s=step_s,
                       stale_after_s=stale_after_s * (speed if not truth_replay else 1.0), clock=clock,
                       cap_status=cap_status, track_store_every_s=sc.track_store_every_s,
                       max_pending=sc.max_pending, max_queued_reports=sc.max_queued_reports,
                       step_load_max=sc.step_load_max)


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` -> (host, port), with a user error for garbage."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    try:
        p = int(port)
    except ValueError:
        raise SkytraceError(f"bad port in {text!r}") from None
    if not host or not 0 < p < 65536:
        raise SkytraceError(f"expected host:port, got {text!r}")
    return host, p


def add_output_sinks(service: LiveService, cot: str | None = None, cat062: str | None = None,
                     webhook: str | None = None, webhook_secret: bytes | None = None) -> list:
    """Plug the interoperability outputs into the service's pipeline, before the store sink.

    ``cot``: a pytak COT_URL (tcp://host:port of a TAK server's input, tls://..., udp://multicast:port);
    ``cat062``: host:port for ASTERIX CAT062 over UDP; ``webhook``: a URL that receives every alert event as a
    signed JSON POST (HMAC-SHA256 with ``webhook_secret``). Each sends from its own thread through a bounded queue:
    a slow or dead receiver never delays a step. Returns the sinks added.
    """
    sinks: list = []
    if cot:
        from skytrace.interop.cot import CotSink, CotSinkConfig

        sinks.append(CotSink(CotSinkConfig(url=cot, zones=service.zones)))
    if cat062:
        from skytrace.interop.asterix import Cat062SinkConfig, Cat062UdpSink

        host, port = parse_hostport(cat062, 8600)
        sinks.append(Cat062UdpSink(Cat062SinkConfig(host=host, port=port)))
    if webhook:
        from skytrace.interop.webhook import WebhookConfig, WebhookSink

        if not webhook_secret or len(webhook_secret) < 16:
            raise SkytraceError("--webhook needs SKYTRACE_WEBHOOK_SECRET (at least 16 characters) to sign the POSTs")
        sinks.append(WebhookSink(WebhookConfig(url=webhook, secret=webhook_secret)))
    for s in sinks:
        service.stage.sinks.insert(max(len(service.stage.sinks) - 1, 0), s)  # before the store
    return sinks


def add_live_inputs(service: LiveService, asterix_udp: str | None = None, sbs: str | None = None,
                    aircraft_json: str | None = None, remote_id_mqtt: str | None = None,
                    aircraft_json_every_s: float = 1.0, mqtt_user: str | None = None,
                    mqtt_password: str | None = None) -> list:
    """Create the live feeds of ``serve`` (skytrace.interop.live); the app starts them with the service.

    ``asterix_udp``: host:port to listen on for CAT048/CAT015 (bind 127.0.0.1 unless a host is given);
    ``sbs``: host:port of a BaseStation feed (port 30003 by default); ``aircraft_json``: the URL of readsb's
    aircraft.json; ``remote_id_mqtt``: host:port of the broker carrying ``skytrace/v1/remote-id/<receiver>``.
    ADS-B and Remote ID need spare cooperative rows (``build_service(cooperative_slots=...)``).
    """
    from skytrace.interop import live

    made: list = []
    coop = service.coop
    if (sbs or aircraft_json or remote_id_mqtt) and coop is None:
        raise SkytraceError("ADS-B and Remote ID inputs need spare sensor rows: build the service with "
                            "cooperative_slots > 0")
    if asterix_udp:
        host, port = parse_hostport(asterix_udp, 8600)
        made.append(live.AsterixUdpInput(service.table, service.submit, host, port))
    if sbs:
        host, port = parse_hostport(sbs, 30003)
        made.append(live.SbsTcpInput(service.table, service.submit, host, port, coop=coop))
    if aircraft_json:
        made.append(live.AircraftJsonPoller(service.table, service.submit, aircraft_json, aircraft_json_every_s,
                                            coop=coop))
    if remote_id_mqtt:
        host, port = parse_hostport(remote_id_mqtt, 1883)
        made.append(live.RemoteIdMqttInput(service.table, service.submit, host, port, username=mqtt_user,
                                           password=mqtt_password, coop=coop))
    service.inputs.extend(made)
    return made
