"""Drive a :class:`~skytrace.node.processor.NodeProcessor` from a WAV file or a live sound card, and deliver its
detections to a JSON-lines file and/or skytrace's MQTT detection topic. Both inputs feed the same streaming
processor block by block, so a file run is exactly what the node would have reported live.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skytrace.errors import FormatError, SkytraceError
from skytrace.model import Detection
from skytrace.node.array import ArrayConfig
from skytrace.node.processor import NodeConfig, NodeProcessor
from skytrace.node.wav import iter_blocks

log = logging.getLogger(__name__)

BLOCK_S = 0.1


HEARTBEAT_EVERY_S = 30.0


class DetectionSink:
    """Where detections go: a JSONL file (flushed per frame, so a reader sees a line as soon as it is decided)
    and/or MQTT (one message per frame with that frame's detections, QoS 1).

    Over MQTT the node also says it is alive: a heartbeat on ``skytrace/v1/heartbeat/<sensor>`` every
    ``heartbeat_every_s`` of audio time (docs/formats.md). Only a node known to be alive has its silence counted
    as evidence that no drone is near it (tracker and alert policy); a node that says nothing may be down.

    With a ``signer`` (:class:`skytrace.security.signing.Signer` over the node's Ed25519 key) every MQTT message is
    a signed batch (docs/security.md), detections and heartbeats alike, so a service run with ``--keys`` accepts
    the node and refuses anyone who forges it. A signed message carries the wall-clock time it was sent
    (``t_sent``; the service refuses batches more than ``signed_max_age_s`` old): a signed heartbeat says "alive
    now". ``username``/``password``: the node's broker account (the shipped broker config has one per node)."""

    def __init__(self, out: Path | None, mqtt_hostport: tuple[str, int] | None, sensor_id: str,
                 heartbeat_every_s: float = HEARTBEAT_EVERY_S, signer=None, username: str = "",
                 password: str = ""):
        from skytrace.io.formats import JsonlWriter

        self.sensor_id = sensor_id
        self.writer = JsonlWriter(out) if out is not None else None
        self.pub = None
        self.count = 0
        self.heartbeats = 0
        self.heartbeat_every_s = heartbeat_every_s
        self._last_beat_t: float | None = None
        self._pending = []
        self.signer = signer
        if mqtt_hostport is not None:
            from skytrace.io.mqtt import MqttPublisher

            self.pub = MqttPublisher(mqtt_hostport[0], mqtt_hostport[1], client_id=f"skytrace-node-{sensor_id}")
            if username:
                self.pub.client.username_pw_set(username, password or None)
            if signer is not None:  # signed batches are kept until the service's receipt says they are stored
                self.pub.enable_receipts(sensor_id)
            self.pub.start()

    def emit(self, dets: list[Detection]) -> None:
        if not dets:
            return
        self.count += len(dets)
        if self.writer is not None:
            self.writer.write_many(dets)
            self.writer.flush()
        if self.pub is not None:
            if self.signer is not None:
                info = self.pub.publish_signed(self.sensor_id, self.signer.sign(dets))
            else:
                info = self.pub.publish(self.sensor_id, dets)
            self._pending.append(info)
            self._pending = [i for i in self._pending if not i.is_published()]

    def tick(self, t: float) -> None:
        """The node has processed its audio up to ``t`` (UNIX s): send a heartbeat when one is due."""
        if self.pub is None or (self._last_beat_t is not None and t - self._last_beat_t < self.heartbeat_every_s):
            return
        self._last_beat_t = t
        self.heartbeats += 1
        if self.signer is not None:  # alive now: an empty signed batch sent now
            self._pending.append(self.pub.publish_heartbeat(self.sensor_id, time.time(), signer=self.signer))
        else:
            self._pending.append(self.pub.publish_heartbeat(self.sensor_id, t))

    def close(self, timeout_s: float = 10.0) -> None:
        if self.pub is not None:
            end = time.monotonic() + timeout_s
            for info in self._pending:
                info.wait_for_publish(max(0.01, end - time.monotonic()))
            unsent = sum(1 for i in self._pending if not i.is_published())
            if self.pub.receipt_stats["confirmed"]:  # the service sends receipts: wait for the last ones
                self.pub.wait_confirmed(max(0.5, end - time.monotonic()))
                if (n := self.pub.unconfirmed):
                    log.warning("%d signed batches not yet confirmed stored by the service", n)
            self.pub.stop()
            if unsent:
                raise SkytraceError(f"{unsent} MQTT messages were not acknowledged by the broker in {timeout_s} s")
        if self.writer is not None:
            self.writer.close()


@dataclass
class RunResult:
    detections: int
    audio_s: float
    cpu_s: float
    frames: int
    overflows: int = 0  # live capture: blocks lost because processing fell behind


def check_t0(t0: float) -> float:
    if not math.isfinite(t0) or not 0.0 <= t0 < 1e10:
        raise SkytraceError(f"--t0 must be UNIX seconds (0 <= t0 < 1e10), got {t0}")
    return float(t0)


def run_wav(array: ArrayConfig, wav: Path, t0: float, sink: DetectionSink, cfg: NodeConfig | None = None,
            progress: Callable[[float], None] | None = None) -> RunResult:
    """Process a whole WAV file through the streaming processor."""
    info, blocks = iter_blocks(wav, 1)  # header check first, then real block size
    if info.n_channels != array.n_mics:
        raise FormatError(str(wav), f"{info.n_channels} channels but the array {array.id!r} has "
                                    f"{array.n_mics} microphones (channel i = microphone i)")
    if info.n_frames == 0:
        raise FormatError(str(wav), "no audio samples")
    blocks.close()
    _, blocks = iter_blocks(wav, max(1, int(BLOCK_S * info.sample_rate_hz)))
    return _drive(NodeProcessor(array, info.sample_rate_hz, check_t0(t0), cfg), blocks, sink, progress,
                  info.duration_s)


def _drive(proc: NodeProcessor, blocks: Iterable[np.ndarray], sink: DetectionSink,
           progress: Callable[[float], None] | None, total_s: float | None = None) -> RunResult:
    cpu0 = time.process_time()
    last = time.monotonic()
    for blk in blocks:
        sink.emit(proc.push(blk))
        sink.tick(proc.t0 + proc.samples_in / proc.fs)
        if progress is not None and time.monotonic() - last > 1.0:
            last = time.monotonic()
            progress(proc.samples_in / proc.fs)
    sink.emit(proc.flush())
    return RunResult(detections=sink.count, audio_s=proc.samples_in / proc.fs,
                     cpu_s=time.process_time() - cpu0, frames=proc.frames)


def run_device(array: ArrayConfig, device: str, sink: DetectionSink, duration_s: float | None = None,
               cfg: NodeConfig | None = None, progress: Callable[[float], None] | None = None) -> RunResult:
    """Capture from a sound card (sounddevice / PortAudio) at the array's sample rate until ``duration_s`` or
    Ctrl-C. Time stamps: the ADC time of the first block, mapped to UNIX time."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: PortAudio library missing
        raise SkytraceError(f"live capture needs sounddevice and PortAudio: pip install 'skytrace[node]' ({exc})"
                            ) from None
    dev: int | str = int(device) if device.isdigit() else device
    q: queue.Queue = queue.Queue(maxsize=600)
    first: list[float] = []
    overflow = [0]

    def callback(indata, frames, time_info, status):  # PortAudio thread: copy and hand over only
        if status.input_overflow:
            overflow[0] += 1
        if not first:
            first.append(time.time() - max(0.0, time_info.currentTime - time_info.inputBufferAdcTime))
        try:
            q.put_nowait(indata.copy())
        except queue.Full:
            overflow[0] += 1

    fs = array.sample_rate_hz
    try:
        stream = sd.InputStream(device=dev, channels=array.n_mics, samplerate=fs, dtype="int16",
                                blocksize=int(BLOCK_S * fs), callback=callback)
    except Exception as exc:  # PortAudioError, ValueError for unknown devices
        raise SkytraceError(f"cannot open sound device {device!r}: {exc}") from None

    def blocks():
        end = None if duration_s is None else time.monotonic() + duration_s
        while end is None or time.monotonic() < end:
            try:
                blk = q.get(timeout=1.0)
            except queue.Empty:
                continue
            yield blk.astype(np.float32) / 32768.0

    with stream:
        while not first:
            time.sleep(0.01)
        proc = NodeProcessor(array, fs, first[0], cfg)
        try:
            res = _drive(proc, blocks(), sink, progress)
        except KeyboardInterrupt:
            res = RunResult(sink.count, proc.samples_in / fs, 0.0, proc.frames)
    res.overflows = overflow[0]
    return res
