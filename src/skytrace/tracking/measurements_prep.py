"""Turn validated detections into measurement vectors and noise covariances (done once, at ingest)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace import geo, target_classes
from skytrace.batch import DETECTION_CLASSES, DetectionBatch, SensorTable
from skytrace.sensors import registry


@dataclass
class MeasBatch:
    """Measurements as columns: z (n, 3) padded, R (n, 3, 3), plus time, sensor row, kind, elevation flag."""

    t: np.ndarray
    sensor: np.ndarray
    kind: np.ndarray
    z: np.ndarray
    R: np.ndarray
    has_el: np.ndarray
    cls: np.ndarray | None = None  # int16 target-class code of each report (skytrace.target_classes), -1 none

    def __post_init__(self) -> None:
        if self.cls is None:
            self.cls = np.full(self.t.shape[0], -1, dtype=np.int16)

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def take(self, idx) -> MeasBatch:
        return MeasBatch(self.t[idx], self.sensor[idx], self.kind[idx], self.z[idx], self.R[idx], self.has_el[idx],
                         self.cls[idx])

    @classmethod
    def concat(cls, parts: list[MeasBatch]) -> MeasBatch:
        if not parts:
            return cls(np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros((0, 3)),
                       np.zeros((0, 3, 3)), np.zeros(0, bool))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("t", "sensor", "kind", "z", "R", "has_el", "cls")))


def prepare(batch: DetectionBatch, sensors: SensorTable, frame: geo.LocalFrame) -> MeasBatch:
    """Measurement vectors and noise of every detection, each sensor family preparing its own rows."""
    n = len(batch)
    kind = sensors.kind[batch.sensor]
    z = np.zeros((n, 3))
    R = np.zeros((n, 3, 3))
    has_el = np.zeros(n, dtype=bool)
    for family, rows in registry.groups(kind):
        z[rows], R[rows], has_el[rows] = family.prepare(batch.take(rows) if rows.size < n else batch, sensors, frame)
    return MeasBatch(batch.t.copy(), batch.sensor.astype(np.int32), kind.astype(np.int8), z, R, has_el,
                     target_classes.from_detection_codes(batch.cls_code, DETECTION_CLASSES))
