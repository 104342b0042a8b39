"""The one pipeline: reports -> tracking -> assessment and alert policy -> sinks, advanced step by step.

The same object runs in the three modes of the architecture, unchanged:

- offline (``skytrace track``, ``skytrace alerts``, ``skytrace demo``): a file, as fast as the machine goes,
  driven by :func:`run` which cuts the stream at steps of arrival time;
- simulated: the simulator's output in virtual time (tests, the demo's live replay at N x);
- live (``skytrace serve``): the service calls :meth:`Pipeline.step` on the wall clock.

Stages are plugged in, never special-cased here:

- a **track source** (:class:`TrackSource`): the :class:`~skytrace.tracking.Tracker`, or a recorded tracks file
  (:class:`RecordedTracks`) for re-running only the alerting;
- an **alert policy** (:class:`skytrace.alerting.AlertPolicy`): ``update(t, tracks, detections) -> events``,
  ``active()``, ``close(t)``;
- an optional **consistency check** (:class:`skytrace.security.consistency.SensorConsistency`): run after tracking
  and before the alert policy, it sees every admitted report and the track picture, and hands the policy the
  sensors whose reports it mutes (``policy.mute_sensors(mask)``: bearings that alive silent neighbours contradict);
- **sinks** (:class:`Sink`): ``on_step(result)`` and ``close()``. Sinks run in the order given; the order is the
  publication order, so put fast, vital outputs (CAP, websocket) before slow or fallible ones (the store).

Time: the pipeline's clock is the *arrival* time of reports (``t_arrival``, or ``t`` when absent). Reports are
pushed in arrival order and the pipeline is stepped at regular instants; the tracker holds reports back for its
configured lag so that late, out-of-order reports are still used in order.

Plausibility at the edge (:meth:`Pipeline.push`): a report dated more than ``max_future_s`` after its arrival
(or after the clock) or older than ``max_age_s`` is rejected and counted by reason, never buffered without bound.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot

if TYPE_CHECKING:
    from skytrace.model import Alert, TrackPoint
    from skytrace.zones import ZoneSet

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    """How the pipeline is stepped and what it admits (section ``[pipeline]`` of skytrace.toml)."""

    step_s: float = 1.0  # s; offline step of arrival time (tracks written, sinks called); live: [service] step_s
    alert_every_s: float = 1.0  # s; the alert policy re-assesses at most this often (~0.3 s per 1,000 tracks)
    max_future_s: float = 30.0  # s; reports dated later than their arrival by more are rejected (clock fault, forgery)
    max_age_s: float = 300.0  # s; reports older than this at arrival are rejected (the tracker drops what is > its lag)
    max_gap_s: float = 600.0  # s; offline, a longer silence in a recording is jumped over, not stepped through


@dataclass
class StepResult:
    """What one step of the pipeline produced (what every sink receives)."""

    t: float
    tracks: TrackSnapshot
    events: list = field(default_factory=list)  # alert events of this step (skytrace.alerting.AlertEvent)
    detections: DetectionBatch | None = None  # reports admitted in this step
    assessed: bool = False  # the alert policy ran in this step (its active alerts are current)
    active_alerts: list[Alert] | None = None  # alerts in force after this step (when ``assessed``)
    final: bool = False  # the last result of a run (after ``finish``)


@runtime_checkable
class TrackSource(Protocol):
    """What produces tracks: the tracker, or recorded tracks.

    How long it holds reports back is read from ``lag_s`` or ``cfg.lag_s`` when present (0 otherwise).
    """

    stats: dict

    def ingest(self, batch: DetectionBatch) -> None: ...

    def advance(self, t_now: float) -> TrackSnapshot: ...


@runtime_checkable
class Sink(Protocol):
    """An output of the pipeline: called after every step, closed at the end of a run."""

    def on_step(self, result: StepResult) -> None: ...

    def close(self) -> None: ...


class CallbackSink:
    """A sink around a function (tests, ad-hoc outputs)."""

    critical = True

    def __init__(self, fn: Callable[[StepResult], None]):
        self.fn = fn

    def on_step(self, result: StepResult) -> None:
        self.fn(result)

    def close(self) -> None:
        return None


class Pipeline:
    """Track source -> alert policy -> sinks, wired once. ``push`` reports as they arrive, ``step`` the clock.

    Parameters
    ----------
    sensors
        The sensor table (reports refer to its rows).
    zones
        Alert zones; with no ``policy`` given, the default per-zone policy is built on them. ``None``: no alerting.
    config
        :class:`PipelineConfig`.
    tracker_config
        :class:`skytrace.tracking.TrackerConfig` of the default tracker (ignored when ``tracker`` is given).
    alert_policy
        The alert policy's configuration (its class selects the policy, :func:`skytrace.alerting.create_policy`);
        default the ``evidence`` policy with its defaults.
    policy
        An alert policy object (overrides ``alert_policy``).
    tracker
        A :class:`TrackSource`; default a new :class:`skytrace.tracking.Tracker` on ``sensors``.
    sinks
        Outputs, called in this order after every step.
    identity
        Cooperative identities (:class:`skytrace.alerting.identity.IdentityCheck`): tags every snapshot with the
        class and identity cooperative targets claim, and hides believed manned aircraft (and, by policy,
        identified Remote ID drones) and their reports from the alert policy. None: no identities.
    consistency
        A per-sensor consistency check (:class:`skytrace.security.consistency.SensorConsistency`): observes each
        step's reports and tracks (and the heartbeats) and tells the alert policy which sensors to mute. None: none.
    """

    def __init__(self, sensors: SensorTable, zones: ZoneSet | None = None, tracker_config: Any = None,
                 alert_policy: Any = None, frame: Any = None, *, config: PipelineConfig | None = None,
                 policy: Any = None, tracker: TrackSource | None = None, sinks: Sequence[Sink] = (),
                 assess_config: Any = None, identity: Any = None, consistency: Any = None):
        self.sensors = sensors
        self.identity = identity
        self.consistency = consistency
        self.config = config or PipelineConfig()
        if tracker is None:
            from skytrace.tracking import Tracker

            tracker = Tracker(sensors, frame=frame, config=tracker_config)
        self.tracker: TrackSource = tracker
        if policy is None and zones is not None:
            from skytrace.alerting import create_policy

            policy = create_policy(None, zones, sensors, alert_policy, assess_config=assess_config)
        self.alerts = policy
        self.sinks: list[Sink] = list(sinks)
        self.n_pushed = 0
        self.t: float | None = None  # time of the last step
        self.stats: dict[str, int] = {"admitted": 0, "rejected_future": 0, "rejected_old": 0, "steps": 0,
                                      "sink_errors": 0, "policy_errors": 0}
        self._last_alert_t = -math.inf
        self._since_alert: list[DetectionBatch] = []
        self._step_dets: list[DetectionBatch] = []
        self._closed = False
        self._sink_log_t = -math.inf

    # ------------------------------------------------------------------------------------------------ input
    @property
    def lag_s(self) -> float:
        lag = getattr(self.tracker, "lag_s", None)
        if lag is None:
            lag = getattr(getattr(self.tracker, "cfg", None), "lag_s", None)
        return float(lag) if lag is not None else 0.0

    @property
    def max_age_s(self) -> float:
        return self.config.max_age_s

    def push(self, batch: DetectionBatch, t_clock: float | None = None) -> int:
        """Admit reports that arrived (plausibility checks at the edge); returns how many were admitted.

        A report is compared with its arrival time (``t_arrival``), else with ``t_clock`` (the wall clock live),
        else with itself (offline, a report with no arrival time arrived when it was made). Rejected reports are
        counted in ``stats`` by reason.
        """
        if not len(batch):
            return 0
        ref = np.where(np.isfinite(batch.t_arrival), batch.t_arrival,
                       t_clock if t_clock is not None else batch.t)
        future = batch.t > ref + self.config.max_future_s
        old = batch.t < ref - self.max_age_s
        bad = future | old
        if bad.any():
            self.stats["rejected_future"] += int(future.sum())
            self.stats["rejected_old"] += int((old & ~future).sum())
            batch = batch.take(~bad)
        if len(batch):
            self.tracker.ingest(batch)
            self.n_pushed += len(batch)
            self.stats["admitted"] += len(batch)
            self._step_dets.append(batch)
        return len(batch)

    def heartbeat(self, sensor_rows: np.ndarray, t: np.ndarray) -> int:
        """Sensors ``sensor_rows`` (rows of the sensor table) were alive at ``t`` and heard nothing: their silence
        then counts as negative information in the tracker (docs/tracking.md, "Silence") and in the alert policy
        (docs/warnings.md, "Negative information"); the consistency check gets them too (a silent neighbour is one
        that is alive). Returns how many were passed on (0 when none of them uses heartbeats)."""
        rows = np.asarray(sensor_rows, dtype=np.int64).ravel()
        t = np.broadcast_to(np.asarray(t, dtype=float), rows.shape)
        beats = [b for b in (getattr(self.tracker, "heartbeat", None), getattr(self.alerts, "heartbeat", None))
                 if b is not None]
        if self.consistency is not None:
            beats.append(self.consistency.heartbeat)
        if not beats:
            return 0
        for beat in beats:
            beat(rows, t)
        return int(rows.size)

    # ------------------------------------------------------------------------------------------------- step
    def step(self, t_now: float, batch: DetectionBatch | None = None, force_alerts: bool = False) -> StepResult:
        """Advance to ``t_now`` (after pushing ``batch``): tracks, alerts when due, then every sink."""
        if batch is not None:
            self.push(batch)
        dets = DetectionBatch.concat(self._step_dets) if self._step_dets else DetectionBatch.empty()
        self._step_dets = []
        tracks = self.tracker.advance(t_now)
        if self.identity is not None:
            tracks = self.identity.annotate(t_now, tracks, dets)
        res = StepResult(t_now, tracks, [], dets)
        if self.consistency is not None:
            self.consistency.observe(t_now, tracks, dets)
            if self.alerts is not None and hasattr(self.alerts, "mute_sensors"):
                self.alerts.mute_sensors(self.consistency.muted())
        if self.alerts is not None:
            if len(dets):
                self._since_alert.append(dets)
            if force_alerts or t_now - self._last_alert_t >= self.config.alert_every_s - 1e-9:
                seen = DetectionBatch.concat(self._since_alert) if self._since_alert else DetectionBatch.empty()
                self._since_alert = []
                try:
                    a_tracks, a_seen = (tracks, seen) if self.identity is None else \
                        self.identity.alert_view(tracks, seen)
                    res.events = list(self.alerts.update(t_now, a_tracks, a_seen))
                    res.assessed = True
                    res.active_alerts = list(self.alerts.active()) if hasattr(self.alerts, "active") else None
                except Exception:
                    # a failing policy must not stop tracking, publishing and storing: the alerts in force stay
                    # as they were, the failure is counted (status) and logged (rate-limited)
                    self.stats["policy_errors"] += 1
                    self._log_limited("alert policy %s failed", type(self.alerts).__name__)
                self._last_alert_t = t_now
        self.t = t_now
        self.stats["steps"] += 1
        self._emit(res)
        return res

    def _emit(self, res: StepResult) -> None:
        for sink in self.sinks:
            try:
                sink.on_step(res)
            except Exception:
                if getattr(sink, "critical", False):
                    raise
                self.stats["sink_errors"] += 1
                self._log_limited("sink %s failed (%d errors so far)", type(sink).__name__,
                                  self.stats["sink_errors"])

    def _log_limited(self, msg: str, *args: Any) -> None:
        """Log the current exception at most every 10 s (a dead store must not flood the log)."""
        now = time.monotonic()
        if now - self._sink_log_t > 10.0:
            self._sink_log_t = now
            log.exception(msg, *args)

    def finish(self, t_last: float | None = None, step_s: float | None = None) -> list[StepResult]:
        """End of a run: step until every held-back report is processed, then :meth:`close`."""
        if self._closed:
            return []
        step_s = step_s or self.config.step_s
        t = self.t if t_last is None else t_last
        out: list[StepResult] = []
        if t is not None:
            for _ in range(int(math.ceil(self.lag_s / step_s)) + 1):
                t += step_s
                out.append(self.step(t, force_alerts=True))
        final = self.close(t)
        return out + ([final] if final is not None else [])

    def close(self, t: float | None = None) -> StepResult | None:
        """Clear every alert still in force at ``t`` (a final result with the all-clear events goes to every sink),
        then close the sinks. Returns that final result (None without alerting or a time)."""
        if self._closed:
            return None
        self._closed = True
        final = None
        if self.alerts is not None and t is not None:
            final = StepResult(t, self.tracker.advance(t), list(self.alerts.close(t)), DetectionBatch.empty(), True,
                               [], final=True)
            self._emit(final)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                if getattr(sink, "critical", False):
                    raise
                log.exception("closing sink %s failed", type(sink).__name__)
        return final


# ------------------------------------------------------------------------------------------- track sources
class RecordedTracks:
    """Recorded track points (a tracks.jsonl) as a track source: ``advance(t)`` gives the latest snapshot <= t.

    Lets ``skytrace alerts`` run the very same pipeline (policy, sinks) as live tracking, over tracks made by
    skytrace or by any other tracker. Reports pushed in are counted, not used.
    """

    lag_s = 0.0

    def __init__(self, points: Sequence[TrackPoint], statuses: Iterable[str] | None = None):
        keep = set(statuses) if statuses is not None else None
        by_t: dict[float, list] = {}
        for p in points:
            if keep is None or p.status in keep:
                by_t.setdefault(float(p.t), []).append(p)
        self.times = np.array(sorted({float(p.t) for p in points}))
        self._by_t = by_t
        self.stats = {"detections_in": 0}

    def ingest(self, batch: DetectionBatch) -> None:
        self.stats["detections_in"] += len(batch)

    def advance(self, t_now: float) -> TrackSnapshot:
        i = int(np.searchsorted(self.times, t_now + 1e-9, side="right")) - 1
        if i < 0:
            return TrackSnapshot.from_records(t_now, [])
        t = float(self.times[i])
        return TrackSnapshot.from_records(t, self._by_t.get(t, []))


# ------------------------------------------------------------------------------------------------- driving
def arrival_time(batch: DetectionBatch) -> np.ndarray:
    """Arrival time of each report at the fusion centre: ``t_arrival`` where given, else ``t``."""
    return np.where(np.isfinite(batch.t_arrival), batch.t_arrival, batch.t)


def paced_batches(batches: Iterable[DetectionBatch], step_s: float, t_end: float | None = None,
                  max_gap_s: float = math.inf) -> Iterator[tuple[float, DetectionBatch]]:
    """Cut a stream of batches (in arrival order) at multiples of ``step_s`` of arrival time.

    Yields ``(t_step, batch)``: every report that arrived before ``t_step``, then the clock moves to ``t_step``.
    Steps with no reports are yielded too (with an empty batch) so that tracks are predicted and alerts cleared
    while the sky is quiet — for at most ``max_gap_s`` after the last report: a longer silence (a recording with
    a gap, or one absurd timestamp) is jumped over rather than stepped through. Reports that arrive earlier than
    the current clock (a file not in arrival order) are delivered with the next step: never dropped.
    """
    clock: float | None = None
    last_data = -math.inf
    pending: list[DetectionBatch] = []
    for b in batches:
        if not len(b):
            continue
        ta = arrival_time(b)
        if clock is None:
            clock = math.floor(float(np.min(ta)) / step_s) * step_s + step_s
        while True:
            before = ta < clock
            if before.all():
                pending.append(b)
                last_data = max(last_data, float(np.max(ta)))
                break
            if before.any():
                pending.append(b.take(before))
                last_data = max(last_data, float(np.max(ta[before])))
                b, ta = b.take(~before), ta[~before]
            yield clock, DetectionBatch.concat(pending)
            pending = []
            clock += step_s
            t_next = float(np.min(ta))
            if t_next - clock > max_gap_s and clock > last_data + max_gap_s:
                clock = math.floor(t_next / step_s) * step_s + step_s  # jump the silence
    if clock is None:
        return
    yield clock, DetectionBatch.concat(pending)
    if t_end is not None:
        while clock + step_s <= t_end:
            clock += step_s
            yield clock, DetectionBatch.empty()


def run(pipeline: Pipeline, batches: Iterable[DetectionBatch], step_s: float | None = None,
        on_step: Callable[[StepResult], None] | None = None, t_end: float | None = None,
        finish: bool = True) -> int:
    """Drive ``pipeline`` over a stream of report batches in arrival order; returns the number of steps.

    With ``finish`` (the default) the run ends with :meth:`Pipeline.finish`: held-back reports are processed,
    alerts cleared and sinks closed, so every mode ends a stream the same way.
    """
    step_s = step_s or pipeline.config.step_s
    extra = [CallbackSink(on_step)] if on_step is not None else []
    pipeline.sinks.extend(extra)
    n = 0
    try:
        for t_step, batch in paced_batches(batches, step_s, t_end, pipeline.config.max_gap_s):
            pipeline.step(t_step, batch)
            n += 1
        if finish:
            n += len(pipeline.finish(step_s=step_s))
    finally:
        for s in extra:
            pipeline.sinks.remove(s)
    return n


def with_heartbeats(pipeline: Pipeline, batches: Iterable[DetectionBatch],
                    heartbeats: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Iterator[DetectionBatch]:
    """Pass ``batches`` through, first handing the pipeline the heartbeats (sensor rows, t, t_arrival arrays, in
    arrival order) that arrived by the last arrival of each batch: both streams stay in step, memory bounded."""
    hb_iter = iter(heartbeats)
    rows, t, arr = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    done = False
    for b in batches:
        t_hi = float(np.max(np.where(np.isfinite(b.t_arrival), b.t_arrival, b.t))) if len(b) else -math.inf
        while not done and (arr.size == 0 or arr[-1] <= t_hi):
            nxt = next(hb_iter, None)
            if nxt is None:
                done = True
                break
            r, tt, aa = nxt
            rows, t, arr = np.r_[rows, r], np.r_[t, tt], np.r_[arr, np.where(np.isfinite(aa), aa, tt)]
        now = arr <= t_hi
        if now.any():
            pipeline.heartbeat(rows[now], t[now])
            rows, t, arr = rows[~now], t[~now], arr[~now]
        yield b
    for r, tt, _ in hb_iter:
        rows, t = np.r_[rows, r], np.r_[t, tt]
    if rows.size:
        pipeline.heartbeat(rows, t)


def track_files(sensors_path: Path, detections_path: Path, out: Path, every_s: float = 1.0,
                config: Any = None, skip_bad: bool = False, progress: bool = False,
                pipeline_config: Any = None, heartbeats_path: Path | None = None,
                identity_config: Any = None) -> dict:
    """Run the pipeline (tracker only) over a detections file (file order = arrival order); write every reported
    track (confirmed, coasting, tentative with its status) at each multiple of ``every_s``. ``heartbeats_path``: the
    sensors' heartbeats.jsonl, if any (only sensors known to be alive have their silence used)."""
    from skytrace.batch import SensorTable
    from skytrace.io import formats
    from skytrace.io.identity import IdentityMap
    from skytrace.io.sinks import TrackFileSink
    table = SensorTable.from_sensors(formats.read_sensors(sensors_path))
    pcfg = pipeline_config or PipelineConfig()
    identities = IdentityMap.scan(detections_path)  # cooperative targets (ADS-B, Remote ID) tag their tracks
    identity = None
    if identities:
        from skytrace.alerting.identity import IdentityCheck

        identity = IdentityCheck(table, identities, identity_config)  # tags tracks, flags contradicted claims
    sink = TrackFileSink(out)
    pipe = Pipeline(table, zones=None, tracker_config=config, config=pcfg, sinks=[sink], identity=identity)
    stats = formats.ReadStats()
    batches = formats.iter_detection_batches(detections_path, table, batch_size=20_000,
                                             on_error="skip" if skip_bad else "raise", stats=stats)
    cpu0 = time.process_time()
    prog = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Path(detections_path).open("rb") as fh:
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        prog = Progress(TextColumn("tracking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        transient=True)
        prog.start()
        task = prog.add_task("track", total=total)

        def counted(it):
            for b in it:
                yield b
                prog.update(task, completed=stats.lines)

        batches = counted(batches)
    if heartbeats_path is not None:
        batches = with_heartbeats(pipe, batches, formats.iter_heartbeat_batches(
            heartbeats_path, table, batch_size=20_000, on_error="skip" if skip_bad else "raise"))
    try:
        steps = run(pipe, batches, every_s)
    finally:
        if prog is not None:
            prog.stop()
    return {"read": stats, "tracker": dict(pipe.tracker.stats), "pipeline": dict(pipe.stats),
            "track_points": sink.count, "steps": steps, "cpu_s": time.process_time() - cpu0}
