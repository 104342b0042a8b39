"""Scenes for the acoustic-node benchmark: a source (drone or confuser) moving past an array, plus background.

Two disjoint parts of the generator's parameter space: ``split="train"`` (used to train and tune the classifier)
and ``split="heldout"`` (other engines, other rotor counts and rates, other confusers and backgrounds, never
seen in training). A scene is rendered with :func:`skytrace.node.synth.render_point` (moving source, Doppler,
ground reflection) or, for static sources, optionally with pyroomacoustics (free field + ground via a one-order
image source model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace.node import synth

DRONES = {"engine": "uav-engine", "multirotor": "uav-multirotor"}
CONFUSERS_TRAIN = ("moped", "chainsaw", "generator", "fan", "voice", "siren", "car", "helicopter", "jet")
CONFUSERS_HELDOUT = ("lawnmower", "vacuum", "birds")
BACKGROUNDS_TRAIN = ("diffuse", "wind", "traffic")
BACKGROUNDS_HELDOUT = ("rain", "thunder")
LABEL = {"engine": 0, "multirotor": 1, "helicopter": 2, "jet": 2}  # everything else: 3 (other)
ARRAY_HEIGHT_M = 2.0


@dataclass
class Scene:
    audio: np.ndarray  # (n, M) float, peak <= 0.9
    fs: int
    kind: str
    label: int
    az_true_deg: np.ndarray  # (n,) bearing of the direct path at reception, per sample (NaN: no source)
    el_true_deg: np.ndarray
    snr_db: float


def source_signal(kind: str, rng: np.random.Generator, dur_s: float, fs: int, split: str) -> np.ndarray:
    held = split == "heldout"
    if kind == "engine":
        f0 = rng.uniform(50, 120)  # the whole plausible range in both splits; held out: blades, spectrum
        return synth.engine(rng, dur_s, fs, f0_hz=f0, blades=3 if held else 2,
                            tilt=rng.uniform(0.9, 1.2) if held else rng.uniform(0.5, 0.9),
                            drift=rng.uniform(0.005, 0.02))
    if kind == "multirotor":
        if held:
            return synth.multirotor(rng, dur_s, fs, rotor_hz=rng.uniform(110, 150), n_rotors=6, blades=3)
        return synth.multirotor(rng, dur_s, fs, rotor_hz=rng.uniform(60, 110), n_rotors=4, blades=2)
    params = {"moped": {"f0_hz": rng.uniform(50, 150)}, "chainsaw": {"f0_hz": rng.uniform(150, 220)},
              "generator": {"f0_hz": rng.choice([25.0, 30.0])},
              "fan": {"shaft_hz": rng.uniform(15, 50), "blades": int(rng.integers(5, 10))},
              "voice": {"f0_hz": rng.uniform(90, 250)},
              "car": {"f0_hz": rng.uniform(40, 90)}, "lawnmower": {"f0_hz": rng.uniform(45, 60)},
              "vacuum": {"motor_hz": rng.uniform(300, 550)}}.get(kind, {})
    return synth.SOURCES[kind](rng, dur_s, fs, **params)


def trajectory(kind: str, rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    """(n, 3) ENU source positions (array at the origin, ARRAY_HEIGHT_M above ground)."""
    t = np.arange(n) / fs
    h = rng.uniform(0, 2 * np.pi)
    if kind == "engine":
        rng_m, alt, v = rng.uniform(300, 1500), rng.uniform(100, 600), rng.uniform(40, 55)
    elif kind == "multirotor":
        rng_m, alt, v = rng.uniform(40, 250), rng.uniform(20, 120), rng.uniform(0, 12)
    elif kind in ("helicopter", "jet"):
        rng_m, alt, v = rng.uniform(1000, 4000), rng.uniform(300, 3000), rng.uniform(40, 200)
    elif kind in ("moped", "car"):
        rng_m, alt, v = rng.uniform(20, 150), -ARRAY_HEIGHT_M + 0.5, rng.uniform(5, 15)
    else:  # static or slow ground sources
        rng_m, alt, v = rng.uniform(10, 150), -ARRAY_HEIGHT_M + rng.uniform(0.3, 3.0), rng.uniform(0, 1.0)
    b = rng.uniform(0, 2 * np.pi)
    p0 = np.array([rng_m * np.sin(b), rng_m * np.cos(b), alt])
    vel = v * np.array([np.sin(h), np.cos(h), 0.0])
    # centre the path on its closest approach half of the time: pass-bys happen
    start = p0 - vel * t[-1] / 2 if rng.random() < 0.5 else p0
    return start[None, :] + t[:, None] * vel[None, :]


def background(name: str, rng: np.random.Generator, n: int, fs: int, mics: np.ndarray) -> np.ndarray:
    m = mics.shape[0]
    sensor = 0.05 * rng.standard_normal((n, m))  # microphone self-noise
    if name == "diffuse":
        return synth.render_diffuse(rng, n, fs, mics) + sensor
    if name == "traffic":
        road = synth.render_diffuse(rng, n, fs, mics, n_waves=8, slope=1.5)
        return road + sensor
    fn = {"wind": synth.wind, "rain": synth.rain, "thunder": synth.thunder}[name]
    return 0.5 * synth.render_diffuse(rng, n, fs, mics) + fn(rng, n, fs, m) + sensor


def make_scene(kind: str | None, mics: np.ndarray, fs: int, dur_s: float, snr_db: float, bg: str,
               rng: np.random.Generator, split: str = "train", c: float = 343.0) -> Scene:
    """A source of ``kind`` (None: background only) at band SNR ``snr_db`` over background ``bg``."""
    n = int(dur_s * fs)
    noise = background(bg, rng, n, fs, mics)
    az = np.full(n, np.nan)
    el = np.full(n, np.nan)
    if kind is None:
        audio = noise
        label = -1
    else:
        sig = source_signal(kind, rng, dur_s + 1.0, fs, split)[:n]
        pos = trajectory(kind, rng, n, fs)
        r0 = float(np.linalg.norm(pos[0]))
        off = max(r0 / c - 0.2, 0.0)
        rendered = synth.render_point(sig, pos, mics, fs, c=c, ground_z_m=-ARRAY_HEIGHT_M,
                                      reflection=rng.uniform(0.5, 0.9), delay_offset_s=off)
        # truth: direction of the emission point heard at each reception time (direct path, array centre)
        t = np.arange(n) / fs + off
        tau = t - np.linalg.norm(pos, axis=1) / c
        for _ in range(3):
            idx = np.clip((tau * fs).astype(int), 0, n - 1)
            tau = t - np.linalg.norm(pos[idx], axis=1) / c
        idx = np.clip((tau * fs).astype(int), 0, n - 1)
        p = pos[idx]
        az = np.degrees(np.arctan2(p[:, 0], p[:, 1])) % 360.0
        el = np.degrees(np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1])))
        heard = tau >= 0
        az[~heard] = np.nan
        audio, _ = synth.mix_at_snr(rendered, noise, snr_db, fs)
        label = LABEL.get(kind, 3)
    audio = audio / (np.abs(audio).max() + 1e-12) * 0.9
    audio = np.round(audio * 32767) / 32767  # what a 16-bit WAV holds
    return Scene(audio=audio, fs=fs, kind=kind or bg, label=label, az_true_deg=az, el_true_deg=el, snr_db=snr_db)


def pra_static_scene(kind: str, mics: np.ndarray, fs: int, dur_s: float, snr_db: float, bg: str,
                     rng: np.random.Generator, split: str = "train") -> Scene:
    """A static source rendered with pyroomacoustics: free field plus a ground reflection (a box room whose
    only reflecting surface is the floor, image-source order 1)."""
    import pyroomacoustics as pra

    n = int(dur_s * fs)
    sig = source_signal(kind, rng, dur_s + 1.0, fs, split)[:n]
    rng_m = rng.uniform(60, 200)
    az_t, el_t = rng.uniform(0, 360), rng.uniform(3, 35)
    L = 2 * rng_m + 20
    centre = np.array([L / 2, L / 2, ARRAY_HEIGHT_M])
    u = np.array([np.sin(np.radians(az_t)) * np.cos(np.radians(el_t)),
                  np.cos(np.radians(az_t)) * np.cos(np.radians(el_t)), np.sin(np.radians(el_t))])
    src = centre + rng_m * u
    height = src[2] + 20
    walls = {w: pra.Material(1.0) for w in ("east", "west", "north", "south", "ceiling")}
    walls["floor"] = pra.Material(float(rng.uniform(0.2, 0.7)))
    room = pra.ShoeBox([L, L, height], fs=fs, materials=walls, max_order=1, air_absorption=False)
    room.add_source(src.tolist(), signal=sig)
    room.add_microphone_array(pra.MicrophoneArray((centre[None, :] + mics).T, fs))
    room.simulate()
    delay = int(rng_m / 343.0 * fs) - 40
    rendered = room.mic_array.signals[:, delay: delay + n].T
    if rendered.shape[0] < n:
        rendered = np.vstack([rendered, np.zeros((n - rendered.shape[0], rendered.shape[1]))])
    noise = background(bg, rng, n, fs, mics)
    audio, _ = synth.mix_at_snr(rendered, noise, snr_db, fs)
    audio = audio / (np.abs(audio).max() + 1e-12) * 0.9
    return Scene(audio=np.round(audio * 32767) / 32767, fs=fs, kind=kind, label=LABEL.get(kind, 3),
                 az_true_deg=np.full(n, az_t), el_true_deg=np.full(n, el_t), snr_db=snr_db)
