"""What the live service drives: the one :class:`skytrace.pipeline.Pipeline`, assembled two ways.

:func:`pipeline_stage` is the real one (tracker, assessment and alerting). :class:`TruthReplayStage` is the same
Pipeline with a different track source and policy: it replays a simulation's truth.jsonl (and, if given, a
recorded alerts.jsonl) in wall-clock time: an honest source of a moving picture for demos, for the map and for
latency tests of the transport, which does not pretend to be a tracker (its tracks are the truth).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.model import Alert, TruthPoint
from skytrace.pipeline import Pipeline, PipelineConfig
from skytrace.zones import ZoneSet

log = logging.getLogger(__name__)


def active_alerts(stage: Pipeline, t_now: float) -> list[Alert]:
    """Active alert periods of a pipeline, as :class:`~skytrace.model.Alert` records (empty without alerting)."""
    policy = getattr(stage, "alerts", None)
    if policy is None or not hasattr(policy, "active"):
        return []
    return [as_alert(a, t_now) for a in policy.active()]


def as_alert(obj: object, t_now: float) -> Alert:
    """An alert policy's active-alert object as an Alert record (tolerant of the policy's own type)."""
    if isinstance(obj, Alert):
        return obj
    return Alert(zone=str(obj.zone), start=float(getattr(obj, "start", getattr(obj, "t", t_now))),
                 end=getattr(obj, "end", None), level=str(getattr(obj, "level", "warning")),
                 tracks=[str(t) for t in getattr(obj, "tracks", [])])


def pipeline_stage(table: SensorTable, zones: ZoneSet | None, tracker_config=None, alert_every_s: float = 1.0,
                   config: PipelineConfig | None = None, alert_policy=None, assess_config=None) -> Pipeline:
    """The real pipeline for the live clock: tracks every step, alerts every ``alert_every_s``.

    The service steps often (0.25 s) so that new reports reach the map quickly; the assessment behind the alerts
    costs about 0.3 s per 1,000 tracks (docs/warnings.md) and its inputs move little in a quarter second, so it
    runs at its own slower cadence (``[pipeline] alert_every_s``).
    """
    from skytrace.security.consistency import SensorConsistency

    cfg = dataclasses.replace(config or PipelineConfig(), alert_every_s=alert_every_s)
    return Pipeline(table, zones=zones, tracker_config=tracker_config, alert_policy=alert_policy, config=cfg,
                    assess_config=assess_config, consistency=SensorConsistency(table))


class TruthReplay:
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
        self.stats = {"detections_in": 0}

    def scenario_time(self, t_wall: float) -> float:
        return self.t0 + (t_wall - self.wall0) * self.speed

    def wall_time(self, t_scenario: float) -> float:
        return self.wall0 + (t_scenario - self.t0) / self.speed

    @property
    def finished_wall(self) -> float:
        """Wall time at which the replay has nothing more to show."""
        ends = [self.t_end] + [a.end or a.start for a in self.alerts]
        return self.wall_time(max(ends))

    lag_s = 0.0

    def ingest(self, batch: DetectionBatch) -> None:
        self.stats["detections_in"] += len(batch)

    def advance(self, t_now: float) -> TrackSnapshot:
        ts = self.scenario_time(t_now)
        lo, hi = np.searchsorted(self.t, [ts - self.hold_s, ts], side="right")
        # latest sample per target in the window: unique over the reversed slice keeps the last occurrence
        tgt = self.target[lo:hi][::-1]
        _, first = np.unique(tgt, return_index=True)
        rows = lo + (hi - lo - 1 - first)
        rows = rows[np.argsort(self.target[rows], kind="stable")]
        n = rows.size
        c = self.cols
        return TrackSnapshot(t=float(t_now), track=self.target[rows].tolist(), status=["confirmed"] * n,
                             lat=c["lat"][rows], lon=c["lon"][rows], alt_m=c["alt_m"][rows],
                             ve=c["ve"][rows], vn=c["vn"][rows], vu=c["vu"][rows], pos_sigma_m=np.zeros(n))

    def last_data(self, t_now: float) -> float | None:
        """Wall time of the newest truth sample shown at ``t_now`` (the feed of this stage), None before any."""
        i = int(np.searchsorted(self.t, self.scenario_time(t_now), side="right"))
        return None if i == 0 else self.wall_time(float(self.t[i - 1]))

    def active_alerts(self, t_now: float) -> list[Alert]:
        """Recorded alert periods active at ``t_now``, with their times mapped to the wall clock."""
        ts = self.scenario_time(t_now)
        return [Alert(zone=a.zone, start=self.wall_time(a.start), end=None, level=a.level, tracks=a.tracks)
                for a in self.alerts if a.start <= ts and (a.end is None or ts < a.end)]


class RecordedAlerts:
    """An alert policy that replays recorded alert periods (alerts.jsonl) on a :class:`TruthReplay`'s clock.

    Its events are plain dicts (``raised`` / ``cleared``): a replay of recorded alerts issues no CAP message.
    """

    def __init__(self, source: TruthReplay):
        self.source = source
        self._t = -np.inf
        self._was_active: set[tuple[str, float]] = set()

    def update(self, t: float, tracks: TrackSnapshot, detections: DetectionBatch | None = None) -> list[dict]:
        self._t = t
        active = {(a.zone, a.start) for a in self.source.active_alerts(t)}
        events = [{"zone": z, "start": s, "kind": "raised"} for z, s in active - self._was_active]
        events += [{"zone": z, "start": s, "kind": "cleared"} for z, s in self._was_active - active]
        self._was_active = active
        return events

    def active(self) -> list[Alert]:
        return self.source.active_alerts(self._t)

    def close(self, t: float) -> list[dict]:
        events = [{"zone": z, "start": s, "kind": "cleared"} for z, s in self._was_active]
        self._was_active = set()
        return events


class TruthReplayStage(Pipeline):
    """The one pipeline with a :class:`TruthReplay` as its track source and :class:`RecordedAlerts` as policy."""

    def __init__(self, truth: Sequence[TruthPoint], alerts: Sequence[Alert] = (), wall0: float = 0.0,
                 t0: float | None = None, speed: float = 1.0, hold_s: float = 5.0):
        source = TruthReplay(truth, alerts, wall0, t0, speed, hold_s)
        super().__init__(SensorTable.from_sensors([]), tracker=source, policy=RecordedAlerts(source),
                         config=PipelineConfig(alert_every_s=0.0))
        self.replay = source

    def scenario_time(self, t_wall: float) -> float:
        return self.replay.scenario_time(t_wall)

    def wall_time(self, t_scenario: float) -> float:
        return self.replay.wall_time(t_scenario)

    @property
    def target(self) -> np.ndarray:
        return self.replay.target

    @property
    def finished_wall(self) -> float:
        return self.replay.finished_wall

    def last_data(self, t_now: float) -> float | None:
        return self.replay.last_data(t_now)
