"""The forensic link contract: debris -> tracks and launch areas, on small hand-built tracks."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from skytrace.errors import FormatError
from skytrace.forensics.inputs import Debris, read_debris, read_launch_areas
from skytrace.forensics.link import LinkConfig, association_marginals, link_debris, map_max_marginals
from skytrace.forensics.linkrun import link_files
from skytrace.forensics.origin import launch_area_probabilities, predecessors, smooth_first_states
from skytrace.forensics.tracks import TrackHistories
from skytrace.model import TrackPoint

GEOD = Geod(ellps="WGS84")
T0 = 1_700_000_000.0


def _track(name: str, lat0: float, lon0: float, az_legs: list[tuple[float, float]], speed: float = 50.0,
           t0: float = T0, dt: float = 5.0, sigma: float = 60.0) -> list[TrackPoint]:
    """A track flying legs of (azimuth_deg, duration_s) from (lat0, lon0); the last point is its end."""
    pts, lat, lon, t = [], lat0, lon0, t0
    for az, dur in az_legs:
        for _ in range(int(dur / dt)):
            ve, vn = speed * np.sin(np.radians(az)), speed * np.cos(np.radians(az))
            pts.append(TrackPoint(t=t, track=name, status="confirmed", lat=lat, lon=lon, alt_m=400.0, ve=ve, vn=vn,
                                  vu=0.0, pos_sigma_m=sigma))
            lon, lat, _ = GEOD.fwd(lon, lat, az, speed * dt)
            t += dt
    # the tracker coasts a lost track on before deleting it: these states are predictions, not evidence
    for k in range(1, 4):
        lon_c, lat_c, _ = GEOD.fwd(pts[-1].lon, pts[-1].lat, az_legs[-1][0], speed * dt * k)
        pts.append(TrackPoint(t=pts[-1].t + dt, track=name, status="coasting", lat=lat_c, lon=lon_c, alt_m=400.0,
                              ve=pts[-1].ve, vn=pts[-1].vn, vu=0.0, pos_sigma_m=sigma * 3))
    return pts


def _end(pts: list[TrackPoint]) -> TrackPoint:
    return [p for p in pts if p.status == "confirmed"][-1]


@pytest.fixture()
def scene() -> list[TrackPoint]:
    # three drones from Kursk-ish toward Kyiv-ish ending 1.5-3 km apart, one ending far away, one from Crimea
    a = _track("T-a", 51.3, 35.0, [(255.0, 4000.0), (235.0, 2000.0)])
    b = _track("T-b", 51.2, 35.1, [(250.0, 4200.0), (240.0, 1700.0)])
    c = _track("T-c", 51.5, 34.6, [(240.0, 5000.0)], t0=T0 + 900)
    d = _track("T-d", 45.6, 34.2, [(330.0, 9000.0)], t0=T0 + 300)
    return a + b + c + d


def _debris_near(p: TrackPoint, name: str, along_m: float = 300.0, cross_m: float = 80.0, delay_h: float = 5.0
                 ) -> Debris:
    az = np.degrees(np.arctan2(p.ve, p.vn))
    lon, lat, _ = GEOD.fwd(p.lon, p.lat, az, along_m)
    lon, lat, _ = GEOD.fwd(lon, lat, az + 90.0, cross_m)
    return Debris(id=name, t=p.t + delay_h * 3600, lat=lat, lon=lon)


def test_debris_links_to_the_track_that_ended_there(scene: list[TrackPoint]) -> None:
    hist = TrackHistories.from_points(scene)
    by_name = {n: _end([p for p in scene if p.track == n]) for n in ("T-a", "T-b", "T-c", "T-d")}
    debris = [_debris_near(by_name[n], f"deb-{n}") for n in by_name]
    res = link_debris(hist, debris)
    for r, n in zip(res, by_name, strict=True):
        assert hist.ids[r.tracks[0]] == n
        assert r.p[0] > 0.9
        assert all(0.0 <= p <= 1.0 for p in r.p) and abs(sum(r.p) + r.p_none - 1.0) < 1e-9
        assert r.p == sorted(r.p, reverse=True)


def test_far_debris_is_none_and_future_tracks_are_excluded(scene: list[TrackPoint]) -> None:
    hist = TrackHistories.from_points(scene)
    end_a = _end([p for p in scene if p.track == "T-a"])
    far = _debris_near(end_a, "far", along_m=-40_000.0)  # 40 km behind the end, on the track's path
    off = _debris_near(end_a, "off", along_m=0.0, cross_m=30_000.0)  # 30 km to the side of the end
    early = _debris_near(end_a, "early", delay_h=-1.0)  # recovered before the track ended: not this track
    res = {r.debris: r for r in link_debris(hist, [far, off, early])}
    assert res["off"].tracks == [] and res["off"].p_none == 1.0
    # the track flew on, updated, for 800 s after passing there: "none" dominates
    assert res["far"].p_none > 0.9 and all(p < 0.1 for p in res["far"].p)
    assert hist.ids.index("T-a") not in res["early"].tracks


def test_ambiguous_debris_splits_probability(scene: list[TrackPoint]) -> None:
    # a second drone flying the same route 500 m to the side: its end is 500 m from T-a's
    lon1, lat1, _ = GEOD.fwd(35.0, 51.3, 145.0, 500.0)  # square to the last leg (235 deg)
    twin = _track("T-twin", lat1, lon1, [(255.0, 4000.0), (235.0, 2000.0)])
    hist = TrackHistories.from_points(scene + twin)
    ea = _end([p for p in scene if p.track == "T-a"])
    eb = _end(twin)
    _, _, dist = GEOD.inv(ea.lon, ea.lat, eb.lon, eb.lat)
    assert 400 < dist < 600
    r = link_debris(hist, [Debris(id="mid", t=ea.t + 7200, lat=(ea.lat + eb.lat) / 2, lon=(ea.lon + eb.lon) / 2)])[0]
    assert {hist.ids[k] for k in r.tracks[:2]} == {"T-a", "T-twin"}
    assert r.p[1] > 0.3 and r.p[0] - r.p[1] < 0.1  # equal evidence for both (250 m off each end)
    # and a debris item next to the twin's end picks the twin
    r = link_debris(hist, [_debris_near(eb, "twin", along_m=100.0, cross_m=-100.0)])[0]
    assert hist.ids[r.tracks[0]] == "T-twin" and r.p[0] > 0.8


def _joint_hypotheses(w: np.ndarray):
    """Every one-to-one assignment of debris (rows) to tracks or none (-1), with its weight (brute force)."""
    n, k = w.shape
    for choice in itertools.product(range(-1, k), repeat=n):
        used = [c for c in choice if c >= 0]
        if len(used) == len(set(used)):
            yield choice, float(np.prod([w[i, c] if c >= 0 else 1.0 for i, c in enumerate(choice)]))


def test_joint_association_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        n, k = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        w = np.exp(rng.normal(0.0, 2.0, (n, k))) * (rng.uniform(size=(n, k)) < 0.8)
        hyps = list(_joint_hypotheses(w))
        best = max(hyps, key=lambda h: h[1])[0]
        P, p_none = map_max_marginals(w)
        top = [int(np.argmax(P[i])) if P[i].size and P[i].max() > p_none[i] else -1 for i in range(n)]
        assert top == list(best)  # each item's most probable entry is its part of the MAP assignment
        assert np.allclose(P.sum(axis=1) + p_none, 1.0)
        # belief propagation: close to the exact marginals on these small problems
        z = sum(h[1] for h in hyps)
        exact = np.array([[sum(h[1] for h in hyps if h[0][i] == c) / z for c in range(k)] for i in range(n)])
        bp, bp_none = association_marginals(w)
        assert np.allclose(bp.sum(axis=1) + bp_none, 1.0)
        assert np.max(np.abs(bp - exact)) < 0.15


def test_drones_down_together_one_wreck_per_track(scene: list[TrackPoint]) -> None:
    """Two wrecks near T-a's end, the second from a drone no track followed: T-a goes to the closer one, and the
    other gets "none" rather than T-a a second time (item by item, both would name T-a)."""
    hist = TrackHistories.from_points(scene)
    end_a = _end([p for p in scene if p.track == "T-a"])
    mine = _debris_near(end_a, "mine", along_m=300.0, cross_m=50.0)
    other = _debris_near(end_a, "other", along_m=1500.0, cross_m=-400.0)
    alone = {r.debris: r for r in link_debris(hist, [mine, other], LinkConfig(joint=""))}
    assert hist.ids[alone["other"].tracks[0]] == "T-a" and alone["other"].p[0] > alone["other"].p_none
    for joint in ("map", "bp"):
        res = {r.debris: r for r in link_debris(hist, [mine, other], LinkConfig(joint=joint))}
        assert hist.ids[res["mine"].tracks[0]] == "T-a" and res["mine"].p[0] > 0.5
        assert res["other"].p_none > max(res["other"].p, default=0.0)


def test_back_projection_prefers_the_area_behind_the_track() -> None:
    areas = read_launch_areas(None)
    ids = [a.id for a in areas]
    # a track starting 150 km WSW of Kursk heading WSW: Kursk should lead
    lon0, lat0, _ = GEOD.fwd(36.29, 51.75, 250.0, 150_000.0)
    pts = _track("T", lat0, lon0, [(250.0, 3000.0)])
    hist = TrackHistories.from_points(pts)
    first = smooth_first_states(hist, [0])[0]
    p = launch_area_probabilities(first, areas)
    assert ids[int(np.argmax(p))] == "kursk"
    assert abs(p.sum() - 1.0) < 1e-9 and (p >= 0).all()
    # a track from Crimea heading north: a Crimean area leads, not Kursk
    pts = _track("U", 46.2, 34.0, [(350.0, 3000.0)])
    first = smooth_first_states(TrackHistories.from_points(pts), [0])[0]
    p = launch_area_probabilities(first, areas)
    assert ids[int(np.argmax(p))] in ("hvardiiske", "chauda")


def test_smoother_recovers_velocity_from_noisy_states() -> None:
    rng = np.random.default_rng(3)
    pts = _track("N", 50.0, 33.0, [(200.0, 1500.0)], sigma=150.0)
    noisy = []
    for p in pts:
        lon, lat, _ = GEOD.fwd(p.lon, p.lat, rng.uniform(0, 360), abs(rng.normal(0, 150.0)))
        noisy.append(TrackPoint(t=p.t, track=p.track, status=p.status, lat=lat, lon=lon, alt_m=p.alt_m,
                                ve=p.ve + rng.normal(0, 15), vn=p.vn + rng.normal(0, 15), vu=0.0,
                                pos_sigma_m=p.pos_sigma_m))
    first = smooth_first_states(TrackHistories.from_points(noisy), [0])[0]
    hdg = np.degrees(np.arctan2(*first.vel_en)) % 360
    assert abs(hdg - 200.0) < 3.0
    assert abs(np.hypot(*first.vel_en) - 50.0) < 3.0


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_link_files_writes_the_contract(tmp_path: Path, scene: list[TrackPoint]) -> None:
    from skytrace.io.formats import write_jsonl

    write_jsonl(tmp_path / "tracks.jsonl", scene)
    ends = {n: _end([p for p in scene if p.track == n]) for n in ("T-a", "T-d")}
    _write_jsonl(tmp_path / "debris.jsonl", [
        {"id": "A1", "t": ends["T-a"].t + 3 * 3600, "lat": ends["T-a"].lat, "lon": ends["T-a"].lon},
        {"id": "D1", "t": ends["T-d"].t + 9 * 3600, "lat": ends["T-d"].lat, "lon": ends["T-d"].lon,
         "finder": "State Emergency Service"},
    ])
    lines = link_files(tmp_path / "tracks.jsonl", tmp_path / "debris.jsonl", None, tmp_path / "links.jsonl")
    disk = [json.loads(x) for x in (tmp_path / "links.jsonl").read_text().splitlines()]
    assert disk == lines and [ln["debris"] for ln in disk] == ["A1", "D1"]
    builtin = {a.id for a in read_launch_areas(None)}
    for ln in disk:
        assert set(ln) >= {"debris", "tracks", "launch_areas"}
        assert {a["id"] for a in ln["launch_areas"]} == builtin
        ps = [a["p"] for a in ln["launch_areas"]]
        assert ps == sorted(ps, reverse=True) and abs(sum(ps) - 1.0) < 1e-4
        assert all(0 <= x["p"] <= 1 for x in ln["tracks"] + ln["launch_areas"])
    assert disk[0]["tracks"][0]["track"] == "T-a"
    assert disk[1]["tracks"][0]["track"] == "T-d"
    assert disk[1]["launch_areas"][0]["id"] in ("hvardiiske", "chauda")
    # a user catalogue replaces the built-in one
    (tmp_path / "areas.json").write_text(json.dumps({"launch_areas": [
        {"id": "north", "lat": 52.5, "lon": 36.5}, {"id": "south", "lat": 45.0, "lon": 34.5, "radius_km": 20}]}))
    lines = link_files(tmp_path / "tracks.jsonl", tmp_path / "debris.jsonl", tmp_path / "areas.json",
                       tmp_path / "links2.jsonl")
    assert [ln["launch_areas"][0]["id"] for ln in lines] == ["north", "south"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("bad, where", [
    ('{"id": "x", "t": 1, "lat": 95, "lon": 30}\n', "line 1"),
    ('{"id": "x", "t": 1, "lat": 50}\n', "lon"),
    ('{"id": "x", "t": NaN, "lat": 50, "lon": 30}\n', "line 1"),
    ('{"id": "x", "t": 1, "lat": 50, "lon": 30}\n{"id": "x", "t": 2, "lat": 50, "lon": 30}\n', "duplicate"),
    ('not json\n', "line 1"),
    ('', "no debris"),
])
def test_bad_debris_is_one_line_error_exit_2(tmp_path: Path, scene: list[TrackPoint], bad: str, where: str) -> None:
    from skytrace.io.formats import write_jsonl

    write_jsonl(tmp_path / "tracks.jsonl", scene[:50])
    (tmp_path / "debris.jsonl").write_text(bad)
    r = _cli("forensics", "link", "--tracks", str(tmp_path / "tracks.jsonl"), "--debris",
             str(tmp_path / "debris.jsonl"), "--out", str(tmp_path / "links.jsonl"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1 and where in r.stderr


def test_bad_tracks_and_areas_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "tracks.jsonl").write_text('{"t": 1, "track": "a", "status": "flying"}\n')
    (tmp_path / "debris.jsonl").write_text('{"id": "x", "t": 1, "lat": 50, "lon": 30}\n')
    r = _cli("forensics", "link", "--tracks", str(tmp_path / "tracks.jsonl"), "--debris",
             str(tmp_path / "debris.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "tracks.jsonl, line 1" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(FormatError, match="radius_km"):
        (tmp_path / "a.json").write_text('[{"id": "a", "lat": 50, "lon": 30, "radius_km": -1}]')
        read_launch_areas(tmp_path / "a.json")
    with pytest.raises(FormatError, match="duplicate"):
        (tmp_path / "a.json").write_text('[{"id": "a", "lat": 50, "lon": 30}, {"id": "a", "lat": 51, "lon": 30}]')
        read_launch_areas(tmp_path / "a.json")
    with pytest.raises(FormatError, match="not found"):
        read_debris(tmp_path / "missing.jsonl")


def _renamed(pts: list[TrackPoint], name: str) -> list[TrackPoint]:
    """The same points under another track id (a drone's history cut into tracker tracks)."""
    return [TrackPoint(t=p.t, track=name, status=p.status, lat=p.lat, lon=p.lon, alt_m=p.alt_m, ve=p.ve, vn=p.vn,
                       vu=p.vu, pos_sigma_m=p.pos_sigma_m) for p in pts]


def test_stitching_finds_the_earlier_track_of_the_same_drone() -> None:
    """A drone lost for 60 s and found again by a new track: the new track's predecessor is the old one (so the
    back-projection starts at the first detection); a track crossing there at right angles is not."""
    whole = _track("W", 51.3, 35.0, [(250.0, 3000.0)])

    old = _renamed([p for p in whole if p.status == "confirmed" and p.t < T0 + 1500], "T-old")
    tail = _renamed([p for p in whole if p.t >= T0 + 1560], "T-new")
    mid = tail[0]
    cross = _track("T-cross", *GEOD.fwd(mid.lon, mid.lat, 160.0, 50.0 * 600)[1::-1], [(340.0, 590.0)],
                   t0=T0 + 960)
    hist = TrackHistories.from_points(old + tail + cross)
    k = hist.ids.index("T-new")
    assert [hist.ids[j] for j in predecessors(hist, k)] == ["T-old"]
    first = smooth_first_states(hist, [k])[0]
    assert abs(first.t - T0) < 1.0  # starts where T-old started
    assert predecessors(hist, hist.ids.index("T-old")) == []


def test_untracked_debris_gets_the_nights_launch_area_mix() -> None:
    """The "none of these tracks" mass follows the night's linked tracks, weighted by their link mass; with no
    back-projected track it is the catalogue's prior."""
    from skytrace.forensics.link import LinkResult
    from skytrace.forensics.linkrun import night_mix

    prior = np.full(3, 1 / 3)
    per_track = {0: np.array([0.8, 0.1, 0.1]), 1: np.array([0.1, 0.7, 0.2])}
    links = [LinkResult("a", [0], [0.9], 0.1), LinkResult("b", [1, 0], [0.3, 0.1], 0.6),
             LinkResult("c", [], [], 1.0)]
    mix = night_mix(links, per_track, prior)
    want = (1.0 * per_track[0] + 0.3 * per_track[1]) / 1.3
    assert np.allclose(mix, want) and abs(mix.sum() - 1) < 1e-12
    assert np.allclose(night_mix([LinkResult("c", [], [], 1.0)], per_track, prior), prior)


def test_stitching_bridges_a_dog_leg_in_a_long_gap() -> None:
    """A drone unseen for 20 minutes while it turned at a waypoint: stitched across the dog-leg (one-to-one
    assignment), not when only straight-on gaps or short gaps are allowed; another drone's track is not taken."""
    from skytrace.forensics.origin import OriginConfig

    whole = _track("W", 51.3, 35.0, [(250.0, 3000.0), (215.0, 3000.0)])
    other = _track("T-other", 51.0, 35.5, [(300.0, 2400.0)])

    old = _renamed([p for p in whole if p.status == "confirmed" and p.t < T0 + 2400], "T-old")
    new = _renamed([p for p in whole if p.t >= T0 + 3600], "T-new")
    hist = TrackHistories.from_points(old + new + other)
    k = hist.ids.index("T-new")
    assert [hist.ids[j] for j in predecessors(hist, k)] == ["T-old"]
    assert predecessors(hist, k, OriginConfig(stitch_turn_deg=0.0)) == []  # straight on only
    assert predecessors(hist, k, OriginConfig(stitch_gap_s=600.0)) == []
