"""The live service's engine: ingest queue -> store -> stage, stepped by the wall clock, broadcast to clients.

Threads and loops: MQTT (paho's network thread) and HTTP handlers only validate and enqueue
(:meth:`LiveService.submit`, lock-protected list append). One asyncio task ticks every ``step_s`` of wall clock;
each tick runs :meth:`LiveService.step_once` in a worker thread (the numpy pipeline and the database writes must
not block the event loop), then fans the resulting messages out to websocket subscribers through bounded queues
(a slow client loses old updates, never slows the pipeline or other clients).

The service's outputs are sinks of the pipeline, in publication order: the CAP feed and the websocket first, the
store last, so that a slow or failing database never delays or loses an alert. Every report the pipeline admits
is stored (a failed write is retried from a bounded backlog); reports rejected at the edge as implausibly dated
are counted in the status (``pipeline``), not stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.io.identity import SLOT_PREFIX, Identity, IdentityMap
from skytrace.io.mqtt import DecodeStats
from skytrace.model import Alert, Detection
from skytrace.pipeline import Pipeline, StepResult
from skytrace.service.stages import as_alert
from skytrace.store.base import Store
from skytrace.zones import ZoneSet

log = logging.getLogger(__name__)
ENCODER = msgspec.json.Encoder()


def with_identities(snap: TrackSnapshot, identities: IdentityMap | None) -> TrackSnapshot:
    """``snap`` with its identity columns: as annotated by the pipeline's identity check when it ran, else each
    track takes the class and identity of the first cooperative sensor that updated it (a cooperative target
    reports as its own sensor, :mod:`skytrace.io.identity`); unchanged when there is nothing to add. What the live
    ``tracks`` message shows and what the store keeps for history come from here, so playback shows the same class."""
    if snap.cls is not None or not identities:
        return snap
    n = len(snap)
    cls: list[str | None] = [None] * n
    target: list[str | None] = [None] * n
    for i in range(n):
        for s in snap.sensors_of(i) or ():
            if (ident := identities.by_sensor.get(s)) is not None:
                cls[i], target[i] = ident.cls, ident.target_id
                break
    return dataclasses.replace(snap, cls=cls, target_id=target)


def snapshot_message(snap: TrackSnapshot, n_in: int, t_newest_in: float | None,
                     identities: IdentityMap | None = None) -> dict:
    """A websocket ``tracks`` message: columns, rounded to what a map needs (~1 cm, 1 cm/s); ``class``,
    ``target_id`` and ``identity_flag`` (cooperative identities, null where none).

    The pipeline's identity check annotates the snapshot when it runs (:mod:`skytrace.alerting.identity`); otherwise,
    with ``identities`` (sensor id -> cooperative identity, :mod:`skytrace.io.identity`), a track takes the class of
    the first cooperative sensor that updated it (a cooperative target reports as its own sensor): ``manned`` (ADS-B)
    or ``cooperative-uav`` (Remote ID); null for a non-cooperative track, which the map draws as a possible threat."""
    n = len(snap)
    snap = with_identities(snap, identities)
    cls, target = snap.cls, snap.target_id
    return {"type": "tracks", "t": snap.t, "n_in": n_in, "t_newest_in": t_newest_in,
            "track": snap.track, "status": snap.status,
            "lat": np.round(snap.lat, 7).tolist(), "lon": np.round(snap.lon, 7).tolist(),
            "alt_m": np.round(snap.alt_m, 1).tolist(), "ve": np.round(snap.ve, 2).tolist(),
            "vn": np.round(snap.vn, 2).tolist(), "vu": np.round(snap.vu, 2).tolist(),
            "pos_sigma_m": np.round(snap.pos_sigma_m, 1).tolist(),
            "class": cls if cls is not None else [None] * n,
            "target_id": target if target is not None else [None] * n,
            "identity_flag": snap.identity_flag if snap.identity_flag is not None else [None] * n}


class _Sink:
    """A pipeline sink around one of the service's methods; errors are counted by the pipeline, not raised."""

    critical = False

    def __init__(self, fn, name: str):
        self.fn, self.name = fn, name

    def on_step(self, result: StepResult) -> None:
        self.fn(result)

    def close(self) -> None:
        return None


@dataclass
class ServiceStats:
    n_in: int = 0  # detections accepted from every source
    n_stored: int = 0  # detections written to the store
    n_steps: int = 0
    n_track_rows: int = 0
    n_tracks_max: int = 0  # most tracks in one step
    t_last_detection: float | None = None  # wall time the newest detection was accepted
    t_last_step: float | None = None
    step_ms_last: float = 0.0
    step_ms_max: float = 0.0
    step_started: float | None = None  # time.monotonic() when the step in progress began; None between steps
    errors: int = 0
    dropped: int = 0  # reports dropped because the store stayed down and the backlog hit max_pending
    shed: dict[str, int] = field(default_factory=dict)  # reports shed from tracking under overload, per kind
    queued_max: int = 0  # most reports waiting for one step
    shed_for_time: int = 0  # of ``shed``: reports over the step's time budget (``LiveService.step_load_max``)


@dataclass
class LiveService:
    """Drives the :class:`~skytrace.pipeline.Pipeline` by the wall clock and keeps the current picture for the API.

    Parameters
    ----------
    table, zones
        The sensor network and the alert zones (served to the map).
    stage
        The one pipeline (see :mod:`skytrace.service.stages`); the service adds its sinks to it (CAP feed and
        websocket first, the store last, so a slow or failing store never delays or loses an alert).
    store
        Where detections, track states and alerts are written.
    step_s
        Wall-clock period of pipeline steps and websocket updates (s); sets the floor of the end-to-end latency.
    track_store_every_s
        Track states are stored at most this often (s), to bound the history's size; detections are all stored.
    stale_after_s
        No detection for this long marks the feed as stalled (the map shows it).
    cap_status
        CAP ``status`` of the messages (``Actual`` for real operations; ``Exercise`` by default so that a service
        run on simulated or replayed data never emits an Actual alert by mistake).
    max_pending
        Backlog of reports kept while the store fails (oldest dropped beyond it, counted in ``stats.dropped``).
    """

    table: SensorTable
    zones: ZoneSet | None
    stage: Pipeline
    store: Store
    step_s: float = 0.25
    track_store_every_s: float = 1.0
    stale_after_s: float = 15.0
    max_pending: int = 2_000_000
    max_queued_reports: int = 100_000  # reports waiting for the next step; beyond, shed (skytrace.service.shedding)
    step_load_max: float = 0.5  # share of wall time the step may use; beyond, reports are shed from tracking (0: off)
    cap_status: str = "Exercise"
    clock: Callable[[], float] = time.time
    replay_done: bool = False  # a replay (demo) whose feed has ended: the map says so instead of "stalled"
    stats: ServiceStats = field(default_factory=ServiceStats)
    ingest_stats: DecodeStats = field(default_factory=DecodeStats)
    heartbeat_stats: DecodeStats = field(default_factory=DecodeStats)  # heartbeat payloads (MQTT and HTTP)
    auth: Any = None  # a skytrace.security.signing.Verifier when reports must be signed: its counts go in the status
    inbox: Any = None  # a skytrace.service.inbox.DurableInbox: reports are stored (and acknowledged) at ingest
    inputs: list = field(default_factory=list)  # live feeds (skytrace.interop.live), started and stopped by the app
    coop: Any = None  # skytrace.io.identity.CooperativeSensors: rows of ADS-B / Remote ID transmitters met live

    def __post_init__(self) -> None:
        self._pending: list[Detection] = []
        self._shed_unstored: list[Detection] = []  # shed from tracking, still to be stored (no durable inbox)
        self._cost_s_per_report: float | None = None  # smoothed step time per report (time-budgeted admission)
        self._last_step_mono: float | None = None
        self._beats: list[tuple[str, float]] = []  # heartbeats waiting for the next step
        self.heartbeat_counts = {"accepted": 0, "rejected_future": 0, "rejected_old": 0, "dropped": 0}
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self.snapshot: TrackSnapshot | None = None
        self.alerts: list[Alert] = []
        self._subscribers: set[asyncio.Queue] = set()
        self._last_track_store = -np.inf
        self.alert_detail: dict[str, dict] = {}  # zone -> probability, ETA and reason of its latest event
        self.cap_messages: collections.deque = collections.deque(maxlen=1000)  # (seq, t, zone, kind, xml)
        self._cap_seq = 0
        self.cap = None
        if self.zones is not None:
            try:
                from skytrace.alerting.cap import CapWriter
            except ImportError:
                log.warning("skytrace.alerting.cap is not installed: no CAP feed")
            else:
                self.cap = CapWriter(self.zones, status=self.cap_status)
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._step_msgs: list[dict] = []
        self._step_n_in = 0
        self._unstored: list[DetectionBatch] = []
        self._alerts_to_store: list[Alert] = []
        self.rollup: dict[str, str] = {}
        # the spare rows of cooperative transmitters are stored under their real names when first used
        self.store.put_sensors([s for s in self.table.records if not s.id.startswith(SLOT_PREFIX)])
        # sensors whose bearings point at nothing are flagged in the status (never dropped); the pipeline's own check
        # (pipeline_stage) also mutes the lone reports of sensors that alive silent neighbours contradict
        self.consistency = getattr(self.stage, "consistency", None)
        extra: list = []
        if self.consistency is None:
            from skytrace.security.consistency import SensorConsistency

            self.consistency = SensorConsistency(self.table)
            extra.append(self.consistency)  # a stage without the check (truth replay): flags for the status only
        self.identities = IdentityMap()  # cooperative targets (ADS-B, Remote ID) seen in the reports, by sensor
        # the service's outputs are the pipeline's sinks: publish first, then store
        self.stage.sinks.extend([*extra, _Sink(self._on_step_publish, "publish"), _Sink(self._on_step_store, "store")])

    # ------------------------------------------------------------------------------------------------- ingest
    def submit(self, dets: list[Detection]) -> None:
        """Queue validated detections (any thread)."""
        if not dets:
            return
        if not getattr(self.clock, "anchored", True):  # a scaled clock starts with the feed
            self.clock.anchor(min(d.t if d.t_arrival is None else d.t_arrival for d in dets))
        for d in dets:  # a cooperative report says who it is: its sensor is that target (skytrace.io.identity)
            if d.target_id is not None and d.sensor not in self.identities.by_sensor:
                self.identities.by_sensor[d.sensor] = Identity(d.cls, d.target_id)
        with self._lock:
            self._pending.extend(dets)
            self.stats.n_in += len(dets)
            self.stats.t_last_detection = self.clock()
            self.stats.queued_max = max(self.stats.queued_max, len(self._pending))
            if len(self._pending) > self.max_queued_reports:  # overload: shed the least valuable (docstring there)
                from skytrace.service.shedding import split_reports

                self._pending, dropped, shed = split_reports(self._pending, self.table,
                                                             int(self.max_queued_reports * 0.8))
                self._note_shed(dropped, shed)

    def heartbeat(self, beats: list[tuple[str, float]]) -> None:
        """Queue validated heartbeats ``(sensor id, t)`` (any thread); the next step hands them to
        :meth:`Pipeline.heartbeat` (tracker and consistency check), after the time plausibility check."""
        if not beats:
            return
        with self._lock:
            room = max(0, self.max_queued_reports - len(self._beats))
            self._beats.extend(beats[:room])
            self.heartbeat_counts["dropped"] += len(beats) - min(room, len(beats))

    def _apply_heartbeats(self, t_now: float) -> None:
        with self._lock:
            beats, self._beats = self._beats, []
        if not beats:
            return
        rows = np.array([self.table.index.get(s, -1) for s, _ in beats], dtype=np.int64)
        t = np.array([tb for _, tb in beats], dtype=float)
        cfg = self.stage.config
        future, old = t > t_now + cfg.max_future_s, t < t_now - cfg.max_age_s
        ok = ~future & ~old & (rows >= 0)
        self.heartbeat_counts["rejected_future"] += int(future.sum())
        self.heartbeat_counts["rejected_old"] += int((old & ~future).sum())
        self.heartbeat_counts["accepted"] += int(ok.sum())
        if ok.any():
            self.stage.heartbeat(rows[ok], t[ok])

    COST_MIN_REPORTS = 200  # steps with at least this many reports measure the cost of a report
    MIN_STEP_BUDGET = 200  # a step is never cut below this many reports

    def _admit_in_time(self, dets: list[Detection], interval_s: float) -> list[Detection]:
        """Time-budgeted admission: the reports this step may take so that it uses at most ``step_load_max`` of the
        wall time since the last step, at the measured cost per report. Beyond, the least valuable are shed from
        tracking (acoustic bearings of the busiest nodes, then sightings; never radar: :mod:`shedding`).

        Why: a step slower than the feed makes the next one larger and slower still; the tracker falls behind the
        clock, the map and the alerts lag by seconds, and on a loaded machine it stops confirming anything (a
        60 s run at 5x the sustainable rate confirmed no track). Redundant bearings of a dense cluster are the
        cheapest thing to lose; shed reports are still stored (the inbox acknowledged them after the commit) and
        counted in the status (``shed``, ``shed_for_time``).
        """
        cost = self._cost_s_per_report
        if not dets or cost is None or self.step_load_max <= 0 or cost <= 0:
            return dets
        budget = max(self.MIN_STEP_BUDGET, int(self.step_load_max * interval_s / cost))
        if len(dets) <= budget:
            return dets
        from skytrace.service.shedding import split_reports

        kept, dropped, shed = split_reports(dets, self.table, budget)
        with self._lock:
            self._note_shed(dropped, shed)
            self.stats.shed_for_time += len(dropped)
        return kept

    def _note_shed(self, dropped: list[Detection], shed: dict[str, int]) -> None:
        """Count reports shed from tracking (holding ``_lock``); without a durable inbox (which stored them before
        their acknowledgement) they still go to the store at the next step: shed from tracking, never lost."""
        for kind, n in shed.items():
            self.stats.shed[kind] = self.stats.shed.get(kind, 0) + n
        if dropped and self.inbox is None:
            self._shed_unstored.extend(dropped)

    def use_inbox(self, max_queued: int = 20_000):
        """Store and acknowledge reports at ingest (:class:`~skytrace.service.inbox.DurableInbox`); returns it."""
        from skytrace.service.inbox import DurableInbox

        if self.inbox is None:
            self.inbox = DurableInbox(self.store, self.table, max_queued=max_queued)
            self.inbox.on_stored = self._count_stored
        return self.inbox

    def _count_stored(self, n: int) -> None:
        with self._lock:
            self.stats.n_stored += n

    # --------------------------------------------------------------------------------------------------- step
    def step_once(self, t_now: float | None = None) -> list[dict]:
        """One pipeline step at wall time ``t_now``: push what arrived, step; the pipeline's sinks publish (CAP
        feed, websocket) and then store. Returns the step's messages."""
        with self._step_lock:
            t_start = time.perf_counter()
            self.stats.step_started = time.monotonic()
            try:
                return self._step_locked(t_now, t_start)
            finally:
                self.stats.step_started = None

    def _step_locked(self, t_now: float | None, t_start: float) -> list[dict]:
        """The body of :meth:`step_once` (holding the step lock)."""
        if not getattr(self.clock, "anchored", True):
            # a scaled clock waits for the feed: stepping the pipeline on the wall clock now would put its
            # clock hours ahead of the recorded reports, and it would drop them all as late
            return [self.status_message(self.clock())]
        t_now = self.clock() if t_now is None else t_now
        with self._lock:
            dets, self._pending = self._pending, []
            self._step_n_in = self.stats.n_in
        now_mono = time.monotonic()
        interval_s = self.step_s if self._last_step_mono is None else max(self.step_s, now_mono - self._last_step_mono)
        self._last_step_mono = now_mono
        dets = self._admit_in_time(dets, interval_s)
        n_step = len(dets)
        batch = DetectionBatch.from_records(dets, self.table) if dets else DetectionBatch.empty()
        self._step_msgs = []
        self._apply_heartbeats(t_now)
        self.stage.push(batch, t_clock=t_now)
        self.stage.step(t_now)
        msgs = self._step_msgs
        self.stats.n_steps += 1
        self.stats.t_last_step = t_now
        self.stats.step_ms_last = (time.perf_counter() - t_start) * 1e3
        if n_step >= self.COST_MIN_REPORTS:  # steps this large are dominated by their reports, not fixed costs
            c = self.stats.step_ms_last * 1e-3 / n_step
            self._cost_s_per_report = c if self._cost_s_per_report is None else 0.7 * self._cost_s_per_report + 0.3 * c
        self.stats.step_ms_max = max(self.stats.step_ms_max, self.stats.step_ms_last)
        return msgs

    # ------------------------------------------------------------------------------------------------- sinks
    def _on_step_publish(self, res: StepResult) -> None:
        """Sink 1 (fast, vital): the alert periods that changed are committed to the store first (write-ahead:
        an alert that was published is never missing from the history after a crash), then the CAP messages of
        the step's alert events and the websocket messages go out. A failing store does not hold an alert back:
        it is published anyway and its record retried by the store sink (counted in ``errors``)."""
        t_now = res.t
        self.snapshot = res.tracks
        self.stats.n_tracks_max = max(self.stats.n_tracks_max, len(res.tracks))
        alerts_changed = False
        if res.assessed:
            alerts = [as_alert(a, t_now) for a in (res.active_alerts or [])]
            if res.events or [(a.zone, a.start) for a in alerts] != [(a.zone, a.start) for a in self.alerts]:
                ended = {(a.zone, a.start) for a in self.alerts} - {(a.zone, a.start) for a in alerts}
                self._alerts_to_store += [Alert(zone=a.zone, start=a.start, end=t_now, level=a.level,
                                                tracks=a.tracks) for a in self.alerts if (a.zone, a.start) in ended]
                self._alerts_to_store += alerts
                self.alerts = alerts
                alerts_changed = True
                self._store_alerts()
        for ev in res.events:
            if dataclasses.is_dataclass(ev):
                d = dataclasses.asdict(ev)
                d["probability"] = round(float(d.get("probability", 0.0)), 3)
                self.alert_detail[str(d["zone"])] = d
                self._cap(ev)
        t_newest = float(np.max(res.detections.t)) if res.detections is not None and len(res.detections) else None
        msgs = [self.tracks_message(res.tracks, self._step_n_in, t_newest)]
        if alerts_changed:
            rollup = getattr(self.stage.alerts, "rollup", None)
            self.rollup = rollup() if callable(rollup) else {}
            msgs.append(self.alerts_message(t_now))
        msgs.append(self.status_message(t_now))
        self._step_msgs = msgs
        if self._loop is not None:  # live: hand to the websocket clients now, before the store is written
            self._loop.call_soon_threadsafe(self.publish, msgs)

    def _store_alerts(self) -> None:
        """Commit the pending alert periods now; on failure keep them for the store sink (counted, logged)."""
        try:
            self.store.put_alerts(self._alerts_to_store)
            self._alerts_to_store = []
        except Exception as exc:
            self.stats.errors += 1
            log.warning("alert periods not stored yet (%s); published anyway, retried next step", exc)

    def _on_step_store(self, res: StepResult) -> None:
        """Sink 2 (slow, fallible): detections, track states and alert periods to the store.

        A store failure loses nothing already published and nothing accepted: reports wait in a bounded backlog
        (oldest dropped beyond ``max_pending``, counted) and are written at the next step that succeeds.
        """
        if res.detections is not None and len(res.detections) and self.inbox is None:
            self._unstored.append(res.detections)  # with an inbox, reports were committed before their ack
        if self._shed_unstored:
            with self._lock:
                shed, self._shed_unstored = self._shed_unstored, []
            self._unstored.append(DetectionBatch.from_records(shed, self.table))
        new_sensors = self.coop.drain_new() if self.coop is not None else []
        try:
            if new_sensors:
                self.store.put_sensors(new_sensors)
                new_sensors = []
            if self._unstored:
                backlog = DetectionBatch.concat(self._unstored)
                self.stats.n_stored += self.store.put_detections(backlog, self.table)
                self._unstored = []
            if res.t - self._last_track_store >= self.track_store_every_s and len(res.tracks):
                self.stats.n_track_rows += self.store.put_tracks(with_identities(res.tracks, self.identities))
                self._last_track_store = res.t
            if self._alerts_to_store:
                self.store.put_alerts(self._alerts_to_store)
                self._alerts_to_store = []
        except Exception:
            self.stats.errors += 1
            if new_sensors and self.coop is not None:  # not stored: again at the next step
                self.coop.requeue_new(new_sensors)
            n = sum(len(b) for b in self._unstored)
            if n > self.max_pending:
                merged = DetectionBatch.concat(self._unstored)
                drop = n - self.max_pending
                self._unstored = [merged.take(np.arange(drop, n))]
                self.stats.dropped += drop
            raise

    def _cap(self, ev) -> None:
        """Keep the CAP 1.2 message of an alert event for the feed (a failure is logged, never stops a step)."""
        if self.cap is None or not hasattr(ev, "alert_id"):
            return
        try:
            xml = self.cap.message(ev)
        except Exception:
            self.stats.errors += 1
            log.exception("CAP message for zone %s failed", getattr(ev, "zone", "?"))
            return
        self._cap_seq += 1
        self.cap_messages.append((self._cap_seq, float(ev.t), str(ev.zone), str(ev.kind), xml))

    def tracks_message(self, snap: TrackSnapshot, n_in: int | None = None, t_newest_in: float | None = None) -> dict:
        """The ``tracks`` message of a snapshot, with the class of cooperative tracks."""
        return snapshot_message(snap, self.stats.n_in if n_in is None else n_in, t_newest_in, self.identities)

    def alerts_message(self, t_now: float) -> dict:
        active = []
        for a in self.alerts:
            d = msgspec.to_builtins(a)
            if (ev := self.alert_detail.get(a.zone)) is not None:
                d.update({k: ev.get(k) for k in ("probability", "eta_s", "reason", "certainty") if k in ev})
            active.append(d)
        return {"type": "alerts", "t": t_now, "active": active, "rollup": self.rollup}

    def status(self, t_now: float | None = None) -> dict:
        t_now = self.clock() if t_now is None else t_now
        last = self.stats.t_last_detection
        if hasattr(self.stage, "last_data") and (staged := self.stage.last_data(t_now)) is not None:
            last = staged if last is None else max(last, staged)
        age = None if last is None else t_now - last
        return {"t": t_now, "feed_stalled": age is None or age > self.stale_after_s, "last_detection_age_s": age,
                "n_in": self.stats.n_in, "n_stored": self.stats.n_stored, "n_steps": self.stats.n_steps,
                "n_tracks": len(self.snapshot) if self.snapshot is not None else 0,
                "n_active_alerts": len(self.alerts), "step_ms_last": round(self.stats.step_ms_last, 2),
                "step_ms_max": round(self.stats.step_ms_max, 2), "step_s": self.step_s,
                "stale_after_s": self.stale_after_s, "errors": self.stats.errors,
                "clock_speed": float(getattr(self.clock, "speed", 1.0)),
                "dropped": self.stats.dropped, "shed": dict(self.stats.shed), "queued_max": self.stats.queued_max,
                "shed_for_time": self.stats.shed_for_time,
                "replay_done": self.replay_done, "n_tracks_max": self.stats.n_tracks_max,
                "tracker": self._tracker_stats(), "pipeline": dict(self.stage.stats),
                "ingest": self.ingest_stats.as_dict(), "store": self.store.url.split("@")[-1],
                "auth": self.auth.as_dict() if self.auth is not None else None,
                "inputs": {inp.name: inp.stats.as_dict() for inp in self.inputs},
                "identity": self._identity_stats(),
                "inbox": self.inbox.stats.as_dict() if self.inbox is not None else None,
                "sensor_flags": self.consistency.flags(),
                "heartbeats": {**self.heartbeat_counts, "payloads": self.heartbeat_stats.as_dict()}}

    def _identity_stats(self) -> dict | None:
        """Cooperative targets: spare sensor rows in use, refused reports, tracks identified, identities flagged."""
        check = getattr(self.stage, "identity", None)
        if check is None and self.coop is None:
            return None
        out: dict = dict(check.stats) if check is not None else {}
        if self.coop is not None:
            out.update(slots=len(self.coop.slots), slots_in_use=sum(1 for r in self.coop.slots
                                                                      if r in self.coop.last_heard),
                       refused_full=self.coop.full)
        return out

    def _tracker_stats(self) -> dict | None:
        """The tracker's own counters (e.g. ``late_dropped``: reports later than its lag), when it has them."""
        tracker = getattr(self.stage, "tracker", None)
        stats = getattr(tracker, "stats", None)
        return {k: int(v) for k, v in stats.items()} if isinstance(stats, dict) else None

    def status_message(self, t_now: float) -> dict:
        return {"type": "status", **self.status(t_now)}

    # ------------------------------------------------------------------------------------------------ fan-out
    def subscribe(self, maxsize: int = 64) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize)
        self._subscribers.add(q)
        return q

    @property
    def n_subscribers(self) -> int:
        return len(self._subscribers)

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self._subscribers.discard(q)

    def publish(self, msgs: list[dict]) -> None:
        """Encode once, hand to every subscriber; a full queue drops its oldest message."""
        blobs = [ENCODER.encode(m) for m in msgs]
        for q in list(self._subscribers):
            for b in blobs:
                if q.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        q.get_nowait()
                q.put_nowait(b)

    async def run(self) -> None:
        """Tick forever every ``step_s`` of wall clock (a slow step delays the next, never piles steps up)."""
        next_t = time.monotonic()
        while True:
            next_t += self.step_s
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_t = time.monotonic()
            try:
                await asyncio.to_thread(self.step_once)  # its publish sink hands the messages to the loop
            except Exception:  # keep serving the last picture; the status shows the error count
                self.stats.errors += 1
                log.exception("pipeline step failed")
                continue

    def start(self) -> None:
        if self.inbox is not None:
            self.inbox.start()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # drain what is still queued so that nothing accepted is lost at shutdown
        await asyncio.to_thread(self.step_once)
        if self.inbox is not None:
            await asyncio.to_thread(self.inbox.stop)
