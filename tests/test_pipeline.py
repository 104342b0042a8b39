"""The one pipeline, end to end on a small simulated night: detections in arrival order -> tracks -> zone alerts."""

from skytrace.batch import SensorTable
from skytrace.io import formats
from skytrace.pipeline import Pipeline, run
from skytrace.sim.engine import simulate
from skytrace.sim.scenario import load_scenario
from skytrace.zones_grid import default_zones


def test_pipeline_tracks_and_alerts_a_small_wave(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        "name = 'mini'\nstart_utc = '2026-11-22T21:00:00Z'\nduration_s = 10800\nregion = ['UA-KV', 'UA-KC']\n"
        "[[wave]]\nlaunch_area = 'navlya'\ncount = 3\nlaunch_interval_s = 60\ntargets = ['kyiv']\n"
        "kind_mix = { shahed = 1.0 }\nwaypoints = [1, 1]\n"
        "[acoustic]\ncount = 250\ncity_fraction = 0.8\ncorridor_fraction = 0.2\ncity_weights = { kyiv = 1.0 }\n")
    sc = load_scenario(str(p))
    simulate(sc, tmp_path / "run", seed=3)
    table = SensorTable.from_sensors(formats.read_sensors(tmp_path / "run" / "sensors.json"))
    zones = default_zones()
    pipe = Pipeline(table, zones=zones)
    steps = []

    def keep(res):
        # only alerts above "Possible": a lone (possibly wrong) citizen sighting may raise a Possible alert anywhere
        ev = [e for e in res.events if e.certainty in (None, "Observed", "Likely")]
        steps.append((res.t, len(res.tracks), [e.kind for e in ev], [e.zone for e in ev]))

    batches = formats.iter_detection_batches(tmp_path / "run" / "detections.jsonl", table, batch_size=5000)
    n = run(pipe, batches, 10.0, on_step=keep)
    assert n > 100 and pipe.n_pushed > 1000
    assert max(s[1] for s in steps) >= 1  # tracks were confirmed
    raised = [z for _, _, kinds, zs in steps for k, z in zip(kinds, zs, strict=True) if k in ("raise", "update")]
    assert any(z.startswith("UA-KC") or z.startswith("UA-KV") for z in raised)  # Kyiv zones were alerted
    assert not any(z.startswith(("UA-LV", "UA-OD", "UA-ZK")) for z in raised)  # far-away oblasts were not
    assert pipe.alerts.name == "evidence"  # the default policy
