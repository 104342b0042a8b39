"""Fixtures that provide real servers on 127.0.0.1: Mosquitto and PostgreSQL 15 + PostGIS.

If SKYTRACE_TEST_MQTT_PORT / SKYTRACE_TEST_PG_URL are set (CI runs ``.ci/services.sh start``), those servers are
used; otherwise the fixtures start private ones from the Debian binaries on free ports with throwaway state.
When a server cannot be had the tests that need it FAIL: a missing broker or database is a broken set-up, not a
reason to skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def mqtt_port():
    """Port of a Mosquitto broker on 127.0.0.1 (anonymous access)."""
    if env := os.environ.get("SKYTRACE_TEST_MQTT_PORT"):
        port = int(env)
        if not wait_port(port, 5):
            pytest.fail(f"SKYTRACE_TEST_MQTT_PORT={port} but no broker listens there")
        yield port
        return
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        pytest.fail("no Mosquitto broker: apt-get install mosquitto (or set SKYTRACE_TEST_MQTT_PORT)")
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-mqtt-"))
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 200000\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not wait_port(port):
            pytest.fail(f"Mosquitto did not start: {proc.stderr.read(500) if proc.poll() is not None else ''}")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a PostgreSQL 15 server with PostGIS available, on 127.0.0.1."""
    if env := os.environ.get("SKYTRACE_TEST_PG_URL"):
        yield env
        return
    if not (PG_BIN / "initdb").exists():
        pytest.fail("no PostgreSQL 15: apt-get install postgresql-15 postgresql-15-postgis-3 "
                    "(or set SKYTRACE_TEST_PG_URL)")
    tmp = Path(tempfile.mkdtemp(prefix="skytrace-pg-"))
    data, run = tmp / "data", tmp / "run"
    data.mkdir()
    run.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(run, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "-E", "UTF8"]), check=True, capture_output=True)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {run} -c fsync=off -c max_parallel_workers_per_gather=0"
    start = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(run / "pg.log"), "-w", "-o", opts,
                          "start"])
    res = subprocess.run(start, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {res.stderr[-500:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server_url):
    """A fresh, empty database on the test server (dropped afterwards)."""
    import psycopg

    name = f"skytrace_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(pg_server_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        pytest.fail(f"cannot create a test database on {pg_server_url}: {exc}")
    base, _, _ = pg_server_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def kyiv_short(tmp_path_factory):
    """30 minutes of the kyiv-night scenario (sensors, detections, truth, zones), simulated once per session."""
    from skytrace.sim.engine import simulate
    from skytrace.sim.scenario import load_scenario

    out = tmp_path_factory.mktemp("kyiv-short")
    simulate(load_scenario("kyiv-night"), out, seed=1, duration_s=1800)
    return out


@pytest.fixture
def keyed(tmp_path):
    """A key registry (saved) with ac-1 and sight registered; their signers; and a stranger's key (never
    registered)."""
    from skytrace.security.keys import KeyRegistry, generate_private_key, load_private_key
    from skytrace.security.signing import Signer

    reg = KeyRegistry(path=tmp_path / "keys.json")
    signers = {}
    for sid in ("ac-1", "sight"):
        reg.register(sid, generate_private_key(tmp_path / f"{sid}.key"))
        signers[sid] = Signer(sid, load_private_key(tmp_path / f"{sid}.key"), seq0=0)
    generate_private_key(tmp_path / "stranger.key")
    reg.save()
    return reg, signers, load_private_key(tmp_path / "stranger.key")
