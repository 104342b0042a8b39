"""Replay of a recorded detections.jsonl into a live service, paced by arrival time (``skytrace replay``).

Reports are published at ``wall0 + (t_arrival - t_arrival0) / speed``, grouped per sensor and per 50 ms tick
(one MQTT message per sensor per tick, as a node that batches its reports would). With ``retime`` the times are
shifted so that the first report is "now" (``t`` and ``t_arrival`` both, keeping the propagation delays), which
is what a wall-clock service (``serve`` at speed 1) needs; at ``--speed N`` keep the recorded times and run the
service with the same ``--speed``: its clock starts at the first report.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import msgspec

from skytrace.errors import SkytraceError
from skytrace.io import formats
from skytrace.model import Detection
from skytrace.service.build import parse_hostport

TICK_S = 0.05
ENCODER = msgspec.json.Encoder()


def _arrival(d: Detection) -> float:
    return d.t if d.t_arrival is None else d.t_arrival


class BatchSigner:
    """Signs each sensor's messages with that sensor's own key, ``DIR/<sensor>.key`` (as written by ``skytrace keys
    register SENSOR --generate DIR/SENSOR.key``): a replay then speaks exactly as the nodes would, so it works
    against a service started with ``--keys`` (no ``--insecure-demo``)."""

    def __init__(self, key_dir: Path):
        self.key_dir = Path(key_dir)
        if not self.key_dir.is_dir():
            raise SkytraceError(f"--sign-dir {self.key_dir} is not a directory of <sensor>.key files")
        self._signers: dict = {}

    def sign(self, sensor: str, dets: list[Detection]) -> bytes:
        signer = self._signers.get(sensor)
        if signer is None:
            from skytrace.security.keys import load_private_key
            from skytrace.security.signing import Signer

            path = self.key_dir / f"{sensor}.key"
            if not path.is_file():
                raise SkytraceError(f"no key for sensor {sensor!r}: {path} is missing (skytrace keys register "
                                    f"{sensor} --registry keys.json --generate {path})")
            signer = self._signers[sensor] = Signer(sensor, load_private_key(path))
        return signer.sign(dets)


def _post(url: str, body: bytes, retries: int = 30) -> int:
    """POST one message; retried while the service answers 503 (overloaded, or not stored yet: it has not
    acknowledged). Returns the HTTP status (202 accepted, 422 rejected)."""
    for _ in range(retries):
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                json.loads(resp.read())
                return resp.status
        except urllib.error.HTTPError as exc:
            if exc.code == 422:
                return 422
            if exc.code != 503:
                raise SkytraceError(f"POST {url}: HTTP {exc.code} {exc.reason}") from None
            time.sleep(float(exc.headers.get("Retry-After") or 1))
        except OSError as exc:
            raise SkytraceError(f"cannot POST to {url}: {exc}") from None
    raise SkytraceError(f"POST {url}: still overloaded (503) after {retries} tries")


def replay_detections(directory: Path, speed: float = 1.0, mqtt: str | None = None, http: str | None = None,
                      retime: bool = True, limit_s: float | None = None,
                      progress: Callable[[str], None] | None = None, sign_dir: Path | None = None) -> dict:
    """Publish the detections of ``directory`` to an MQTT broker or a service's HTTP endpoint; returns counts.

    ``sign_dir``: sign every message with its sensor's key (:class:`BatchSigner`); ``retime`` is then required,
    since a signed batch must be sent close to its signing time."""
    directory = Path(directory)
    signer = BatchSigner(sign_dir) if sign_dir is not None else None
    if signer is not None:  # every reporting sensor needs its key: say so before sending anything
        table0 = formats.load_sensor_table(directory / "sensors.json")
        ids = {d.sensor for d in formats.iter_detections(directory / "detections.jsonl", table0, on_error="skip")}
        if missing := sorted(s for s in ids if not (signer.key_dir / f"{s}.key").is_file()):
            raise SkytraceError(f"no key for sensor {missing[0]!r}" + (f" and {len(missing) - 1} others" if
                                len(missing) > 1 else "") + f" in {signer.key_dir} (skytrace keys register "
                                f"{missing[0]} --registry keys.json --generate {signer.key_dir / missing[0]}.key)")
    if not speed > 0:
        raise SkytraceError(f"--speed must be > 0, got {speed}")
    table = formats.load_sensor_table(directory / "sensors.json")
    stats = formats.ReadStats()
    dets = iter(formats.iter_detections(directory / "detections.jsonl", table, on_error="skip", stats=stats))
    pub = None
    if mqtt:
        from skytrace.io.mqtt import MqttPublisher

        host, port = parse_hostport(mqtt, 1883)
        pub = MqttPublisher(host, port, client_id=f"skytrace-replay-{int(time.time())}")
        pub.start()
    url = (http.rstrip("/") + "/api/v1/detections") if http else None
    published = messages = rejected = 0
    wall0 = time.monotonic()
    first = next(dets, None)
    if first is None:
        raise SkytraceError(f"{directory / 'detections.jsonl'} has no valid detections")
    ta0 = _arrival(first)
    shift = time.time() - ta0 if retime else 0.0
    pending: Detection | None = first
    last_info = None
    next_report = wall0 + 10
    try:
        while pending is not None:
            now_rel = (time.monotonic() - wall0) * speed  # data seconds since the first report
            groups: dict[str, list[Detection]] = defaultdict(list)
            while pending is not None and _arrival(pending) - ta0 <= now_rel:
                if limit_s is not None and _arrival(pending) - ta0 > limit_s:
                    pending = None
                    break
                d = pending
                if shift:
                    d = msgspec.structs.replace(d, t=d.t + shift,
                                                t_arrival=None if d.t_arrival is None else d.t_arrival + shift)
                groups[d.sensor].append(d)
                pending = next(dets, None)
            for sensor, ds in groups.items():
                body = signer.sign(sensor, ds) if signer is not None else ENCODER.encode(ds)
                if pub is not None:
                    from skytrace.io.mqtt import topic_for

                    last_info = pub.publish_raw(topic_for(sensor), body)
                elif _post(url, body) == 422:
                    rejected += len(ds)
                    continue
                published += len(ds)
                messages += 1
            if progress is not None and time.monotonic() > next_report:
                progress(f"  {published} detections published, data time +{now_rel:.0f} s")
                next_report += 10
            if pending is not None:
                time.sleep(TICK_S)
        if last_info is not None:
            last_info.wait_for_publish(30)
    finally:
        if pub is not None:
            pub.stop()
    return {"published": published, "messages": messages, "wall_s": time.monotonic() - wall0,
            "skipped": stats.skipped, "rejected": rejected}


class InProcessFeed:
    """Feeds recorded detections into a service in-process, by arrival time, following the service's clock.

    For accelerated demos (``skytrace demo``): run the service with a :class:`~skytrace.service.clock.ScaledClock`
    anchored at the scenario start, start this feed, and the pipeline sees the reports exactly as a live
    network would deliver them, ``speed`` times faster. Runs in its own thread; ``stop()`` ends it.

    A feed may start before all its reports exist (``complete=False``): the demo plays the night while the
    simulator is still writing it. :meth:`extend` adds reports as they are read; an unanchored clock is anchored
    at the first report's arrival; :attr:`done` waits for ``extend(..., complete=True)``.
    """

    def __init__(self, service, detections: list[Detection], poll_s: float = 0.05, complete: bool = True):
        import threading

        import numpy as np

        clock = service.clock
        if complete and not getattr(clock, "anchored", True):
            raise ValueError("anchor the service's ScaledClock (e.g. at the first arrival time) before feeding")
        if not complete and not hasattr(clock, "anchor"):
            raise ValueError("a growing feed needs an anchorable clock (ScaledClock)")
        self.service = service
        self.dets: list[Detection] = []
        self.ta = np.zeros(0)
        self.complete = False
        self.poll_s = poll_s
        self.k = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skytrace-feed", daemon=True)
        self.extend(detections, complete=complete)

    def extend(self, detections: list[Detection], complete: bool = False) -> None:
        """Add reports (any order); ``complete`` says no more will come."""
        import numpy as np

        with self._lock:
            if detections:
                ta = np.array([_arrival(d) for d in detections])
                dets = self.dets[self.k:] + list(detections)
                ta = np.concatenate([self.ta[self.k:], ta])
                order = np.argsort(ta, kind="stable")  # unsent reports only: what was submitted stays submitted
                self.dets = self.dets[:self.k] + [dets[i] for i in order]
                self.ta = np.concatenate([self.ta[:self.k], ta[order]])
            self.complete = self.complete or complete

    @property
    def done(self) -> bool:
        return self.complete and self.k >= len(self.dets)

    def pump(self, t_now: float | None = None) -> int:
        """Submit every report that has arrived by ``t_now`` (default: the service's clock); returns how many.

        The feed thread calls this every ``poll_s``; tests call it directly under a virtual clock."""
        import numpy as np

        with self._lock:
            clock = self.service.clock
            if not getattr(clock, "anchored", True):
                if not len(self.ta):
                    return 0
                clock.anchor(float(self.ta[0]))  # the night starts with its first report
            t = clock() if t_now is None else t_now
            k1 = self.k + int(np.searchsorted(self.ta[self.k:], t, side="right"))  # the unsent part is sorted
            n = k1 - self.k
            if n > 0:
                self.service.submit(self.dets[self.k:k1])
                self.k = k1
        return max(n, 0)

    def _run(self) -> None:
        while not self._stop.is_set() and not self.done:
            self.pump()
            self._stop.wait(self.poll_s)

    def start(self) -> InProcessFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
