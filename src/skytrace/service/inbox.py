"""Durable ingest: a report is acknowledged only after the store has committed it (group commit, exactly once).

Every accepted message (an HTTP body, an MQTT payload) goes through one bounded FIFO to one writer thread. The
writer takes up to ``max_group`` messages at a time, writes them in **one transaction**
(:meth:`skytrace.store.base.Store.put_ingest`), and only after the commit calls each message's ``done`` callback:
the HTTP handler then answers 202, the MQTT client sends the PUBACK of a QoS 1 message. A process killed at any
instant has therefore acknowledged only what is on disk; what it had not acknowledged is sent again (the node
retries its POST; the broker redelivers the QoS 1 message to the service's persistent session).

Exactly once: a signed batch carries (sensor, seq), the primary key of the store's ``batches`` table; a
redelivered batch already stored is acknowledged again (so the sender stops resending) but not stored twice.

Group commit (one fsync for many messages) is the classic way to make acknowledged writes cheap: J. Gray and
A. Reuter, *Transaction Processing*, 1993, §9.4.8; PostgreSQL's ``commit_delay`` does the same inside the server.

Bounded: at most ``max_queued`` messages wait. HTTP asks :meth:`DurableInbox.has_room` first and answers 503
(with ``Retry-After``) when it has none, counted in ``shed_http``; MQTT blocks paho's network thread instead, so
the broker keeps the messages (persistent, QoS 1) until the writer catches up: nothing is dropped.
If the store fails, the writer keeps the group and retries with back-off (nothing is acknowledged meanwhile).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from skytrace.batch import SensorTable
from skytrace.model import Detection
from skytrace.store.base import Store

log = logging.getLogger(__name__)


@dataclass
class InboxStats:
    """Counters of the durable ingest (in the service status, ``inbox``)."""

    queued: int = 0  # messages waiting for the writer now
    queued_max: int = 0
    messages: int = 0  # messages committed (and acknowledged)
    stored: int = 0  # detections written
    duplicates: int = 0  # signed batches already in the store (redelivered), acknowledged, not stored again
    commits: int = 0
    commit_ms_last: float = 0.0
    commit_ms_max: float = 0.0
    store_errors: int = 0  # failed commits (retried; nothing acknowledged meanwhile)
    shed_http: int = 0  # HTTP bodies refused with 503 because the queue was full

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


class _Item:
    __slots__ = ("dets", "done", "sensor", "seq")

    def __init__(self, sensor: str | None, seq: int | None, dets: Sequence[Detection],
                 done: Callable[[bool], None] | None):
        self.sensor, self.seq, self.dets, self.done = sensor, seq, dets, done


class DurableInbox:
    """The one writer between ingest and the store (see the module docstring). Start it, put, stop it."""

    def __init__(self, store: Store, table: SensorTable, max_queued: int = 20_000, max_group: int = 2_000,
                 clock: Callable[[], float] = time.time):
        self.store, self.table = store, table
        self.max_queued, self.max_group = max_queued, max_group
        self.clock = clock
        self.stats = InboxStats()
        self.on_stored: Callable[[int], None] | None = None  # called with the number of detections committed
        self._q: collections.deque[_Item] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._inflight = 0  # messages taken by the writer, not yet committed and acknowledged
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------- producers
    def has_room(self) -> bool:
        return len(self._q) < self.max_queued

    def put(self, sensor: str | None, seq: int | None, dets: Sequence[Detection],
            done: Callable[[bool], None] | None = None, block: bool = True) -> bool:
        """Queue one message; ``done(stored_new)`` runs on the writer thread after the commit.

        ``block``: wait for room (MQTT: backpressure to the broker); else return False when full (counted).
        An item with no detections only keeps its place in the acknowledgement order (a rejected MQTT message).
        """
        with self._cv:
            while len(self._q) >= self.max_queued:
                if not block or self._stopping:
                    self.stats.shed_http += 1
                    return False
                self._cv.wait(0.5)
            self._q.append(_Item(sensor, seq, dets, done))
            self.stats.queued = len(self._q)
            self.stats.queued_max = max(self.stats.queued_max, self.stats.queued)
            self._cv.notify_all()
        return True

    def put_future(self, sensor: str | None, seq: int | None, dets: Sequence[Detection]
                   ) -> concurrent.futures.Future | None:
        """Queue without blocking; a future that becomes True (stored) / False (already stored), None if full."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        ok = self.put(sensor, seq, dets, lambda fresh: fut.done() or fut.set_result(fresh), block=False)
        return fut if ok else None

    # ------------------------------------------------------------------------------------------------- the writer
    def _take(self) -> list[_Item]:
        with self._cv:
            while not self._q and not self._stopping:
                self._cv.wait(0.5)
            group = [self._q.popleft() for _ in range(min(self.max_group, len(self._q)))]
            self._inflight = len(group)
            self.stats.queued = len(self._q)
            self._cv.notify_all()
            return group

    def _commit(self, group: list[_Item]) -> None:
        backoff_s = 0.1
        while True:
            t0 = time.perf_counter()
            try:
                fresh = self.store.put_ingest([(it.sensor, it.seq, it.dets) for it in group], self.table,
                                              self.clock())
                break
            except Exception as exc:  # the store is down: acknowledge nothing, keep the group, retry
                self.stats.store_errors += 1
                if self.stats.store_errors == 1 or self.stats.store_errors % 100 == 0:
                    log.warning("store write failed (%s); %d messages wait, retrying", exc, len(group))
                if self._stopping and backoff_s > 1.0:
                    return  # shutting down with a dead store: unacknowledged, so the senders resend
                time.sleep(backoff_s)
                backoff_s = min(2.0, backoff_s * 2)
        ms = (time.perf_counter() - t0) * 1e3
        st = self.stats
        st.commits += 1
        st.commit_ms_last, st.commit_ms_max = ms, max(st.commit_ms_max, ms)
        n_new = 0
        for it, ok in zip(group, fresh, strict=True):
            st.messages += 1
            if ok:
                n_new += len(it.dets)
            else:
                st.duplicates += 1
        st.stored += n_new
        if self.on_stored is not None and n_new:
            self.on_stored(n_new)
        for it, ok in zip(group, fresh, strict=True):
            if it.done is not None:
                try:
                    it.done(ok)
                except Exception:  # an acknowledgement that cannot be sent (client gone) is the sender's loss
                    log.debug("acknowledgement failed", exc_info=True)

    def _run(self) -> None:
        while True:
            group = self._take()
            if not group:
                if self._stopping:
                    return
                continue
            self._commit(group)
            with self._cv:
                self._inflight = 0
                self._cv.notify_all()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="skytrace-inbox", daemon=True)
            self._thread.start()

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until nothing is queued (everything so far committed and acknowledged); False on timeout."""
        end = time.monotonic() + timeout_s
        with self._cv:
            while (self._q or self._inflight) and time.monotonic() < end:
                self._cv.wait(0.05)
            return not (self._q or self._inflight)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Commit what is queued, then stop the writer."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
