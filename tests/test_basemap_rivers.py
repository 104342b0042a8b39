"""The offline rivers layer: the shipped file (small, inside the map's box, licence recorded) and the TopoJSON
decoding of its generator (web/make_rivers.py) on a hand-made quantised topology."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make_rivers():
    spec = importlib.util.spec_from_file_location("make_rivers", ROOT / "web" / "make_rivers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_rivers_are_small_inside_the_box_and_sourced():
    raw = resources.files("skytrace.data").joinpath("basemap-rivers.json").read_bytes()
    assert len(raw) < 300_000
    doc = json.loads(raw)
    assert "Natural Earth" in doc["about"]
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds.count("river") >= 5 and set(kinds) <= {"river", "lake"}
    for f in doc["features"]:
        g = f["geometry"]
        lines = g["coordinates"] if g["type"] == "MultiLineString" else [r for p in g["coordinates"] for r in p]
        for line in lines:
            assert len(line) >= 2
            for lon, lat in line:  # a clipped line keeps one point past the box at most (<= one ~1 km step off)
                assert 20.0 < lon < 42.5 and 42.5 < lat < 55.0
    assert "basemap-rivers.json" in (ROOT / "src" / "skytrace" / "data" / "SOURCES.md").read_text()


def test_generator_decodes_quantised_delta_arcs_reversal_and_clipping(make_rivers):
    topo = {"type": "Topology", "transform": {"scale": [0.5, 0.25], "translate": [20.0, 40.0]},
            # arc 0: (24,48) -> (25,48) -> (25,49) ; arc 1: (26,50) -> (25,49)  (delta encoded)
            "arcs": [[[8, 32], [2, 0], [0, 4]], [[12, 40], [-2, -4]],
                     # arc 2: a line far outside the box; arc 3: a lake ring around (30,50)
                     [[0, 0], [2, 0]], [[20, 40], [2, 0], [0, 2], [-2, 0], [0, -2]]],
            "objects": {"rivers": {"type": "GeometryCollection", "geometries": [
                {"type": "LineString", "arcs": [0, ~1]},  # arc 1 reversed: joins at (25,49) once
                {"type": "LineString", "arcs": [2]}]},
                "lakes": {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "arcs": [[3]]}]}}}
    doc = make_rivers.build(topo)
    rivers = [f for f in doc["features"] if f["properties"]["kind"] == "river"]
    lakes = [f for f in doc["features"] if f["properties"]["kind"] == "lake"]
    assert len(rivers) == 1  # the line at (20,40) lies outside the box
    assert rivers[0]["geometry"]["coordinates"] == [[[24.0, 48.0], [25.0, 48.0], [25.0, 49.0], [26.0, 50.0]]]
    assert lakes[0]["geometry"]["coordinates"] == [[[[30.0, 50.0], [31.0, 50.0], [31.0, 50.5], [30.0, 50.5],
                                                     [30.0, 50.0]]]]
