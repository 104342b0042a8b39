"""Two colluding nodes forge a drone through covered area: with the honest nodes' heartbeats the pipeline's
consistency check mutes exactly the two forgers and nothing is raised; an honest lone node (its bearing leaves the
covered area) still raises its Possible sector, and a real drone heard by the honest grid still alerts with no
honest node muted."""

from __future__ import annotations

import math

import numpy as np

from skytrace.batch import DetectionBatch, SensorTable
from skytrace.model import Detection, Sensor
from skytrace.pipeline import Pipeline, run
from skytrace.security.consistency import SensorConsistency
from skytrace.zones_grid import default_zones

T0 = 1_795_381_200.0
LAT0, LON0 = 50.45, 30.95  # east of Kyiv city
M_LAT = 111_320.0
M_LON = M_LAT * math.cos(math.radians(LAT0))


def _grid() -> SensorTable:
    return SensorTable.from_sensors([
        Sensor(id=f"ac-{i}{j}", kind="acoustic", lat=LAT0 + (i - 2.5) * 3000 / M_LAT,
               lon=LON0 + (j - 2.5) * 3000 / M_LON, alt_m=150.0, bearing_sigma_deg=2.5, max_range_m=5000.0)
        for i in range(6) for j in range(6)])


def _bearings(table: SensorTable, ids: list[str], path, n_steps: int, seed: int) -> list[Detection]:
    """Every 2 s, each of ``ids`` within 5 km of ``path(k) -> (east_m, north_m)`` reports its bearing (2 deg noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_steps):
        t = T0 + 2.0 * k
        east, north = path(k)
        for sid in ids:
            r = table.index[sid]
            de = east - (table.lon[r] - LON0) * M_LON
            dn = north - (table.lat[r] - LAT0) * M_LAT
            if math.hypot(de, dn) <= 5000.0:
                b = (math.degrees(math.atan2(de, dn)) + rng.normal(0, 2.0)) % 360.0
                out.append(Detection(t=t, sensor=sid, bearing_deg=b, snr_db=12.0, t_arrival=t + 0.3))
    return out


def _run(table: SensorTable, dets: list[Detection]) -> tuple[list, SensorConsistency]:
    check = SensorConsistency(table)
    pipe = Pipeline(table, zones=default_zones(), consistency=check)
    beat_t = T0 + 60.0 * np.arange(17)  # every node: "alive" every 60 s
    pipe.heartbeat(np.repeat(np.arange(len(table)), beat_t.size), np.tile(beat_t, len(table)))
    raised: list = []
    dets = sorted(dets, key=lambda d: d.t_arrival)
    batches = [DetectionBatch.from_records(dets[i:i + 200], table) for i in range(0, len(dets), 200)]
    run(pipe, batches, 1.0, on_step=lambda res: raised.extend(e for e in res.events if e.kind == "raise"))
    return raised, check


def _muted(check: SensorConsistency) -> set[str]:
    return {k for k, v in check.flags().items() if v["muted"]}


def test_forged_drone_of_two_colluding_nodes_raises_nothing():
    table = _grid()
    fake = _bearings(table, ["ac-22", "ac-23"], lambda k: (12_000.0 - 90.0 * k, 800.0), 450, seed=7)
    raised, check = _run(table, fake)
    assert _muted(check) == {"ac-22", "ac-23"}
    assert check.flags()["ac-23"]["reason"] == "bearings into silent coverage"
    assert raised == []


def test_honest_lone_node_still_raises_its_possible_sector():
    table = _grid()
    # a drone passing south-west of the grid's corner: only ac-00 hears it, its bearing points out of coverage
    lone = _bearings(table, ["ac-00"], lambda k: (-9_500.0 + 40.0 * k, -11_500.0), 150, seed=8)
    assert {d.sensor for d in lone} == {"ac-00"} and len(lone) >= 10
    raised, check = _run(table, lone)
    assert not _muted(check)
    assert raised and all(e.certainty == "Possible" and e.tracks == ["node:ac-00"] for e in raised)


def test_real_drone_heard_by_the_grid_alerts_and_mutes_no_honest_node():
    table = _grid()
    real = _bearings(table, list(table.ids), lambda k: (12_000.0 - 90.0 * k, 800.0), 300, seed=9)
    raised, check = _run(table, real)
    assert not _muted(check)
    assert raised
