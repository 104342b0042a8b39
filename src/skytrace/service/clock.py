"""Clocks of the live service: the wall clock, or a scaled clock for accelerated replays.

A scaled clock runs ``speed`` times faster than the wall clock from an anchor. With ``anchor_on_first``, it is
anchored by the first detection that arrives (at that detection's arrival time), so that ``skytrace replay
--speed N`` and ``skytrace serve --speed N`` need no shared start time: the feed sets the clock.
"""

from __future__ import annotations

import threading
import time


class ScaledClock:
    """``t = t_anchor + (wall - wall_anchor) * speed``; until anchored, the wall clock (nothing is shown)."""

    def __init__(self, speed: float = 1.0, t_anchor: float | None = None, wall=time.time):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = float(speed)
        self._wall = wall
        self._lock = threading.Lock()
        self.t_anchor: float | None = None
        self.wall_anchor: float | None = None
        self.stopped_at: float | None = None
        if t_anchor is not None:
            self.anchor(t_anchor)

    def anchor(self, t: float) -> None:
        """Set the clock to ``t`` now, if it has not been anchored yet."""
        with self._lock:
            if self.t_anchor is None:
                self.t_anchor, self.wall_anchor = float(t), self._wall()

    @property
    def anchored(self) -> bool:
        return self.t_anchor is not None

    def set_speed(self, speed: float) -> None:
        """Run on from the current time at ``speed`` (the demo slows its replay when the machine cannot keep up)."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        with self._lock:
            if self.t_anchor is not None and self.stopped_at is None:
                now = self._wall()
                self.t_anchor += (now - self.wall_anchor) * self.speed
                self.wall_anchor = now
            self.speed = float(speed)

    def stop(self) -> float:
        """Stop the clock where it is (a replay that has ended: its time must not run on); returns that time."""
        with self._lock:
            if self.stopped_at is None:
                self.stopped_at = self.t_anchor + (self._wall() - self.wall_anchor) * self.speed \
                    if self.t_anchor is not None else self._wall()
            return self.stopped_at

    def __call__(self) -> float:
        if self.stopped_at is not None:
            return self.stopped_at
        if self.t_anchor is None:
            return self._wall()
        return self.t_anchor + (self._wall() - self.wall_anchor) * self.speed
