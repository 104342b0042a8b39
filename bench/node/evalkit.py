"""Run the node processor over a benchmark scene and collect what it reported (shared by the node benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from skytrace.node.array import ArrayConfig
from skytrace.node.classify import Classifier
from skytrace.node.processor import NodeConfig, NodeProcessor


@dataclass
class Run:
    hits: list = field(default_factory=list)  # (t, features, probs, f0, az, el, snr) of every confirmed track hit
    detections: list = field(default_factory=list)  # Detection records written
    emit_audio_s: list = field(default_factory=list)  # audio time consumed when each detection was written
    cpu_s: float = 0.0
    audio_s: float = 0.0


def run_scene(audio: np.ndarray, fs: int, array: ArrayConfig, cfg: NodeConfig | None = None,
              classifier: Classifier | None = None, block_s: float = 0.1, emit_times: bool = False) -> Run:
    proc = NodeProcessor(array, fs, 0.0, cfg, classifier)
    run = Run(audio_s=audio.shape[0] / fs)

    def hook(t, tf, p, c, doa):
        run.hits.append((t, tf, p.copy(), c.f0_hz, doa.azimuth_deg, doa.elevation_deg, c.snr_db))

    proc.on_track = hook
    blk = int(block_s * fs)
    x = audio.astype(np.float32)
    t0 = time.process_time()
    for i in range(0, x.shape[0], blk):
        new = proc.push(x[i: i + blk])
        run.detections.extend(new)
        if emit_times:
            run.emit_audio_s.extend([min(i + blk, x.shape[0]) / fs] * len(new))
    tail = proc.flush()
    run.detections.extend(tail)
    run.emit_audio_s.extend([x.shape[0] / fs] * len(tail))
    run.cpu_s = time.process_time() - t0
    return run


def ang_err(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def truth_at(scene, t: float) -> tuple[float, float]:
    i = int(np.clip(round(t * scene.fs), 0, scene.audio.shape[0] - 1))
    return float(scene.az_true_deg[i]), float(scene.el_true_deg[i])
