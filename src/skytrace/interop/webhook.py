"""Webhook sink: every alert event POSTed as JSON to an HTTP endpoint (sirens, messenger bots, SMS gateways).

Signed so that the receiver can trust it: ``X-Skytrace-Timestamp`` (UNIX seconds) and ``X-Skytrace-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` (the timestamp inside the MAC stops replays; the receiver
checks it with :func:`verify_signature`, in constant time). Delivery runs on a background thread behind a bounded
queue: ``on_step`` never blocks the pipeline; a full queue drops the oldest event and counts it. Failed posts
(connection errors, timeouts, HTTP 408/429/5xx) are retried with exponential backoff and jitter up to
``max_attempts``; other 4xx answers are not retried (the request itself is wrong).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, is_dataclass

from skytrace.errors import SkytraceError
from skytrace.interop.sender import BackgroundSender

SIGNATURE_HEADER = "X-Skytrace-Signature"
TIMESTAMP_HEADER = "X-Skytrace-Timestamp"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, max_age_s: float = 300.0,
                     now: float | None = None) -> bool:
    """Receiver side: True when the signature matches and the timestamp is recent."""
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class WebhookConfig:
    url: str
    secret: bytes
    max_queue: int = 1000
    max_attempts: int = 6
    backoff_s: float = 0.5  # first retry delay; doubles each attempt
    backoff_max_s: float = 30.0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise SkytraceError(f"webhook url {self.url!r} must start with http:// or https://")
        if isinstance(self.secret, str):
            self.secret = self.secret.encode()
        if len(self.secret) < 16:
            raise SkytraceError("webhook secret must be at least 16 bytes")
        if self.max_attempts < 1:
            raise SkytraceError("webhook max_attempts must be >= 1")


class _HttpError(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


class WebhookSink(BackgroundSender):
    """Pipeline sink: POSTs each alert event of each step (``result.events``)."""

    def __init__(self, config: WebhookConfig):
        self.config = config
        super().__init__("webhook-sink", config.max_queue)
        self.stats["retries"] = 0

    def on_step(self, result) -> None:
        for ev in getattr(result, "events", ()) or ():
            self.submit(ev)

    def post(self, payload: dict) -> None:
        """Queue an arbitrary JSON payload (the same signing and retries)."""
        self.submit(payload)

    def _body(self, item: object) -> bytes:
        d = asdict(item) if is_dataclass(item) and not isinstance(item, type) else item
        return json.dumps({"type": "skytrace.alert", "event": d}, separators=(",", ":"), allow_nan=False).encode()

    def _post_once(self, body: bytes) -> None:
        ts = f"{time.time():.3f}"
        req = urllib.request.Request(self.config.url, data=body, method="POST", headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self.config.secret, ts, body), "User-Agent": "skytrace-webhook"})
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                resp.read(1024)
        except urllib.error.HTTPError as exc:
            raise _HttpError(exc.code) from None

    def deliver(self, item: object) -> None:
        body = self._body(item)
        cfg = self.config
        for attempt in range(cfg.max_attempts):
            try:
                self._post_once(body)
                return
            except _HttpError as exc:
                if exc.status not in RETRY_STATUS or attempt == cfg.max_attempts - 1:
                    raise
            except (OSError, TimeoutError):
                if attempt == cfg.max_attempts - 1:
                    raise
            self.stats["retries"] += 1
            delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** attempt)
            time.sleep(delay * (0.5 + random.random() / 2))  # full jitter keeps many senders from syncing
