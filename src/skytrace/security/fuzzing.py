"""One harness for every reader and payload validator: seeds, a byte mutator, and the rule a reader must obey.

The rule (docs/security.md): whatever bytes arrive, a file reader either returns records or raises a
:class:`~skytrace.errors.SkytraceError` (the CLI prints it as one line and exits 2); a payload validator
(HTTP/MQTT) never raises at all, it counts the rejection. Any other exception is a *crash*; an input that takes
longer than ``HANG_S`` is a *hang*. The property tests (``tests/test_fuzz_readers.py``, hypothesis) and the
long run (``bench/bench_fuzz.py``) use the same targets, so a crash found by one is reproducible in the other.

The mutator is a small AFL-style one (bit flips, byte insertions and deletions, chunk duplication, splicing of
"interesting" tokens: NaN, 1e308, 400-digit integers, deep nesting, invalid UTF-8, lone surrogates). It is not
coverage guided; atheris (coverage guided) does not build on every Python we support, so the benchmark uses it
only when it is installed.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from skytrace.errors import SkytraceError

HANG_S = 1.0  # s; one input taking longer than this counts as a hang

INTERESTING: tuple[bytes, ...] = (
    b"NaN", b"nan", b"Infinity", b"-inf", b"inf", b"1e308", b"-1e308", b"1e999", b"-0", b"0", b"-1",
    b"9" * 400, b"18446744073709551616", b"[" * 5000, b"{\"a\":" * 3000, b"\xff\xfe", b"\xc3\x28", b"\\ud800",
    b"\"\\u0000\"", b"null", b"true", b"[]", b"{}", b"\"\"", b"\n", b"\r\n", b"\t", b"\x00",
    b"\"type\":\"LineString\"", b"\"type\":\"Point\"", b"\"type\":\"GeometryCollection\"", b"[[NaN,NaN]]",
    b"\"coordinates\":[]", b"[[[0,0],[1,0],[1,1],[0,0]]]", b"a = [[[[[[[[[[[[", b"x = 1979-05-27T07:32:00Z",
    b"count = 999999999999999999999999", b"\"kind\":\"radar\"", b"\"max_range_m\":1e308",
)


def mutate(data: bytes, rng: random.Random, max_len: int = 1 << 16) -> bytes:
    """One to four random mutations of ``data`` (bounded to ``max_len`` bytes)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:  # bit flip
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # random byte
            buf[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and buf:  # delete a run
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 3:  # splice an interesting token
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op == 4 and buf:  # replace a run with an interesting token
            buf[pos:pos + rng.randint(1, 8)] = rng.choice(INTERESTING)
        elif op == 5 and buf:  # duplicate a chunk
            a = rng.randrange(len(buf))
            buf[pos:pos] = buf[a:a + rng.randint(1, 64)]
        else:  # replace a digit run with an extreme number
            buf[pos:pos + 1] = rng.choice((b"1e308", b"NaN", b"9" * 40, b"-1e9", b"0.0"))
    return bytes(buf[:max_len])


@dataclass
class Target:
    """A reader under test: ``run(data, workdir)`` feeds ``data`` to it; ``payload`` targets must not raise."""

    name: str
    seeds: list[bytes]
    run: Callable[[bytes, Path], None]
    payload: bool = False


@dataclass
class FuzzResult:
    """What a run over one target saw."""

    target: str
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    hangs: int = 0
    max_s: float = 0.0
    total_s: float = 0.0
    first_crashes: list[tuple[str, bytes]] = field(default_factory=list)
    slowest: bytes = b""  # the slowest input, to re-time it alone (a "hang" on a loaded machine may be noise)
    slowest_retimed_s: float = 0.0


def check_one(target: Target, data: bytes, workdir: Path) -> str:
    """Run one input; returns "accepted", "rejected" or raises the unexpected exception (a crash)."""
    try:
        target.run(data, workdir)
    except SkytraceError:
        if target.payload:
            raise AssertionError("a payload validator raised instead of counting the rejection") from None
        return "rejected"
    return "accepted"


def run_target(target: Target, n: int, seed: int = 0, workdir: Path | None = None,
               progress: Callable[[int], None] | None = None) -> FuzzResult:
    """Feed ``n`` mutated inputs (seeds mutated, mutants re-mutated) to ``target``; count crashes and hangs."""
    rng = random.Random(seed)
    res = FuzzResult(target.name)
    own = workdir is None
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-fuzz-")) if own else workdir
    corpus = list(target.seeds)
    try:
        for seed_input in target.seeds:  # warm-up, untimed: imports and first-call caches are not a hang
            check_one(target, seed_input, tmp)
        for i in range(n):
            base = rng.choice(corpus)
            data = base if i < len(target.seeds) else mutate(base, rng)
            t0 = time.perf_counter()
            try:
                outcome = check_one(target, data, tmp)
            except Exception as exc:
                res.crashes += 1
                if len(res.first_crashes) < 5:
                    res.first_crashes.append((f"{type(exc).__name__}: {str(exc)[:200]}", data[:2000]))
                outcome = "crash"
            dt = time.perf_counter() - t0
            res.inputs += 1
            res.total_s += dt
            if dt > res.max_s:
                res.max_s, res.slowest = dt, data
            res.hangs += dt > HANG_S
            if outcome == "accepted":
                res.accepted += 1
                if len(corpus) < 200 and rng.random() < 0.05:
                    corpus.append(data)  # keep some valid mutants: deeper structure to mutate
            elif outcome == "rejected":
                res.rejected += 1
            if progress is not None and i % 1000 == 0:
                progress(i)
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):  # a crash was already counted
            check_one(target, res.slowest, tmp)
        res.slowest_retimed_s = time.perf_counter() - t0
    finally:
        if own:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return res


# ------------------------------------------------------------------------------------------------ the targets
SENSORS_SEED = (b'{"sensors":[{"id":"ac-1","kind":"acoustic","lat":50.4,"lon":30.5,"alt_m":160.0,'
                b'"bearing_sigma_deg":2.5,"max_range_m":3000.0},{"id":"rad-1","kind":"radar","lat":50.6,'
                b'"lon":30.9,"alt_m":175.0,"bearing_sigma_deg":0.8,"elevation_sigma_deg":1.0,"range_sigma_m":30.0,'
                b'"max_range_m":40000.0},{"id":"sight","kind":"position"}]}')
DETECTIONS_SEED = (b'{"t":1.5,"sensor":"ac-1","bearing_deg":12.25,"snr_db":9.0,"t_arrival":1.9}\n'
                   b'{"t":2.0,"sensor":"rad-1","bearing_deg":359.9,"elevation_deg":2.0,"range_m":12000.0}\n'
                   b'{"t":0.5,"sensor":"sight","lat":50.1,"lon":30.2,"alt_m":400.0,"pos_sigma_m":2000.0,'
                   b'"alt_sigma_m":500.0,"class":"shahed","class_conf":0.7}\n')
TRACKS_SEED = (b'{"t":1.0,"track":"T1","status":"confirmed","lat":50.0,"lon":30.0,"alt_m":300.0,"ve":1.0,'
               b'"vn":2.0,"vu":0.0,"pos_sigma_m":50.0}\n')
ZONES_SEED = (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"Z1","name":"Zone",'
              b'"shelter_s":60},"geometry":{"type":"Polygon","coordinates":[[[30.0,50.0],[30.5,50.0],[30.5,50.5],'
              b'[30.0,50.5],[30.0,50.0]]]}},{"type":"Feature","properties":{"id":"Z2","parent":"Z1"},"geometry":'
              b'{"type":"MultiPolygon","coordinates":[[[[31,50],[31.2,50],[31.2,50.2],[31,50]]]]}}]}')
SCENARIO_SEED = b'''name = "fuzz"
duration_s = 600.0
region = ["UA-KV"]

[[wave]]
launch_area = "bryansk"
count = 3
targets = ["kyiv"]
speed_kmh = [120.0, 185.0]

[acoustic]
count = 20
city_weights = { kyiv = 1.0 }

[[radar]]
id = "rad-1"
lat = 50.6
lon = 30.9
max_range_m = 40000.0
'''
CONFIG_SEED = b'''[pipeline]
[service]
port = 8080
step_s = 0.25
[zones]
source = "oblasts"
'''


def _table():
    import msgspec

    from skytrace.batch import SensorTable
    from skytrace.model import SensorsFile

    return SensorTable.from_sensors(msgspec.json.decode(SENSORS_SEED, type=SensorsFile).sensors)


def _file(workdir: Path, name: str, data: bytes) -> Path:
    p = workdir / name
    p.write_bytes(data)
    return p


def _detections(data: bytes, workdir: Path, _table_cache: list = []) -> None:  # noqa: B006 - a cache
    from skytrace.batch import DetectionBatch
    from skytrace.io import formats

    if not _table_cache:
        _table_cache.append(_table())
    table = _table_cache[0]
    p = _file(workdir, "detections.jsonl", data)
    recs = list(formats.iter_detections(p, table))
    if recs:
        DetectionBatch.from_records(recs, table)


HEARTBEATS_SEED = b'{"t":1.5,"sensor":"ac-1","t_arrival":1.9}\n{"t":121.5,"sensor":"rad-1"}\n'


def _heartbeats(data: bytes, workdir: Path, _table_cache: list = []) -> None:  # noqa: B006 - a cache
    from skytrace.io import formats

    if not _table_cache:
        _table_cache.append(_table())
    list(formats.iter_heartbeat_batches(_file(workdir, "heartbeats.jsonl", data), _table_cache[0]))


def _sensors(data: bytes, workdir: Path) -> None:
    from skytrace.batch import SensorTable
    from skytrace.io import formats

    SensorTable.from_sensors(formats.read_sensors(_file(workdir, "sensors.json", data)))


def _tracks(data: bytes, workdir: Path) -> None:
    from skytrace.io import formats

    formats.read_tracks(_file(workdir, "tracks.jsonl", data))


def _zones(data: bytes, workdir: Path) -> None:
    import numpy as np

    from skytrace.zones import read_zones

    zs = read_zones(_file(workdir, "zones.geojson", data))
    zs.containing(np.array([50.2, 0.0]), np.array([30.2, 0.0]))


def _scenario(data: bytes, workdir: Path) -> None:
    from skytrace.sim.scenario import load_scenario

    load_scenario(str(_file(workdir, "scenario.toml", data)))


def _config(data: bytes, workdir: Path) -> None:
    from skytrace.config import load_config

    load_config(_file(workdir, "skytrace.toml", data))


def _payload(data: bytes, workdir: Path, _table_cache: list = []) -> None:  # noqa: B006 - a cache
    from skytrace.io.mqtt import DecodeStats, decode_detections

    if not _table_cache:
        _table_cache.append(_table())
    stats = DecodeStats()
    decode_detections(data, _table_cache[0], stats, topic_sensor=None, source="fuzz")
    decode_detections(data, _table_cache[0], stats, topic_sensor="ac-1", source="fuzz")


def _heartbeat_payload(data: bytes, workdir: Path, _table_cache: list = []) -> None:  # noqa: B006 - a cache
    from skytrace.io.heartbeat import decode_heartbeats
    from skytrace.io.mqtt import DecodeStats

    if not _table_cache:
        _table_cache.append(_table())
    stats = DecodeStats()
    decode_heartbeats(data, _table_cache[0], stats, topic_sensor=None, source="fuzz")
    decode_heartbeats(data, _table_cache[0], stats, topic_sensor="ac-1", source="fuzz")


def payload_seeds() -> list[bytes]:
    lines = [ln for ln in DETECTIONS_SEED.splitlines() if ln]
    return [*lines, b"[" + b",".join(lines) + b"]"]


TARGETS: dict[str, Target] = {
    "detections": Target("detections", [DETECTIONS_SEED], _detections),
    "heartbeats": Target("heartbeats", [HEARTBEATS_SEED], _heartbeats),
    "sensors": Target("sensors", [SENSORS_SEED], _sensors),
    "tracks": Target("tracks", [TRACKS_SEED], _tracks),
    "zones": Target("zones", [ZONES_SEED], _zones),
    "scenario": Target("scenario", [SCENARIO_SEED], _scenario),
    "config": Target("config", [CONFIG_SEED], _config),
    "payload": Target("payload", payload_seeds(), _payload, payload=True),
    "heartbeat_payload": Target("heartbeat_payload", [ln for ln in HEARTBEATS_SEED.splitlines() if ln],
                                _heartbeat_payload, payload=True),
}


def scratch_dir() -> Path:
    """A scratch directory on tmpfs when there is one (the file readers write each input to a file)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="skytrace-fuzz-", dir=base))
