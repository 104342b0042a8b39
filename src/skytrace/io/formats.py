"""Readers and writers of the interchange formats (``docs/formats.md``): the project's public contract.

Every reader validates at the edge and reports a bad line as a :class:`~skytrace.errors.FormatError` naming the
file, the line and the field. With ``on_error="skip"`` a reader skips bad lines instead and counts them in a
:class:`ReadStats` (never a silent loss: the CLI prints the count and the first reasons).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
import numpy as np

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.errors import FormatError
from skytrace.model import (
    REQUIRED_DETECTION_FIELDS,
    Alert,
    Detection,
    Heartbeat,
    Sensor,
    SensorsFile,
    TrackPoint,
    TruthPoint,
)

OnError = Literal["raise", "skip"]
T = TypeVar("T")

_FIELD_AT = re.compile(r"at `\$\.?([^`]*)`")
_FIELD_TICK = re.compile(r"^`([A-Za-z_][A-Za-z0-9_]*)`")  # our own validators name the field first
_FIELD_MISSING = re.compile(r"missing required field `([^`]*)`")
def _enc_hook(obj: object) -> object:
    """numpy scalars become plain numbers (records built from arrays often carry them)."""
    import numpy as np

    if isinstance(obj, np.floating | np.integer | np.bool_):
        return obj.item()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
MAX_LINE_BYTES = 1 << 20  # a line longer than 1 MiB is hostile or broken
MAX_SENSORS_BYTES = 256 << 20  # ~1 million sensors; a larger sensors.json is hostile or broken


@dataclass
class ReadStats:
    """What a reader saw: lines read, records kept, lines skipped and the first few reasons."""

    path: str = ""
    lines: int = 0
    records: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    max_reasons: int = 5

    def note(self, err: FormatError) -> None:
        self.skipped += 1
        if len(self.reasons) < self.max_reasons:
            self.reasons.append(str(err))

    def summary(self) -> str:
        s = f"{self.path}: {self.records} records from {self.lines} lines"
        if self.skipped:
            s += f", {self.skipped} bad lines skipped (first: {self.reasons[0]})"
        return s


def _format_error(path: str, line: int | None, exc: Exception) -> FormatError:
    msg = str(exc)
    parts = []
    if m := _FIELD_AT.search(msg):
        parts.append(m.group(1))
        msg = _FIELD_AT.sub("", msg).rstrip(" -")
    if m := _FIELD_TICK.search(msg) or _FIELD_MISSING.search(msg):
        parts.append(m.group(1))
    fld = ".".join(p for p in parts if p) or None
    return FormatError(path, msg, line=line, field=fld)


def _open_text(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FormatError(str(p), "file not found")
    if p.is_dir():
        raise FormatError(str(p), "is a directory, expected a file")
    return p


# --------------------------------------------------------------------------------------------------- JSON lines
def iter_jsonl(path: str | os.PathLike, record_type: type[T], on_error: OnError = "raise",
               stats: ReadStats | None = None) -> Iterator[tuple[int, T]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSON-lines file, validated as ``record_type``."""
    p = _open_text(path)
    decoder = msgspec.json.Decoder(record_type)
    stats = stats if stats is not None else ReadStats()
    stats.path = str(p)
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            stats.lines += 1
            try:
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
                rec = decoder.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError) as exc:
                err = _format_error(str(p), lineno, exc)
                if on_error == "raise":
                    raise err from None
                stats.note(err)
                continue
            stats.records += 1
            yield lineno, rec


def write_jsonl(path: str | os.PathLike, records: Iterable[msgspec.Struct], append: bool = False) -> int:
    """Write records one JSON object a line; returns the count. Creates parent directories."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("ab" if append else "wb") as fh:
        buf = bytearray()
        for rec in records:
            buf += _ENCODER.encode(rec)
            buf += b"\n"
            n += 1
            if len(buf) > 1 << 20:
                fh.write(buf)
                buf.clear()
        fh.write(buf)
    return n


class JsonlWriter:
    """Streaming JSON-lines writer (for long runs: bounded memory)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("wb")
        self._buf = bytearray()
        self.count = 0

    def write(self, rec: msgspec.Struct) -> None:
        self._buf += _ENCODER.encode(rec)
        self._buf += b"\n"
        self.count += 1
        if len(self._buf) > 1 << 20:
            self.flush()

    def write_many(self, recs: Iterable[msgspec.Struct]) -> None:
        for r in recs:
            self.write(r)

    def flush(self) -> None:
        self._fh.write(self._buf)
        self._buf.clear()
        self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------------ sensors
def read_sensors(path: str | os.PathLike) -> list[Sensor]:
    """Read sensors.json; ids must be unique."""
    p = _open_text(path)
    if p.stat().st_size > MAX_SENSORS_BYTES:
        raise FormatError(str(p), f"larger than {MAX_SENSORS_BYTES} bytes; not a plausible sensors.json")
    try:
        doc = msgspec.json.decode(p.read_bytes(), type=SensorsFile)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError) as exc:
        raise _format_error(str(p), None, exc) from None
    seen: set[str] = set()
    for i, s in enumerate(doc.sensors):
        if s.id in seen:
            raise FormatError(str(p), f"duplicate sensor id {s.id!r}", field=f"sensors[{i}].id")
        seen.add(s.id)
    return doc.sensors


def write_sensors(path: str | os.PathLike, sensors: list[Sensor]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(msgspec.json.format(_ENCODER.encode(SensorsFile(sensors=sensors)), indent=1))


def load_sensor_table(path: str | os.PathLike) -> SensorTable:
    return SensorTable.from_sensors(read_sensors(path))


# --------------------------------------------------------------------------------------------------- detections
def check_detection(det: Detection, table: SensorTable) -> None:
    """Cross-field checks that need the sensor table: known sensor id, fields required by its kind."""
    row = table.index.get(det.sensor)
    if row is None:
        raise ValueError(f"`sensor`: unknown sensor id {det.sensor!r} (not in sensors.json)")
    kind = table.records[row].kind
    for name in REQUIRED_DETECTION_FIELDS[kind]:
        if getattr(det, name) is None:
            raise ValueError(f"`{name}` is required for detections of {kind} sensors")


def iter_detections(path: str | os.PathLike, table: SensorTable, on_error: OnError = "raise",
                    stats: ReadStats | None = None) -> Iterator[Detection]:
    """Validated detections of a detections.jsonl, in file (arrival) order."""
    stats = stats if stats is not None else ReadStats()
    for lineno, det in iter_jsonl(path, Detection, on_error, stats):
        try:
            check_detection(det, table)
        except ValueError as exc:
            err = _format_error(str(path), lineno, exc)
            if on_error == "raise":
                raise err from None
            stats.records -= 1
            stats.note(err)
            continue
        yield det


def iter_detection_batches(path: str | os.PathLike, table: SensorTable, batch_size: int = 50_000,
                           on_error: OnError = "raise", stats: ReadStats | None = None) -> Iterator[DetectionBatch]:
    """Stream detections as struct-of-arrays batches of at most ``batch_size`` rows (bounded memory)."""
    chunk: list[Detection] = []
    for det in iter_detections(path, table, on_error, stats):
        chunk.append(det)
        if len(chunk) >= batch_size:
            yield DetectionBatch.from_records(chunk, table)
            chunk = []
    if chunk:
        yield DetectionBatch.from_records(chunk, table)


def read_detections(path: str | os.PathLike, table: SensorTable, on_error: OnError = "raise",
                    stats: ReadStats | None = None) -> DetectionBatch:
    return DetectionBatch.concat(list(iter_detection_batches(path, table, on_error=on_error, stats=stats)))


def iter_heartbeat_batches(path: str | os.PathLike, table: SensorTable, batch_size: int = 50_000,
                           on_error: OnError = "raise", stats: ReadStats | None = None
                           ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream a heartbeats.jsonl (``{"t", "sensor"[, "t_arrival"]}`` a line, arrival order) as arrays
    (sensor rows, t, t_arrival with NaN where absent) of at most ``batch_size`` rows."""
    stats = stats if stats is not None else ReadStats()
    rows: list[int] = []
    ts: list[float] = []
    arr: list[float] = []
    for lineno, hb in iter_jsonl(path, Heartbeat, on_error, stats):
        row = table.index.get(hb.sensor)
        if row is None:
            err = _format_error(str(path), lineno, ValueError(f"`sensor`: unknown sensor id {hb.sensor!r}"))
            if on_error == "raise":
                raise err from None
            stats.records -= 1
            stats.note(err)
            continue
        rows.append(row)
        ts.append(hb.t)
        arr.append(hb.t_arrival if hb.t_arrival is not None else np.nan)
        if len(rows) >= batch_size:
            yield np.array(rows, np.int64), np.array(ts), np.array(arr)
            rows, ts, arr = [], [], []
    if rows:
        yield np.array(rows, np.int64), np.array(ts), np.array(arr)


# ------------------------------------------------------------------------------------------ truth, tracks, alerts
def read_truth(path: str | os.PathLike, on_error: OnError = "raise", stats: ReadStats | None = None
               ) -> list[TruthPoint]:
    return [r for _, r in iter_jsonl(path, TruthPoint, on_error, stats)]


def read_tracks(path: str | os.PathLike, on_error: OnError = "raise", stats: ReadStats | None = None
                ) -> list[TrackPoint]:
    return [r for _, r in iter_jsonl(path, TrackPoint, on_error, stats)]


def read_alerts(path: str | os.PathLike, on_error: OnError = "raise", stats: ReadStats | None = None
                ) -> list[Alert]:
    return [r for _, r in iter_jsonl(path, Alert, on_error, stats)]


def to_builtins(rec: msgspec.Struct) -> dict:
    """A record as a plain dict with the on-disk field names (e.g. ``class``)."""
    return json.loads(_ENCODER.encode(rec))
