"""Geodesy against known values and an independent library (pyproj)."""

import numpy as np
import pymap3d
import pytest
from pyproj import Geod, Transformer

from skytrace import geo


def test_ecef_known_values():
    x, y, z = geo.geodetic_to_ecef(0.0, 0.0, 0.0)
    assert (x, y, z) == pytest.approx((6_378_137.0, 0.0, 0.0), abs=1e-6)
    x, y, z = geo.geodetic_to_ecef(90.0, 0.0, 0.0)
    assert z == pytest.approx(6_356_752.314245, abs=1e-3)  # WGS84 semi-minor axis
    x, y, z = geo.geodetic_to_ecef(0.0, 90.0, 1000.0)
    assert (x, y, z) == pytest.approx((0.0, 6_379_137.0, 0.0), abs=1e-6)


def test_ecef_matches_pyproj_and_round_trips():
    rng = np.random.default_rng(0)
    lat, lon, alt = rng.uniform(44, 53, 200), rng.uniform(22, 41, 200), rng.uniform(0, 3000, 200)
    tr = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    xp, yp, zp = tr.transform(lon, lat, alt)
    x, y, z = geo.geodetic_to_ecef(lat, lon, alt)
    assert np.max(np.abs(np.column_stack([x - xp, y - yp, z - zp]))) < 1e-3
    la, lo, al = geo.ecef_to_geodetic(x, y, z)
    assert np.max(np.abs(la - lat)) < 1e-9 and np.max(np.abs(lo - lon)) < 1e-9 and np.max(np.abs(al - alt)) < 1e-4


def test_enu_north_and_up():
    # 1 km due north of Kyiv at the same height: ENU ~ (0, 1000, -0.08) (Earth curvature drops it 1000^2/2R)
    g = Geod(ellps="WGS84")
    lon2, lat2, _ = g.fwd(30.52, 50.45, 0.0, 1000.0)
    e, n, u = geo.geodetic_to_enu(lat2, lon2, 0.0, 50.45, 30.52, 0.0)
    assert e == pytest.approx(0.0, abs=1e-3)
    assert n == pytest.approx(1000.0, abs=0.05)
    assert u == pytest.approx(-1000.0**2 / (2 * 6_371_000), abs=0.01)


def test_bearing_matches_geodesic_azimuth_at_short_range():
    g = Geod(ellps="WGS84")
    rng = np.random.default_rng(1)
    az_true = rng.uniform(0, 360, 50)
    lon2, lat2, _ = g.fwd(np.full(50, 30.52), np.full(50, 50.45), az_true, np.full(50, 5000.0))
    az, el, rng_m = geo.aer(50.45, 30.52, 0.0, lat2, lon2, np.zeros(50))
    assert np.max(np.abs(geo.wrap_deg(az - az_true))) < 0.01
    assert np.all((az >= 0) & (az < 360))
    assert np.allclose(rng_m, 5000.0, atol=3.0)


def test_elevation_of_point_overhead_and_at_45_deg():
    az, el, r = geo.aer(50.0, 30.0, 100.0, 50.0, 30.0, 1100.0)
    assert el == pytest.approx(90.0, abs=1e-6) and r == pytest.approx(1000.0, abs=1e-6)
    e, n, u = 0.0, 2000.0, 2000.0
    lat, lon, alt = geo.enu_to_geodetic(e, n, u, 50.0, 30.0, 100.0)
    az, el, r = geo.aer(50.0, 30.0, 100.0, lat, lon, alt)
    assert az == pytest.approx(0.0, abs=1e-6) or az == pytest.approx(360.0, abs=1e-6)
    assert el == pytest.approx(45.0, abs=1e-6) and r == pytest.approx(2000 * np.sqrt(2), abs=1e-4)


def test_batched_aer_matches_pymap3d():
    rng = np.random.default_rng(2)
    n = 100
    slat, slon, salt = rng.uniform(48, 52, n), rng.uniform(28, 36, n), rng.uniform(100, 300, n)
    tlat, tlon, talt = slat + rng.normal(0, 0.05, n), slon + rng.normal(0, 0.05, n), rng.uniform(100, 2500, n)
    s_ecef = np.column_stack(geo.geodetic_to_ecef(slat, slon, salt))
    t_ecef = np.column_stack(geo.geodetic_to_ecef(tlat, tlon, talt))
    az, el, r = geo.aer_from_ecef(s_ecef, geo.enu_rotation(slat, slon), t_ecef)
    az2, el2, r2 = pymap3d.geodetic2aer(tlat, tlon, talt, slat, slon, salt)
    assert np.max(np.abs(geo.wrap_deg(az - az2))) < 1e-7
    assert np.max(np.abs(el - el2)) < 1e-7
    assert np.max(np.abs(r - r2)) < 1e-6


def test_local_frame_round_trip_and_vectors():
    f = geo.LocalFrame(50.45, 30.52, 150.0)
    lat, lon, alt = np.array([50.0, 51.2]), np.array([30.0, 32.0]), np.array([500.0, 1500.0])
    enu = np.column_stack(f.to_enu(lat, lon, alt))
    la, lo, al = f.to_geodetic(enu[:, 0], enu[:, 1], enu[:, 2])
    assert np.allclose(la, lat, atol=1e-9) and np.allclose(lo, lon, atol=1e-9) and np.allclose(al, alt, atol=1e-4)
    assert np.allclose(f.enu_to_ecef(f.ecef_to_enu(np.column_stack(geo.geodetic_to_ecef(lat, lon, alt)))),
                       np.column_stack(geo.geodetic_to_ecef(lat, lon, alt)), atol=1e-6)
    v_local = np.array([[10.0, 20.0, 1.0], [-5.0, 3.0, 0.0]])
    v_frame = f.vector_to_local(lat, lon, v_local)
    assert np.allclose(np.linalg.norm(v_frame, axis=1), np.linalg.norm(v_local, axis=1))
    assert np.allclose(f.vector_from_local(lat, lon, v_frame), v_local, atol=1e-9)


def test_radar_horizon_rule_of_thumb():
    # d_km ~= 4.12 (sqrt(h_r) + sqrt(h_t)) for the 4/3 Earth
    d = geo.radar_horizon_m(25.0, 100.0)
    assert d / 1000 == pytest.approx(4.12 * (5 + 10), rel=0.01)
    assert geo.radar_horizon_m(25.0, 2000.0) > geo.radar_horizon_m(25.0, 100.0)


def test_wrap_deg():
    assert np.allclose(geo.wrap_deg([359.0, -181.0, 180.0, 0.0]), [-1.0, 179.0, -180.0, 0.0])
