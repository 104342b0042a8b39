"""The simulator: determinism, and that its noise statistics match what it claims (docs/simulation.md)."""

import hashlib
import itertools

import numpy as np
import pytest
from typer.testing import CliRunner

from skytrace import geo
from skytrace.batch import SensorTable
from skytrace.cli import app
from skytrace.errors import ScenarioError
from skytrace.io import formats
from skytrace.sensors import acoustic as ac
from skytrace.sim.engine import acoustic_looks, build_world, radar_looks, sighting_reports, simulate
from skytrace.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def world_and_looks():
    """kyiv-night's world and 40 minutes of acoustic looks around the peak of the wave."""
    sc = load_scenario("kyiv-night")
    rng = np.random.default_rng(3)
    world = build_world(sc, rng)
    diags = []
    t = sc.start_t + 2.0 * 3600
    for k in range(40):
        _, d = acoustic_looks(world, t + 60 * k, t + 60 * (k + 1), rng)
        if d:
            diags.append(d)
    merged = {key: np.concatenate([d[key] for d in diags]) for key in diags[0] if key != "n_true"}
    return world, merged


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    sc = load_scenario("kyiv-night")
    a = simulate(sc, tmp_path / "a", seed=5, duration_s=2400)
    simulate(sc, tmp_path / "b", seed=5, duration_s=2400)
    simulate(sc, tmp_path / "c", seed=6, duration_s=2400)
    assert a.n_detections > 1000
    for name in ("sensors.json", "detections.jsonl", "truth.jsonl"):
        assert _digest(tmp_path / "a" / name) == _digest(tmp_path / "b" / name)
    assert _digest(tmp_path / "a" / "detections.jsonl") != _digest(tmp_path / "c" / "detections.jsonl")


def test_output_files_are_valid_and_in_arrival_order(tmp_path):
    sc = load_scenario("kyiv-night")
    simulate(sc, tmp_path, seed=2, duration_s=3 * 3600)
    table = SensorTable.from_sensors(formats.read_sensors(tmp_path / "sensors.json"))
    stats = formats.ReadStats()
    dets = formats.read_detections(tmp_path / "detections.jsonl", table, stats=stats)
    assert stats.skipped == 0 and len(dets) > 10_000
    assert np.all(np.diff(dets.t_arrival) >= 0)  # written in arrival order ...
    assert np.mean(np.diff(dets.t) < 0) > 0.05  # ... so out of order in sensor time
    late = dets.t_arrival - dets.t
    assert np.all(late >= 0)
    assert np.sum(late > 5.0) > 0  # some reports are very late
    truth = formats.read_truth(tmp_path / "truth.jsonl")
    assert {p.kind for p in truth} <= {"shahed", "jet", "decoy"}
    kinds = {s.kind for s in table.records}
    assert kinds == {"acoustic", "radar", "position"}


def test_acoustic_delay_is_range_over_c(world_and_looks):
    world, d = world_and_looks
    s = world.node_ecef[d["cand_node"]]
    r = np.linalg.norm(d["cand_p"] - s, axis=1)
    residual = d["cand_t_rx"] - d["cand_tau"] - r / 343.0
    assert np.max(np.abs(residual)) < 1e-3
    # and the delay is physically meaningful: seconds, not zero
    assert np.median(d["cand_t_rx"] - d["cand_tau"]) > 2.0


def test_bearing_error_spread_per_snr_bin_matches_model(world_and_looks):
    world, d = world_and_looks
    outlier = d["outlier"]
    assert d["true_az"].size > 2000
    sc = world.scenario
    rng = np.random.default_rng(11)
    t = sc.start_t + 2.5 * 3600
    errs, snrs, sigs = [], [], []
    for k in range(20):
        b, dd = acoustic_looks(world, t + 60 * k, t + 60 * (k + 1), rng)
        n = dd["n_true"]
        ok = ~dd["outlier"]
        errs.append(geo.wrap_deg(b.bearing_deg[:n] - dd["true_az"])[ok])
        snrs.append(b.snr_db[:n][ok])
        sigs.append(dd["sigma"][ok])
    err, snr, sig = np.concatenate(errs), np.concatenate(snrs), np.concatenate(sigs)
    bins = [(6, 9), (9, 12), (12, 16), (16, 40)]
    spreads = []
    for lo, hi in bins:
        m = (snr >= lo) & (snr < hi)
        assert m.sum() > 200, (lo, hi, m.sum())
        z = err[m] / sig[m]
        assert np.std(z) == pytest.approx(1.0, abs=0.08), (lo, hi)
        # and the claimed sigma formula gives the observed spread in degrees
        assert np.std(err[m]) == pytest.approx(np.sqrt(np.mean(ac.bearing_sigma_deg(snr[m], 2.5) ** 2)), rel=0.1)
        spreads.append(np.std(err[m]))
    assert spreads == sorted(spreads, reverse=True)  # error grows as SNR drops
    assert 0.01 < np.mean(outlier) < 0.04


def test_detection_rate_falls_with_range_and_matches_nominal_range(world_and_looks):
    world, d = world_and_looks
    rural = d["cand_noise_db"] < 42
    rng_m, det = d["cand_range_m"][rural], d["cand_detected"][rural]
    assert rng_m.size > 5000
    edges = np.array([0, 1000, 2000, 3000, 4000, 5000, 7000])
    rate = np.array([det[(rng_m >= a) & (rng_m < b)].mean() for a, b in itertools.pairwise(edges)])
    assert rate[0] > 0.9 and rate[-1] < 0.15
    assert np.all(np.diff(rate) < 0.02)  # non-increasing within sampling noise
    # the model's expected rate (scintillation included) per look matches the empirical one overall
    z = np.random.default_rng(0).normal(0, ac.SCINTILLATION_DB, (64, 1))
    p = ac.detection_probability(ac.snr_db(rng_m, d["cand_noise_db"][rural], d["cand_source_db"][rural]) + z).mean(0)
    assert det.mean() == pytest.approx(p.mean(), abs=0.02)


def test_radar_never_sees_below_the_horizon():
    sc = load_scenario("kyiv-night")
    sc.radar[0].clutter_per_scan = 0.0
    sc.radar[1].clutter_per_scan = 0.0
    rng = np.random.default_rng(4)
    world = build_world(sc, rng)
    fleet = world.fleet
    n_det, n_hidden_checked = 0, 0
    for k in range(0, int(sc.duration_s), 600):
        t0 = sc.start_t + k
        b = radar_looks(world, t0, t0 + 60, rng)
        n_det += len(b)
        # every plot must come from a drone above the radar horizon at that instant
        for i in range(len(b)):
            ri = b.sensor[i] - len(world.net.ids)
            r = world.radars[ri]
            active = np.flatnonzero((fleet.t_launch <= b.t[i]) & (fleet.t_end >= b.t[i]))
            ts = np.full(active.size, b.t[i])
            p = fleet.position_ecef(active, ts)
            s = np.repeat(world.radar_ecef[ri][None], active.size, 0)
            rot = np.repeat(world.radar_rot[ri][None], active.size, 0)
            az, el, rr = geo.aer_from_ecef(s, rot, p)
            j = np.argmin(np.abs(rr - b.range_m[i]) / 30.0 + np.abs(geo.wrap_deg(az - b.bearing_deg[i])))
            _, _, h = fleet.position_xyh(active[j:j + 1], ts[:1])
            assert rr[j] * np.cos(np.radians(el[j])) <= geo.radar_horizon_m(r.mast_m, h[0]) + 1.0
            n_hidden_checked += 1
    assert n_det > 50 and n_hidden_checked == n_det


def test_sightings_are_late_and_kilometre_level():
    sc = load_scenario("kyiv-night")
    rng = np.random.default_rng(5)
    world = build_world(sc, rng)
    t0 = sc.start_t + 2.5 * 3600
    b = sighting_reports(world, t0, t0 + 1800, rng)
    assert len(b) > 20
    delay = b.t_arrival - b.t
    assert np.median(delay) > 20 and np.max(delay) < 120 + 60
    assert np.all(b.pos_sigma_m == sc.sightings.reported_sigma_m)


def test_scenario_errors_are_clear(tmp_path):
    bad = {
        "name = 'x'\nbogus = 1\n": "unknown key 'bogus'",
        "name = 'x'\nduration_s = 'long'\n": "'duration_s' must be a finite number",
        "name = 'x'\n[[wave]]\nlaunch_area = 'mars'\ncount = 1\ntargets = ['kyiv']\n": "launch_area 'mars' unknown",
        "name = 'x'\n[[wave]]\nlaunch_area = 'kursk'\ncount = 1\ntargets = ['atlantis']\n": "unknown city",
        "name = 'x'\n[acoustic]\ncount = 'many'\n": "'acoustic.count' must be an integer",
        "name = 'x'\nregion = ['UA-99']\n": "unknown oblast id",
        "name = [\n": "not valid TOML",
        "description = 'no name'\n": "missing required key 'name'",
    }
    for text, msg in bad.items():
        p = tmp_path / "s.toml"
        p.write_text(text)
        with pytest.raises(ScenarioError, match=msg.replace("(", r"\(").replace("[", r"\[")):
            load_scenario(str(p))
    with pytest.raises(ScenarioError, match="unknown scenario"):
        load_scenario("no-such-scenario")


def test_cli_simulate_bench2d_and_user_scenario(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "bench2d", "--out", str(tmp_path / "b"), "--quiet"])
    assert res.exit_code == 0, res.output
    table = SensorTable.from_sensors(formats.read_sensors(tmp_path / "b" / "sensors.json"))
    assert len(formats.read_detections(tmp_path / "b" / "detections.jsonl", table)) > 1000
    p = tmp_path / "mine.toml"
    p.write_text("name = 'mine'\nduration_s = 1800\n[[wave]]\nlaunch_area = 'chauda'\ncount = 3\ntargets = ['odesa']\n"
                 "[acoustic]\ncount = 50\n")
    res = CliRunner().invoke(app, ["simulate", str(p), "--out", str(tmp_path / "m"), "--quiet", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "3 drones" in res.output
