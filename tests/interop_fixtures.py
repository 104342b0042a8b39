"""Shared pieces of the interop tests: loopback listeners and track fixtures."""

from __future__ import annotations

from skytrace.interop.loopback import TcpListener, UdpListener  # noqa: F401 (re-exported for the tests)
from skytrace.model import TrackPoint


def sample_tracks(t0: float = 1_790_000_000.0) -> list[TrackPoint]:
    """Three tracks over Kyiv oblast: unknown, classified hostile (coasting at the end), manned (ADS-B)."""
    pts = []
    for k in range(10):
        t = t0 + 2.0 * k
        pts.append(TrackPoint(t=t, track="T000001", status="confirmed", lat=50.40 + 0.0005 * k, lon=30.60,
                              alt_m=300.0, ve=0.0, vn=45.0, vu=0.0, pos_sigma_m=120.0))
        pts.append(TrackPoint(t=t, track="T000002", status="coasting" if k > 7 else "confirmed", lat=50.10,
                              lon=30.90 - 0.0007 * k, alt_m=900.0, ve=-50.0, vn=0.0, vu=-1.0, pos_sigma_m=300.0,
                              cls="shahed", covariance=[float(i == j) * 400.0 for i in range(6) for j in range(6)]))
        pts.append(TrackPoint(t=t, track="T000003", status="confirmed", lat=50.30, lon=30.20 + 0.001 * k,
                              alt_m=1500.0, ve=70.0, vn=0.0, vu=0.0, pos_sigma_m=20.0, cls="manned",
                              target_id="icao:508035"))
    return pts


def cat048_blocks(plots: list[dict], sac: int = 7, sic: int = 9) -> list[bytes]:
    """Test data: one CAT048 data block per plot, built with libasterix (an encoder, not skytrace's code)."""
    import asterix.generated as gen

    C = gen.Cat_048_1_32
    out = []
    for p in plots:
        items = {"010": (("SAC", sac), ("SIC", sic)), "140": (p["tod"], "s"),
                 "020": ((("TYP", 1), 0, 0, 0, 0, None),),
                 "040": (("RHO", (p["range_m"] / 1852.0, "NM")), ("THETA", (p["az"], "°")))}
        if "h_ft" in p:
            items["110"] = (0, ("3DH", (p["h_ft"], "ft")))
        if "addr" in p:
            items["220"] = p["addr"]
        out.append(C.create([C.cv_record.create(items)]).unparse().to_bytes())
    return out
