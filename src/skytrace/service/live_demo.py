"""The live half of ``skytrace demo``: a simulated run played through the live service in accelerated time.

``run_live_demo(out_dir, speed)`` takes a directory written by the simulator (sensors.json, detections.jsonl,
zones.geojson), starts the service on embedded defaults (SQLite in ``out_dir``, in-process feed instead of a
broker, real tracker and alerting when installed), anchors a scaled clock at the first report, feeds the
reports by arrival time ``speed`` times faster than real time, serves the map on 127.0.0.1 and returns a summary
when the feed is exhausted (``headless``) or on Ctrl-C. The ``demo`` command wires it in a few lines.

The night can be played while it is still being simulated (``source_done``): the map is served as soon as
sensors.json exists, and :class:`DetectionTail` reads detections.jsonl as the simulator (another process) writes
it, in arrival order, a whole chunk ahead of the replay's clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from skytrace.batch import SensorTable
from skytrace.io import formats
from skytrace.model import Detection
from skytrace.service.app import create_app
from skytrace.service.clock import ScaledClock
from skytrace.service.core import LiveService
from skytrace.service.replay import InProcessFeed
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store


class DetectionTail:
    """A detections.jsonl read as it grows: complete lines only, each decoded and checked against the network.

    Lines that fail are counted in :attr:`bad` (the writer is our own simulator; a broken line is a bug to see in
    the summary, not a reason to stop the map)."""

    def __init__(self, path: Path, table: SensorTable):
        self.path, self.table = Path(path), table
        self.pos = 0
        self.bad = 0
        self._rest = b""
        self._decoder = msgspec.json.Decoder(Detection)

    def _decode(self, lines: list[bytes]) -> list[Detection]:
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                det = self._decoder.decode(line)
                formats.check_detection(det, self.table)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                self.bad += 1
                continue
            out.append(det)
        return out

    def read(self, final: bool = False) -> list[Detection]:
        """The detections written since the last call; ``final``: the writer has finished (take the last line
        even without its newline)."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.pos)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        lines = (self._rest + data).split(b"\n")
        self._rest = b"" if final else lines.pop()
        return self._decode(lines)


class ReplayGovernor:
    """Keeps the map live on a machine that cannot track the night at the wanted speed.

    When a pipeline step runs longer than a second, the replay's clock is slowed by half (the next step then has
    less of the night to digest), and again at 2, 4, 8 ... s if that step still runs, and after each step that
    took over a second; after ten quick steps in a row it speeds up by half again, up to ``speed``.
    Without it a busy machine falls into ever longer steps, each carrying more of the night than the last, and
    the map freezes for minutes (measured: one step of 18 min at 60x with the machine's 2 cores overloaded)."""

    def __init__(self, clock: ScaledClock, stats, step_s: float, speed: float, echo: Callable[[str], None],
                 min_speed: float = 1.0):
        self.clock, self.stats, self.step_s, self.speed, self.echo = clock, stats, step_s, speed, echo
        self.min_speed = min_speed
        self.seen_steps = stats.n_steps
        self.quick = 0
        self.next_halving_s = 1.0  # busy time of the running step at which the speed is halved (again)
        self.told = speed
        self.speed_min_seen = speed

    def check(self, now: float | None = None) -> float:
        """Look at the service's step timing once (``now``: ``time.monotonic()``); returns the clock's speed."""
        st, clock = self.stats, self.clock
        now = time.monotonic() if now is None else now
        busy_s = now - st.step_started if st.step_started is not None else 0.0
        new_steps = st.n_steps != self.seen_steps
        self.seen_steps = st.n_steps
        speed = clock.speed
        if new_steps or busy_s == 0.0:
            self.next_halving_s = 1.0
        slow_step = new_steps and st.step_ms_last > 1000.0
        if busy_s > self.next_halving_s:
            self.next_halving_s *= 2
            slow_step = True
        if slow_step and speed > self.min_speed:
            clock.set_speed(max(self.min_speed, speed / 2))
            self.quick = 0
        elif new_steps and st.step_ms_last < 1000.0 * self.step_s:
            self.quick += 1
            if self.quick >= 10 and speed < self.speed:
                clock.set_speed(min(self.speed, speed * 1.5))
                self.quick = 0
        self.speed_min_seen = min(self.speed_min_seen, clock.speed)
        if clock.speed <= self.told / 2 or (clock.speed == self.speed and self.told != self.speed):
            self.told = clock.speed
            self.echo(f"[live] the machine is busy: replay slowed to {self.told:g}x to keep the map live"
                      if self.told < self.speed else f"[live] replay back at {self.told:g}x")
        return clock.speed

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            self.check()


class LiveDemo:
    """The live replay as a background service: :meth:`start` serves the map at once (while the caller does its
    batch work), :meth:`wait` blocks until the night has played (or forever on a kept-up map), :meth:`close`
    stops it. With ``loop``, each time the night ends it is played again from the start on a fresh service and
    store (the page reconnects by itself), so a newcomer can watch it again without re-running anything."""

    def __init__(self, out_dir: Path, speed: float = 60.0, port: int = 8080, echo: Callable[[str], None] = print,
                 tail_s: float = 120.0, loop: bool = False, source_done: Callable[[], bool] | None = None,
                 zones=None):
        """``source_done``: the detections are still being written (by a simulator in another process) until it
        returns True; the map is served at once and the reports are played as they are read. ``zones``: the
        configured zones, if the caller has loaded them already (a few seconds for the 3,346 default zones)."""
        from skytrace.config import load_config, load_zones

        self.conf = load_config()
        self.out_dir, self.speed, self.port, self.echo, self.tail_s, self.loop = \
            Path(out_dir), speed, port, echo, tail_s, loop
        self.table = formats.load_sensor_table(self.out_dir / "sensors.json")
        # the same zones as the offline alerts (default: oblasts + 15 km cells)
        self.zones = zones if zones is not None else load_zones(self.conf)
        self.source_done = source_done
        self.tail = DetectionTail(self.out_dir / "detections.jsonl", self.table)
        self.complete = source_done is None
        self.dets = list(formats.iter_detections(self.tail.path, self.table)) if self.complete else []
        self._follower: threading.Thread | None = None
        self._stop_follow = threading.Event()
        self._stop_govern = threading.Event()
        self.min_speed = max(1.0, speed / 30.0)
        self.governor: ReplayGovernor | None = None
        self.db = self.out_dir / "skytrace.db"
        self.rounds = 0
        self.url: str | None = None
        self._server: ServerThread | None = None
        self.svc: LiveService | None = None
        self.feed: InProcessFeed | None = None
        self.last_summary: dict = {}
        self._closed = True

    def _service(self) -> LiveService:
        import dataclasses

        conf = self.conf
        t_first = min(d.t if d.t_arrival is None else d.t_arrival for d in self.dets) if self.complete else None
        clock = ScaledClock(self.speed, t_anchor=t_first)  # a night still being written: anchored by the feed
        self.db.unlink(missing_ok=True)
        return LiveService(table=self.table, zones=self.zones,
                           stage=pipeline_stage(self.table, self.zones,
                                                dataclasses.replace(conf.tracker, frame_s=conf.service.tracker_frame_s),
                                                conf.pipeline.alert_every_s, conf.pipeline, conf.alerting, conf.assess),
                           store=open_store(str(self.db)), step_s=0.25, clock=clock,
                           stale_after_s=15.0 * self.speed)

    def start(self) -> LiveDemo:
        """Serve the map and start feeding the night (returns at once)."""
        self.svc = self._service()
        self._closed = False
        # the demo feeds the service in-process (no sender waits for an acknowledgement): stored by the step
        self._server = ServerThread(create_app(self.svc, durable=False, tiles=self.conf.service.map_tiles),
                                    port=self.port).__enter__()
        self.port = self._server.port  # a loop round serves on the same port
        self.url = self._server.url
        self.feed = InProcessFeed(self.svc, self.dets, complete=self.complete).start()
        self.governor = ReplayGovernor(self.svc.clock, self.svc.stats, self.svc.step_s, self.speed, self.echo,
                                       self.min_speed)
        self._stop_govern = threading.Event()
        threading.Thread(target=self.governor.run, args=(self._stop_govern,), name="skytrace-demo-governor",
                         daemon=True).start()
        if not self.complete and self._follower is None:
            self._follower = threading.Thread(target=self._follow, name="skytrace-demo-tail", daemon=True)
            self._follower.start()
        self.rounds += 1
        return self

    def _follow(self) -> None:
        """Read the detections the simulator writes and hand them to the feed, until it has finished."""
        assert self.source_done is not None
        while not self._stop_follow.is_set():
            finished = self.source_done()  # asked first: whatever was written before it finished is read below
            new = self.tail.read(final=finished)
            self.dets.extend(new)
            if self.feed is not None:
                self.feed.extend(new, complete=finished)
            if finished:
                self.complete = True
                return
            self._stop_follow.wait(0.2)

    def played(self) -> bool:
        """The feed is exhausted and the tail (alerts clearing) has passed."""
        assert self.svc is not None and self.feed is not None
        if not self.feed.done:
            return False
        return not len(self.feed.ta) or self.svc.clock() >= self.feed.ta[-1] + self.tail_s

    def wait(self, keep_up: bool) -> None:
        """Until the night has played; then stop its clock and, with ``keep_up`` or ``loop``, keep serving (Ctrl-C
        ends). The counts are in :attr:`last_summary` after :meth:`close`."""
        assert self.svc is not None
        try:
            while True:
                while not self.played():
                    time.sleep(0.5)
                t_end = self.svc.clock.stop()  # the night is over: its clock must not run on at speed x
                self.svc.replay_done = True
                if self.loop:
                    self.close()
                    self.echo(f"[live] round {self.rounds} finished ({self.last_summary['alerts']} alerts); playing "
                              "the night again (Ctrl-C to stop)")
                    self.start()
                    continue
                if keep_up:
                    self.echo(f"replay finished at {time.strftime('%H:%M:%S', time.gmtime(t_end))} UTC (scenario "
                              "time); the clock is stopped, the map stays up until Ctrl-C")
                    while True:
                        time.sleep(1)
                return
        except KeyboardInterrupt:
            return

    def summary(self) -> dict:
        svc = self.svc
        assert svc is not None
        return {"detections_in": svc.stats.n_in, "detections_stored": svc.store.count_detections(),
                "tracks_max": svc.stats.n_tracks_max, "track_rows": svc.store.count_tracks(),
                "alerts": len(svc.store.alerts()), "step_ms_max": round(svc.stats.step_ms_max, 1),
                "tracker_late_dropped": (svc.status().get("tracker") or {}).get("late_dropped"),
                "rejected_at_edge": svc.stage.stats["rejected_old"] + svc.stage.stats["rejected_future"],
                "unreadable_lines": self.tail.bad, "replay_speed_min":
                    round(self.governor.speed_min_seen, 2) if self.governor is not None else self.speed}

    def close(self) -> None:
        """Stop the feed and the server (the service finishes its step), count, close the store."""
        self._stop_follow.set()
        self._stop_govern.set()
        if self.feed is not None:
            self.feed.stop()
        if self.svc is not None:
            time.sleep(2 * self.svc.step_s)
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None
        if self.svc is not None and not self._closed:
            self.last_summary = self.summary()
            self.svc.store.close()
            self._closed = True


def run_live_demo(out_dir: Path, speed: float = 60.0, port: int = 8080, headless: bool = False,
                  echo: Callable[[str], None] = print, tail_s: float = 120.0, loop: bool = False) -> dict:
    """Play ``out_dir`` through the live service; returns counts (detections in/stored, tracks, alerts)."""
    demo = LiveDemo(out_dir, speed, port, echo, tail_s, loop=loop)
    if not demo.dets:
        return {"detections_in": 0, "detections_stored": 0, "tracks_max": 0, "alerts": 0}
    demo.start()
    echo(f"live map: {demo.url}/  (speed {speed:g}x, store {demo.db})")
    try:
        demo.wait(keep_up=not headless)
    finally:
        demo.close()
    return demo.last_summary
