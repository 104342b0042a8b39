"""File sinks of the pipeline: tracks.jsonl, alerts.jsonl (alert periods) and events.jsonl (CAP files:
:class:`skytrace.alerting.sinks.CapFileSink`).

Each is a :class:`skytrace.pipeline.Sink` (``on_step(result)``, ``close()``), so the offline commands, the demo
and the live service write their outputs through the same objects. File sinks are ``critical``: a full disk
stops an offline run with a clear error instead of silently losing output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from skytrace.io.formats import JsonlWriter, write_jsonl
from skytrace.model import Alert

LEVEL_RANK = {"clear": 0, "advisory": 1, "warning": 2, "imminent": 3}


class TrackFileSink:
    """Every track of every ``every_s`` of time (default: every step) to tracks.jsonl, streaming."""

    critical = True

    def __init__(self, path: str | Path, every_s: float = 0.0, statuses: tuple[str, ...] | None = None,
                 tag: Callable[[list], object] | None = None):
        self.writer = JsonlWriter(path)
        self.tag = tag  # sets fields of the records before writing (cooperative identities: skytrace.interop)
        self.every_s = float(every_s)
        self.statuses = set(statuses) if statuses else None
        self._last_t = -math.inf
        self.count = 0

    def on_step(self, result: Any) -> None:
        if result.final or result.t - self._last_t < self.every_s - 1e-9:
            return
        self._last_t = result.t
        recs = result.tracks.to_records()
        if self.statuses is not None:
            recs = [r for r in recs if r.status in self.statuses]
        if self.tag is not None:
            self.tag(recs)
        self.writer.write_many(recs)
        self.count += len(recs)

    def close(self) -> None:
        self.writer.close()


class AlertPeriodSink:
    """Alert periods from the alert events: one :class:`~skytrace.model.Alert` per raise..clear (alerts.jsonl).

    The period's level is the highest level it reached (an alert that became imminent is stored as imminent).
    """

    critical = True

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.open: dict[str, dict] = {}
        self.periods: list[Alert] = []

    def on_step(self, result: Any) -> None:
        for ev in result.events:
            if ev.kind == "raise":
                self.open[ev.alert_id] = {"zone": ev.zone, "start": ev.start, "level": ev.level,
                                          "tracks": set(ev.tracks)}
            elif ev.kind == "update" and (p := self.open.get(ev.alert_id)) is not None:
                if LEVEL_RANK.get(ev.level, 0) > LEVEL_RANK.get(p["level"], 0):
                    p["level"] = ev.level
                p["tracks"] |= set(ev.tracks)
            elif ev.kind == "clear" and (p := self.open.pop(ev.alert_id, None)) is not None:
                p["tracks"] |= set(ev.tracks)
                self.periods.append(Alert(zone=p["zone"], start=p["start"], end=ev.t, level=p["level"],
                                          tracks=sorted(p["tracks"])))

    def close(self) -> None:
        if self.path is not None:
            ordered: list[Alert] = sorted(self.periods, key=lambda a: (a.start, a.zone))
            write_jsonl(self.path, ordered)


class EventFileSink:
    """Every alert event (raise / update / clear with its reason) as a line of events.jsonl."""

    critical = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w")
        self.events: list = []

    def on_step(self, result: Any) -> None:
        for ev in result.events:
            self.events.append(ev)
            row = asdict(ev) if is_dataclass(ev) and not isinstance(ev, type) else ev
            self._fh.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self._fh.close()
