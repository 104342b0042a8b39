"""Synthetic sound sources, backgrounds and array rendering (numpy only): for tests, benchmarks and demos.

Sources are parametric so that benchmarks can hold out part of the parameter space:

- ``engine``: a piston engine turning a propeller (Shahed / Geran class): a harmonic series on the shaft rate
  f0 (two-stroke: one firing per revolution per cylinder), spectral tilt and random formant-like bumps, the
  propeller's blade-pass orders boosted, cycle-to-cycle amplitude jitter, slow pitch and level drift.
- ``multirotor``: N rotors each with its own slightly different, jittering rate (attitude control); blade-pass
  series per rotor plus motor whine at pole-pairs x rate.
- confusers (``moped``, ``chainsaw``, ``generator``, ``lawnmower``, ``vacuum``, ``voice``, ``siren``, ``birds``,
  ``helicopter``, ``jet``) and backgrounds (``ambient``, ``wind``, ``rain``, ``traffic``, ``thunder``).

``render_point`` propagates a moving point source to every microphone (spherical spreading, exact time-varying
delay, hence Doppler, and an optional ground reflection from an image source); ``render_plane`` is the far-field
plane-wave case; ``render_diffuse`` approximates a diffuse field by plane waves from many directions.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt, sosfiltfilt

from skytrace.model import DEFAULT_SOUND_SPEED_MPS


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """Unit-std low-pass Gaussian noise (a slow random modulation)."""
    x = rng.standard_normal(n + int(fs))
    sos = butter(2, min(cutoff_hz / (fs / 2), 0.99), output="sos")
    y = sosfiltfilt(sos, x)[: n]
    return y / (y.std() + 1e-12)


def _harmonic_series(phase: np.ndarray, amps: np.ndarray, f0: np.ndarray, fs: float,
                     rng: np.random.Generator) -> np.ndarray:
    out = np.zeros_like(phase)
    for k, a in enumerate(amps, start=1):
        if a == 0:
            continue
        alive = (k * f0) < 0.45 * fs
        out += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) * alive
    return out


def pink(rng: np.random.Generator, n: int, slope: float = 1.0) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^slope (1 = pink), unit std."""
    X = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(X.size, dtype=float)
    f[0] = 1.0
    y = np.fft.irfft(X / f ** (slope / 2), n)
    return y / (y.std() + 1e-12)


def engine(rng: np.random.Generator, dur_s: float, fs: int, f0_hz: float = 80.0, blades: int = 2,
           tilt: float = 0.7, drift: float = 0.01, jitter: float = 0.002, n_harm: int = 50,
           noise_db: float = -18.0) -> np.ndarray:
    """Piston engine + propeller (see module doc). ``f0_hz`` shaft rate; returns unit-RMS audio."""
    n = int(dur_s * fs)
    f0 = f0_hz * (1 + drift * _smooth_noise(rng, n, fs, 0.1) + jitter * _smooth_noise(rng, n, fs, 8.0))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    k = np.arange(1, n_harm + 1)
    amps = k ** -tilt * np.exp(0.5 * rng.standard_normal(n_harm))
    amps[blades - 1:: blades] *= 2.5  # propeller blade-pass orders
    sig = _harmonic_series(phase, amps, f0, fs, rng)
    sig *= 1 + 0.08 * _smooth_noise(rng, n, fs, 30.0)  # cycle-to-cycle combustion variation
    sig *= 1 + 0.1 * _smooth_noise(rng, n, fs, 0.3)
    sig /= sig.std() + 1e-12
    return sig + 10 ** (noise_db / 20) * pink(rng, n, 0.5)


def multirotor(rng: np.random.Generator, dur_s: float, fs: int, rotor_hz: float = 90.0, n_rotors: int = 4,
               blades: int = 2, pole_pairs: int = 7, control_jitter: float = 0.02, whine_db: float = -10.0,
               noise_db: float = -12.0) -> np.ndarray:
    """Electric multirotor: per-rotor blade-pass series (blade-pass = blades x rotor rate) + motor whine."""
    n = int(dur_s * fs)
    out = np.zeros(n)
    for _ in range(n_rotors):
        r = rotor_hz * (1 + 0.03 * rng.standard_normal()) * (1 + control_jitter * _smooth_noise(rng, n, fs, 3.0))
        phase = 2 * np.pi * np.cumsum(r) / fs
        bp = blades * r
        amps = np.arange(1, 16, dtype=float) ** -1.0
        out += _harmonic_series(blades * phase, amps, bp, fs, rng)
        wh = pole_pairs * r
        out += 10 ** (whine_db / 20) * _harmonic_series(pole_pairs * phase, np.array([1.0, 0.4, 0.2]), wh, fs, rng)
    out /= out.std() + 1e-12
    return out + 10 ** (noise_db / 20) * pink(rng, n, 0.5)


def moped(rng, dur_s, fs, f0_hz=90.0):
    """Single-cylinder two-stroke with throttle swings of +-30 % over seconds (and level following them)."""
    n = int(dur_s * fs)
    steps = np.repeat(rng.uniform(0.65, 1.4, int(dur_s / 1.2) + 2), int(1.2 * fs))[:n]
    thr = sosfiltfilt(butter(1, 0.8 / (fs / 2), output="sos"), steps)
    f0 = f0_hz * thr * (1 + 0.004 * _smooth_noise(rng, n, fs, 10.0))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    k = np.arange(1, 41)
    amps = k ** -0.6 * np.where(k % 2 == 1, 1.0, 0.5) * np.exp(0.4 * rng.standard_normal(40))
    sig = _harmonic_series(phase, amps, f0, fs, rng) * thr**2
    sig /= sig.std() + 1e-12
    return sig + 0.2 * pink(rng, n, 0.5)


def chainsaw(rng, dur_s, fs, f0_hz=200.0):
    """Two-stroke at 9,000-13,000 rpm, alternating idle (~50 Hz) and full throttle every 1-4 s."""
    n = int(dur_s * fs)
    levels = rng.choice([0.3, 1.0], int(dur_s / 1.5) + 2)
    steps = np.repeat(levels * rng.uniform(0.9, 1.1, levels.size), int(1.5 * fs))[:n]
    thr = sosfiltfilt(butter(1, 1.5 / (fs / 2), output="sos"), steps)
    f0 = f0_hz * thr * (1 + 0.01 * _smooth_noise(rng, n, fs, 5.0))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    amps = np.arange(1, 31, dtype=float) ** -0.4
    sig = _harmonic_series(phase, amps, f0, fs, rng) * (0.3 + thr)
    sig /= sig.std() + 1e-12
    return sig + 0.3 * pink(rng, n, 0.3)


def generator(rng, dur_s, fs, f0_hz=25.0):
    """Mains generator: four-stroke at a governed 3,000 rpm (firing series on 25 Hz), rock steady."""
    n = int(dur_s * fs)
    f0 = f0_hz * (1 + 0.002 * _smooth_noise(rng, n, fs, 1.0))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    k = np.arange(1, 61)
    amps = k ** -0.5 * np.exp(0.5 * rng.standard_normal(60))
    sig = _harmonic_series(phase, amps, f0, fs, rng)
    sig /= sig.std() + 1e-12
    return sig + 0.15 * pink(rng, n, 0.5)


def lawnmower(rng, dur_s, fs, f0_hz=50.0):
    """Four-stroke mower: firing series on half the shaft rate, load changes +-6 %, blade whoosh."""
    n = int(dur_s * fs)
    shaft = f0_hz * (1 + 0.03 * _smooth_noise(rng, n, fs, 0.5))
    phase = np.pi * np.cumsum(shaft) / fs
    amps = np.arange(1, 61, dtype=float) ** -0.6 * np.exp(0.5 * rng.standard_normal(60))
    sig = _harmonic_series(phase, amps, shaft / 2, fs, rng)
    sig /= sig.std() + 1e-12
    whoosh = pink(rng, n, 1.0) * (1 + 0.5 * np.sin(2 * np.pi * np.cumsum(shaft) / fs))
    return sig + 0.4 * whoosh / (whoosh.std() + 1e-12)


def vacuum(rng, dur_s, fs, motor_hz=400.0):
    """Universal motor at ~24,000 rpm: whine series on the shaft rate, fan blade-pass, strong broadband hiss."""
    n = int(dur_s * fs)
    f0 = motor_hz * (1 + 0.003 * _smooth_noise(rng, n, fs, 0.5))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    sig = _harmonic_series(phase, np.array([1.0, 0.5, 0.3, 0.2, 0.3, 0.15, 0.1, 0.4]), f0, fs, rng)
    sig /= sig.std() + 1e-12
    return sig + 1.0 * pink(rng, n, 0.3)


def fan(rng, dur_s, fs, shaft_hz=30.0, blades=7):
    """Ventilation / air-conditioning fan: a single governed electric motor, blade-pass series (blades x shaft
    rate) over weak shaft orders and air hiss; rock steady (a confuser for an electric multirotor)."""
    n = int(dur_s * fs)
    f = shaft_hz * (1 + 0.002 * _smooth_noise(rng, n, fs, 0.5))
    ph = 2 * np.pi * np.cumsum(f) / fs
    bp = _harmonic_series(blades * ph, np.arange(1, 13, dtype=float) ** -1.2, blades * f, fs, rng)
    shaft = _harmonic_series(ph, 0.2 * np.exp(-np.arange(20) / 6.0), f, fs, rng)
    sig = bp / bp.std() + 0.3 * shaft / (shaft.std() + 1e-12)
    return sig / sig.std() + rng.uniform(0.3, 1.0) * pink(rng, n, 0.5)


def voice(rng, dur_s, fs, f0_hz=140.0):
    """Speech-like: gliding f0 (+-20 %), formant-shaped harmonics, syllables at ~4 Hz with pauses."""
    n = int(dur_s * fs)
    f0 = f0_hz * np.exp(0.12 * _smooth_noise(rng, n, fs, 3.0))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    sig = _harmonic_series(phase, np.arange(1, 31, dtype=float) ** -1.0, f0, fs, rng)
    syl = np.clip(np.sin(2 * np.pi * np.cumsum(4.0 * (1 + 0.3 * _smooth_noise(rng, n, fs, 1.0))) / fs), 0, None)
    pauses = (_smooth_noise(rng, n, fs, 0.4) > -0.5).astype(float)
    sig = sig * syl * pauses
    return sig / (sig.std() + 1e-12)


def siren(rng, dur_s, fs, f_lo=650.0, f_hi=1500.0, period_s=5.0):
    """Wail siren: one tone (with 2nd and 3rd harmonics) sweeping between f_lo and f_hi."""
    n = int(dur_s * fs)
    t = np.arange(n) / fs
    f = f_lo + (f_hi - f_lo) * 0.5 * (1 - np.cos(2 * np.pi * t / period_s + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f) / fs
    sig = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    return sig / sig.std()


def birds(rng, dur_s, fs):
    """Chirps: 50-200 ms frequency-modulated whistles at 2-6 kHz (and their 2nd harmonic), random onsets."""
    n = int(dur_s * fs)
    out = np.zeros(n)
    t_on = 0.0
    while True:
        t_on += rng.exponential(0.5)
        if t_on >= dur_s:
            break
        d = rng.uniform(0.05, 0.2)
        m = int(d * fs)
        i0 = int(t_on * fs)
        if i0 + m > n:
            break
        f = rng.uniform(2000, min(6000, 0.4 * fs)) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(5, 30)
                                                                        * np.arange(m) / fs))
        ph = 2 * np.pi * np.cumsum(f) / fs
        out[i0: i0 + m] += np.hanning(m) * (np.sin(ph) + 0.3 * np.sin(2 * ph)) * rng.uniform(0.3, 1.0)
    return out / (out.std() + 1e-12)


def car(rng, dur_s, fs, f0_hz=60.0):
    """Car engine (four-cylinder four-stroke: firing rate 2 x shaft rate), accelerating through gear shifts."""
    n = int(dur_s * fs)
    t = np.arange(n) / fs
    period = rng.uniform(3, 6)
    ramp = 0.75 + 0.6 * ((t / period) % 1.0)
    f0 = f0_hz * sosfiltfilt(butter(1, 2 / (fs / 2), output="sos"), ramp)
    phase = 2 * np.pi * np.cumsum(f0) / fs
    sig = _harmonic_series(phase, np.arange(1, 31, dtype=float) ** -0.9, f0, fs, rng)
    sig = sig / (sig.std() + 1e-12) + 0.5 * pink(rng, n, 1.0)
    return sig / sig.std()


def helicopter(rng, dur_s, fs, main_bp_hz=18.0, tail_bp_hz=90.0):
    """Main-rotor blade slap (impulsive series at 15-25 Hz), tail-rotor series, turbine whine."""
    n = int(dur_s * fs)
    f = main_bp_hz * (1 + 0.005 * _smooth_noise(rng, n, fs, 0.5))
    ph = 2 * np.pi * np.cumsum(f) / fs
    main = _harmonic_series(ph, np.exp(-np.arange(40) / 15.0), f, fs, rng)
    ft = tail_bp_hz * f / main_bp_hz
    tail = _harmonic_series(2 * np.pi * np.cumsum(ft) / fs, np.arange(1, 16, dtype=float) ** -0.8, ft, fs, rng)
    sig = main / main.std() + 0.5 * tail / tail.std() + 0.3 * pink(rng, n, 1.0)
    return sig / sig.std()


def jet(rng, dur_s, fs):
    """Jet airliner at altitude: broadband roar with a slow level swell and faint fan tones."""
    n = int(dur_s * fs)
    roar = pink(rng, n, 1.5) * (1 + 0.2 * _smooth_noise(rng, n, fs, 0.1))
    f = rng.uniform(900, 1500)
    tone = np.sin(2 * np.pi * f * np.arange(n) / fs)
    sig = roar / roar.std() + 0.05 * tone
    return sig / sig.std()


SOURCES = {"engine": engine, "multirotor": multirotor, "moped": moped, "chainsaw": chainsaw,
           "generator": generator, "fan": fan, "lawnmower": lawnmower, "vacuum": vacuum, "voice": voice, "siren": siren,
           "birds": birds, "helicopter": helicopter, "jet": jet, "car": car}


# ---- backgrounds (already multichannel) --------------------------------------------------------------------
def wind(rng, n: int, fs: int, m: int) -> np.ndarray:
    """Wind noise at the microphones: low-frequency turbulence, incoherent between mics, gusty."""
    gust = np.exp(0.6 * _smooth_noise(rng, n, fs, 0.3))
    sos = butter(2, 150 / (fs / 2), output="sos")
    out = np.stack([sosfilt(sos, rng.standard_normal(n)) for _ in range(m)], 1) * gust[:, None]
    return out / out.std()


def rain(rng, n: int, fs: int, m: int, rate_hz: float = 300.0) -> np.ndarray:
    """Rain: random drop impulses (decaying 2-8 kHz clicks), independent per mic, on a hiss floor."""
    out = 0.3 * rng.standard_normal((n, m))
    k = rng.poisson(rate_hz * n / fs)
    L = int(0.004 * fs)
    click = np.exp(-np.arange(L) / (0.0008 * fs)) * np.sin(2 * np.pi * 3000 * np.arange(L) / fs)
    for _ in range(k):
        i, j = rng.integers(0, n - L), rng.integers(0, m)
        out[i: i + L, j] += click * rng.exponential(2.0)
    return out / out.std()


def thunder(rng, n: int, fs: int, m: int) -> np.ndarray:
    """Thunder: rare long low-frequency rumbles (20-200 Hz), coherent across the small array."""
    base = np.zeros(n)
    t = 0
    while True:
        t += int(rng.uniform(5, 20) * fs)
        if t >= n:
            break
        L = min(int(rng.uniform(2, 6) * fs), n - t)
        env = np.exp(-np.arange(L) / (0.25 * L)) * (1 + _smooth_noise(rng, L, fs, 3.0).clip(-0.9, 3))
        base[t: t + L] += env * pink(rng, L, 2.0) * rng.uniform(1, 4)
    base += 0.2 * pink(rng, n, 1.0)
    return np.repeat((base / base.std())[:, None], m, 1) + 0.05 * rng.standard_normal((n, m))


def render_plane(sig: np.ndarray, mics_m: np.ndarray, fs: int, az_deg: float, el_deg: float = 0.0,
                 c: float = DEFAULT_SOUND_SPEED_MPS) -> np.ndarray:
    """Far-field plane wave from (az, el) on every mic: exact fractional delays by FFT phase shift. (n, M)."""
    n = sig.size
    az, el = np.radians(az_deg), np.radians(el_deg)
    u = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    adv = mics_m @ u / c  # mic closer to the source hears earlier (advance)
    nfft = 1 << int(np.ceil(np.log2(n + 64)))
    S = np.fft.rfft(sig, nfft)
    f = np.fft.rfftfreq(nfft, 1 / fs)
    Y = S[None, :] * np.exp(2j * np.pi * f[None, :] * adv[:, None])
    return np.fft.irfft(Y, nfft)[:, :n].T


def render_diffuse(rng: np.random.Generator, n: int, fs: int, mics_m: np.ndarray, n_waves: int = 10,
                   slope: float = 1.0, c: float = DEFAULT_SOUND_SPEED_MPS) -> np.ndarray:
    """Approximate diffuse (spatially spread) background: coloured noise arriving from many random directions
    (independent 1/f^slope noises as plane waves, summed in the frequency domain)."""
    nfft = 1 << int(np.ceil(np.log2(n)))
    f = np.fft.rfftfreq(nfft, 1 / fs)
    shape = 1.0 / np.maximum(f, fs / nfft) ** (slope / 2)
    Y = np.zeros((mics_m.shape[0], f.size), dtype=complex)
    for _ in range(n_waves):
        S = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * shape
        az, el = np.radians(rng.uniform(0, 360)), np.radians(rng.uniform(-10, 60))
        u = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
        adv = mics_m @ u / c
        Y += S[None, :] * np.exp(2j * np.pi * f[None, :] * adv[:, None])
    out = np.fft.irfft(Y, nfft)[:, :n].T
    return out / out.std()


def render_point(sig: np.ndarray, src_enu_m: np.ndarray, mics_m: np.ndarray, fs: int,
                 c: float = DEFAULT_SOUND_SPEED_MPS, ground_z_m: float | None = None,
                 reflection: float = 0.7, delay_offset_s: float = 0.0) -> np.ndarray:
    """Moving point source: ``src_enu_m`` (n, 3) emission positions per sample (or (3,) fixed), mics (M, 3).

    Receiver sample t hears the emission at tau with t = tau + |p(tau) - m| / c (solved by two fixed-point
    iterations), amplitude 1/r (relative to 1 m), linear interpolation of the source signal at tau: this gives
    Doppler exactly. With ``ground_z_m`` (the ground's up-coordinate) an image source mirrored in the ground adds
    the reflected path with pressure reflection coefficient ``reflection``. ``delay_offset_s`` is subtracted from
    every propagation delay (a distant source need not start with seconds of silence).
    """
    n = sig.size
    p = np.broadcast_to(np.asarray(src_enu_m, float), (n, 3)) if np.ndim(src_enu_m) == 1 else src_enu_m
    t = np.arange(n) / fs + delay_offset_s
    out = np.zeros((n, mics_m.shape[0]))
    paths = [(p, 1.0)]
    if ground_z_m is not None:
        img = p.copy()
        img[:, 2] = 2 * ground_z_m - p[:, 2]
        paths.append((img, reflection))
    for q, gain in paths:
        for j, m in enumerate(mics_m):
            tau = t - np.linalg.norm(q - m, axis=1) / c
            for _ in range(2):
                idx = np.clip(tau * fs, 0, n - 1)
                i0 = idx.astype(int)
                qa = q[i0]
                tau = t - np.linalg.norm(qa - m, axis=1) / c
            r = np.linalg.norm(q[np.clip((tau * fs).astype(int), 0, n - 1)] - m, axis=1)  # (tau >= 0 here)
            x = tau * fs
            ok = (x >= 0) & (x <= n - 1)
            i0 = np.clip(np.floor(x).astype(int), 0, n - 2)
            fr = x - i0
            v = sig[i0] * (1 - fr) + sig[i0 + 1] * fr
            out[:, j] += np.where(ok, gain * v / np.maximum(r, 1.0), 0.0)
    return out


def band_power(x: np.ndarray, fs: int, f_lo: float = 50.0, f_hi: float = 2000.0) -> float:
    """Mean power of ``x`` (n,) or (n, M) (first channel) in [f_lo, f_hi] Hz."""
    x0 = x[:, 0] if x.ndim == 2 else x
    X = np.fft.rfft(x0)
    f = np.fft.rfftfreq(x0.size, 1 / fs)
    sel = (f >= f_lo) & (f <= f_hi)
    return float((np.abs(X[sel]) ** 2).sum() / x0.size**2)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, fs: int, f_lo: float = 50.0,
               f_hi: float = 2000.0) -> tuple[np.ndarray, float]:
    """signal + noise scaled so that the band SNR at mic 0 is ``snr_db``; returns (mix, noise gain)."""
    ps, pn = band_power(signal, fs, f_lo, f_hi), band_power(noise, fs, f_lo, f_hi)
    g = np.sqrt(ps / max(pn, 1e-30) * 10 ** (-snr_db / 10))
    return signal + g * noise, g
