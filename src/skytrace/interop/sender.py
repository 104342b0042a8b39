"""A bounded queue drained by a background thread: live outputs never block the pipeline that feeds them.

``submit`` never waits: when the queue is full the oldest item is dropped and counted (a late track update is
worth less than the next one). Delivery failures are counted and retried by the subclass's ``deliver``.
"""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)
_STOP = object()


class BackgroundSender:
    """Runs ``deliver(item)`` for each submitted item on one daemon thread, in order."""

    def __init__(self, name: str, max_queue: int = 1000):
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.name = name
        self.stats = {"submitted": 0, "sent": 0, "dropped": 0, "failed": 0}
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: object) -> None:
        """Queue one item for delivery; never blocks (drops the oldest queued item when full)."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        with self._lock:
            self.stats["submitted"] += 1
            while True:
                try:
                    self._q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._q.get_nowait()
                        self.stats["dropped"] += 1
                    except queue.Empty:
                        pass

    def deliver(self, item: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release connections; called on the sender thread after the last item."""

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                break
            try:
                self.deliver(item)
                self.stats["sent"] += 1
            except Exception as exc:  # a dead receiver must not kill the thread: count, log, go on
                self.stats["failed"] += 1
                log.warning("%s: delivery failed: %s", self.name, exc)
        try:
            self.shutdown()
        except Exception as exc:
            log.warning("%s: shutdown failed: %s", self.name, exc)

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._q.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.warning("%s: queue still full at close; %d items not delivered", self.name, self._q.qsize())
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("%s: still delivering %d queued items after %.0f s; they go on in the background",
                        self.name, self._q.qsize(), timeout_s)
