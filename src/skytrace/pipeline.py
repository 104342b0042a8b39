"""The one pipeline: detections -> tracking -> assessment and alerting, advanced step by step.

The same object runs in the three modes of the architecture: offline (a detections file, as fast as the machine
goes), simulated (the simulator's output in virtual time) and live (MQTT/HTTP in wall-clock time). A stage knows
only its input and output types; this module only wires them and keeps the clock.

Time: the pipeline's clock is the *arrival* time of reports (``t_arrival``, or ``t`` when absent). Reports are
pushed in arrival order and the pipeline is stepped at regular instants; the tracker holds reports back for its
configured lag so that late, out-of-order reports are still used in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.zones import ZoneSet


@dataclass
class StepResult:
    """What one step of the pipeline produced."""

    t: float
    tracks: TrackSnapshot
    events: list = field(default_factory=list)  # alerting.AlertEvent


class Pipeline:
    """Tracking and (optionally) alerting, wired. ``push`` reports as they arrive, ``step`` the clock."""

    def __init__(self, sensors: SensorTable, zones: ZoneSet | None = None, tracker_config=None, alert_policy=None,
                 frame=None):
        from skytrace.tracking import Tracker

        self.sensors = sensors
        self.tracker = Tracker(sensors, frame=frame, config=tracker_config)
        self.alerts = None
        if zones is not None:
            from skytrace.alerting import AlertEngine

            self.alerts = AlertEngine(zones, alert_policy) if alert_policy is not None else AlertEngine(zones)
        self.n_pushed = 0

    def push(self, batch: DetectionBatch) -> None:
        if len(batch):
            self.tracker.ingest(batch)
            self.n_pushed += len(batch)

    def step(self, t_now: float) -> StepResult:
        tracks = self.tracker.advance(t_now)
        events = self.alerts.update(t_now, tracks) if self.alerts is not None else []
        return StepResult(t_now, tracks, list(events))


def arrival_time(batch: DetectionBatch) -> np.ndarray:
    """Arrival time of each report at the fusion centre: ``t_arrival`` where given, else ``t``."""
    return np.where(np.isfinite(batch.t_arrival), batch.t_arrival, batch.t)


def paced_batches(batches: Iterable[DetectionBatch], step_s: float, t_end: float | None = None
                  ) -> Iterator[tuple[float, DetectionBatch]]:
    """Cut a stream of batches (in arrival order) at multiples of ``step_s`` of arrival time.

    Yields ``(t_step, batch)``: every report that arrived before ``t_step``, then the clock moves to ``t_step``.
    Steps with no reports are yielded too (with an empty batch) so that tracks are predicted and alerts cleared
    while the sky is quiet. Reports that arrive earlier than the current clock (a file not in arrival order) are
    delivered with the next step: never dropped.
    """
    clock: float | None = None
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
                break
            pending.append(b.take(before))
            b, ta = b.take(~before), ta[~before]
            yield clock, DetectionBatch.concat(pending)
            pending = []
            clock += step_s
    if clock is None:
        return
    yield clock, DetectionBatch.concat(pending)
    if t_end is not None:
        while clock + step_s <= t_end:
            clock += step_s
            yield clock, DetectionBatch.empty()


def run(pipeline: Pipeline, batches: Iterable[DetectionBatch], step_s: float,
        on_step: Callable[[StepResult], None] | None = None, t_end: float | None = None) -> int:
    """Drive ``pipeline`` over a stream of report batches in arrival order; returns the number of steps."""
    n = 0
    for t_step, batch in paced_batches(batches, step_s, t_end):
        pipeline.push(batch)
        res = pipeline.step(t_step)
        n += 1
        if on_step is not None:
            on_step(res)
    return n
