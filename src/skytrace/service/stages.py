"""What the live service drives: a small protocol, and the two stages that implement it.

The service only needs ``push(DetectionBatch)`` and ``step(t_now) -> StepResult`` (tracks and alert events at
``t_now``), plus optionally ``active_alerts(t_now)``. :class:`LivePipeline` around
:class:`skytrace.pipeline.Pipeline` (tracker, assessment and alerting) is the real one;
:class:`TruthReplayStage` replays a simulation's truth.jsonl (and, if given, a recorded alerts.jsonl) in
wall-clock time: an honest source of a moving picture for demos, for the map and for latency tests of the
transport, which does not pretend to be a tracker (its tracks are the truth).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert, TruthPoint
from skytrace.pipeline import Pipeline, StepResult
from skytrace.zones import ZoneSet

log = logging.getLogger(__name__)


@runtime_checkable
class Stage(Protocol):
    """The pipeline as the service sees it."""

    def push(self, batch: DetectionBatch) -> None: ...

    def step(self, t_now: float) -> StepResult: ...


def active_alerts(stage: Stage, t_now: float) -> list[Alert]:
    """Active alert periods of a stage, as :class:`~skytrace.model.Alert` records (empty if it has no alerting)."""
    if hasattr(stage, "active_alerts"):
        return list(stage.active_alerts(t_now))
    engine = getattr(stage, "alerts", None)
    if engine is None or not hasattr(engine, "active"):
        return []
    return [as_alert(a, t_now) for a in engine.active()]


def as_alert(obj: object, t_now: float) -> Alert:
    """An alerting engine's active-alert object as an Alert record (tolerant of the engine's own type)."""
    if isinstance(obj, Alert):
        return obj
    return Alert(zone=str(obj.zone), start=float(getattr(obj, "start", getattr(obj, "t", t_now))),
                 end=getattr(obj, "end", None), level=str(getattr(obj, "level", "warning")),
                 tracks=[str(t) for t in getattr(obj, "tracks", [])])


class LivePipeline:
    """:class:`skytrace.pipeline.Pipeline` for the live clock: tracks every step, alerts every ``alert_every_s``.

    The service steps often (0.25 s) so that new reports reach the map quickly; the assessment behind the alerts
    costs about a second per 1,000 tracks (docs/warnings.md) and its inputs move little in a quarter second, so
    it runs at its own slower cadence. With ``alert_every_s`` <= the step period this is exactly the Pipeline.
    """

    def __init__(self, pipeline: Pipeline, alert_every_s: float = 1.0):
        self.pipeline = pipeline
        self.alert_every_s = float(alert_every_s)
        self._last_alert_t = -np.inf

    @property
    def alerts(self):
        return self.pipeline.alerts

    def push(self, batch: DetectionBatch) -> None:
        self.pipeline.push(batch)

    def step(self, t_now: float) -> StepResult:
        tracks = self.pipeline.tracker.advance(t_now)
        events: list = []
        if self.pipeline.alerts is not None and t_now - self._last_alert_t >= self.alert_every_s:
            events = list(self.pipeline.alerts.update(t_now, tracks))
            self._last_alert_t = t_now
        return StepResult(t_now, tracks, events)


def pipeline_stage(table: SensorTable, zones: ZoneSet | None, tracker_config=None,
                   alert_every_s: float = 1.0) -> LivePipeline:
    """The real pipeline: tracker, plus alerting if :mod:`skytrace.alerting` is installed."""
    try:
        import skytrace.alerting  # noqa: F401
    except ImportError:
        log.warning("skytrace.alerting is not installed: tracks only, no zone alerts")
        zones = None
    return LivePipeline(Pipeline(table, zones=zones, tracker_config=tracker_config), alert_every_s)


class TruthReplayStage:
    """Tracks from a simulation's truth, played back so that scenario time ``t0`` falls at wall time ``wall0``.

    Scenario time runs ``speed`` times faster than the wall clock: ``t_scenario = t0 + (t_wall - wall0) * speed``.
    A target is shown at its latest truth sample not older than ``hold_s`` (scenario seconds); positions are
    vectorised over all targets of a step. Detections pushed in are counted, not used.
    """

    def __init__(self, truth: Sequence[TruthPoint], alerts: Sequence[Alert] = (), wall0: float = 0.0,
                 t0: float | None = None, speed: float = 1.0, hold_s: float = 5.0):
        if not truth:
            raise ValueError("truth replay needs at least one truth point")
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        order = np.argsort([p.t for p in truth], kind="stable")
        pts = [truth[i] for i in order]
        self.t = np.array([p.t for p in pts])
        self.target = np.array([p.target for p in pts])
        self.cols = {k: np.array([getattr(p, k) for p in pts]) for k in ("lat", "lon", "alt_m", "ve", "vn", "vu")}
        self.t0 = float(self.t[0]) if t0 is None else float(t0)
        self.t_end = float(self.t[-1])
        self.wall0, self.speed, self.hold_s = float(wall0), float(speed), float(hold_s)
        self.alerts = list(alerts)
        self.n_pushed = 0
        self._was_active: set[tuple[str, float]] = set()

    def scenario_time(self, t_wall: float) -> float:
        return self.t0 + (t_wall - self.wall0) * self.speed

    def wall_time(self, t_scenario: float) -> float:
        return self.wall0 + (t_scenario - self.t0) / self.speed

    @property
    def finished_wall(self) -> float:
        """Wall time at which the replay has nothing more to show."""
        ends = [self.t_end] + [a.end or a.start for a in self.alerts]
        return self.wall_time(max(ends))

    def push(self, batch: DetectionBatch) -> None:
        self.n_pushed += len(batch)

    def step(self, t_now: float) -> StepResult:
        ts = self.scenario_time(t_now)
        lo, hi = np.searchsorted(self.t, [ts - self.hold_s, ts], side="right")
        # latest sample per target in the window: unique over the reversed slice keeps the last occurrence
        tgt = self.target[lo:hi][::-1]
        _, first = np.unique(tgt, return_index=True)
        rows = lo + (hi - lo - 1 - first)
        rows = rows[np.argsort(self.target[rows], kind="stable")]
        n = rows.size
        c = self.cols
        snap = TrackSnapshot(t=float(t_now), track=self.target[rows].tolist(), status=["confirmed"] * n,
                             lat=c["lat"][rows], lon=c["lon"][rows], alt_m=c["alt_m"][rows],
                             ve=c["ve"][rows], vn=c["vn"][rows], vu=c["vu"][rows], pos_sigma_m=np.zeros(n))
        active = {(a.zone, a.start) for a in self.active_alerts(t_now)}
        events = [{"zone": z, "start": self.wall_time(s), "kind": "raised"} for z, s in active - self._was_active]
        events += [{"zone": z, "start": self.wall_time(s), "kind": "cleared"} for z, s in self._was_active - active]
        self._was_active = active
        return StepResult(float(t_now), snap, events)

    def last_data(self, t_now: float) -> float | None:
        """Wall time of the newest truth sample shown at ``t_now`` (the feed of this stage), None before any."""
        i = int(np.searchsorted(self.t, self.scenario_time(t_now), side="right"))
        return None if i == 0 else self.wall_time(float(self.t[i - 1]))

    def active_alerts(self, t_now: float) -> list[Alert]:
        """Recorded alert periods active at ``t_now``, with their times mapped to the wall clock."""
        ts = self.scenario_time(t_now)
        return [Alert(zone=a.zone, start=self.wall_time(a.start), end=None, level=a.level, tracks=a.tracks)
                for a in self.alerts if a.start <= ts and (a.end is None or ts < a.end)]
