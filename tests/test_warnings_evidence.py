"""Alerts from all the evidence: single-radar drones, lone nodes (Possible, never more), lost tracks widen and
expire, certainty narrows by CAP Update; the AlertPolicy interface and registry."""

import numpy as np
import pytest
from lxml import etree

from skytrace.alerting import (
    AlertEngine,
    EvidenceAlertConfig,
    EvidencePolicy,
    ZoneAlertConfig,
    config_from_dict,
    create_policy,
    policy_names,
)
from skytrace.alerting.cap import CapWriter
from skytrace.batch import DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.model import Sensor
from skytrace.zones_grid import default_zones

M_PER_DEG = 111_320.0
T0 = 1_795_000_000.0
# north-east of Kyiv, on the approach from the launch areas in the north-east
NODE_LAT, NODE_LON = 50.70, 31.20


@pytest.fixture(scope="module")
def zones():
    return default_zones()


def _sensors(*extra: Sensor) -> SensorTable:
    return SensorTable.from_sensors([
        Sensor(id="ac-1", kind="acoustic", lat=NODE_LAT, lon=NODE_LON, alt_m=150.0, bearing_sigma_deg=2.5,
               max_range_m=3000.0),
        Sensor(id="radar-1", kind="radar", lat=NODE_LAT, lon=NODE_LON - 0.3, alt_m=170.0, bearing_sigma_deg=0.8,
               elevation_sigma_deg=1.0, range_sigma_m=30.0, max_range_m=40_000.0),
        *extra])


def _dets(table: SensorTable, rows: list[dict]) -> DetectionBatch:
    b = DetectionBatch.empty(len(rows))
    for i, r in enumerate(rows):
        b.sensor[i] = table.index[r["sensor"]]
        for k, v in r.items():
            if k != "sensor":
                getattr(b, k)[i] = v
    return b


def _empty(t: float) -> TrackSnapshot:
    z = np.zeros(0)
    return TrackSnapshot(t, [], [], z, z, z, z, z, z, z)


def _track(t, lat, lon, ve, vn, name="T1", status="confirmed", sigma=150.0) -> TrackSnapshot:
    return TrackSnapshot(t, [name], [status], np.array([lat]), np.array([lon]), np.array([500.0]), np.array([ve]),
                         np.array([vn]), np.array([0.0]), np.array([sigma]))


def _cell_at(zones, lat, lon) -> str:
    pi, zi = zones.containing(np.array([lat]), np.array([lon]))
    return next(zones.zones[int(z)].id for z in zi if zones.zones[int(z)].parent)


def test_policy_registry_and_config():
    assert {"evidence", "zone"} <= set(policy_names())
    z = default_zones(cell_km=60.0)
    assert isinstance(create_policy(None, z, None), EvidencePolicy)
    assert isinstance(create_policy("zone", z, None), AlertEngine)
    assert isinstance(create_policy(None, z, None, ZoneAlertConfig()), AlertEngine)
    with pytest.raises(SkytraceError, match="unknown alert policy"):
        create_policy("nope", z)
    with pytest.raises(SkytraceError, match="takes a ZoneAlertConfig"):
        create_policy("zone", z, None, EvidenceAlertConfig())
    cfg = config_from_dict("evidence", {"lead_target_s": 600, "hyp_p_raise": 0.2})
    assert cfg.lead_target_s == 600.0 and cfg.hyp_p_raise == 0.2
    with pytest.raises(SkytraceError, match="unknown key"):
        config_from_dict("evidence", {"lead_s": 1})
    with pytest.raises(SkytraceError, match="must be a float"):
        config_from_dict("evidence", {"lead_target_s": "ten"})


def test_a_drone_seen_by_one_radar_only_is_warned_for(zones):
    table = _sensors()
    pol = EvidencePolicy(zones, table)
    # a drone 20 km east of the radar flying west; no track (one sensor never confirms one alone)
    rng_m, brg = 20_000.0, 90.0
    lat = table.lat[1]
    events = []
    for k in range(6):
        t = T0 + 10.0 * k
        det = _dets(table, [{"sensor": "radar-1", "t": t - 1.0, "bearing_deg": brg, "elevation_deg": 1.0,
                             "range_m": rng_m - 450.0 * k}])
        events += pol.update(t, _empty(t), det)
    raised = {e.zone: e for e in events if e.kind == "raise"}
    here = _cell_at(zones, lat, table.lon[1] + (rng_m - 450.0 * 5) / (M_PER_DEG * np.cos(np.radians(lat))))
    assert here in raised
    assert raised[here].certainty == "Likely"  # a trusted sensor alone: Likely (not Observed: no track)
    # ... while the same reports from an untrusted kind give only Possible
    pol2 = EvidencePolicy(zones, table, EvidenceAlertConfig(trusted_kinds=""))
    ev2 = []
    for k in range(6):
        t = T0 + 10.0 * k
        det = _dets(table, [{"sensor": "radar-1", "t": t - 1.0, "bearing_deg": brg, "elevation_deg": 1.0,
                             "range_m": rng_m - 450.0 * k}])
        ev2 += pol2.update(t, _empty(t), det)
    assert ev2 and {e.certainty for e in ev2} == {"Possible"}


def test_single_false_alarms_raise_nothing(zones):
    table = _sensors()
    pol = EvidencePolicy(zones, table)
    events = []
    for k, brg in enumerate((10.0, 130.0, 250.0, 40.0)):  # isolated reports, one a minute, random bearings
        t = T0 + 60.0 * k
        events += pol.update(t, _empty(t), _dets(table, [{"sensor": "ac-1", "t": t - 1.0, "bearing_deg": brg}]))
    assert events == []


def test_a_lone_node_alerts_the_sector_cells_as_possible_and_no_more(zones):
    table = _sensors()
    pol = EvidencePolicy(zones, table)
    t = T0
    # an engine heard east of the node, a few reports a step (one report alone could be a false alarm)
    det = _dets(table, [{"sensor": "ac-1", "t": t - dt, "bearing_deg": 90.0 + dt / 4, "snr_db": 10.0}
                        for dt in (1.0, 4.0, 7.0)])
    events = pol.update(t, _empty(t), det)
    raised = {e.zone for e in events if e.kind == "raise"}
    # the sector: 0-3 km east of the node
    sector = {_cell_at(zones, NODE_LAT, NODE_LON + d / (M_PER_DEG * np.cos(np.radians(NODE_LAT))))
              for d in (500.0, 2500.0)}
    assert sector <= raised
    assert {e.certainty for e in events} == {"Possible"}
    # the corridor ahead (toward Kyiv, south-west) may be alerted, but not where the drone came from (20 km
    # north-east of the node), nor far away
    behind = _cell_at(zones, NODE_LAT + 14_000 / M_PER_DEG,
                      NODE_LON + 14_000 / (M_PER_DEG * np.cos(np.radians(NODE_LAT))))
    assert behind not in raised
    assert _cell_at(zones, 49.84, 24.03) not in raised  # Lviv
    assert len(raised) < 40
    assert all(pol.certainty_of(z) == "Possible" for z in raised)


def test_a_spoofed_single_node_cannot_raise_beyond_possible_and_its_alerts_expire(zones, tmp_path):
    table = _sensors()
    cfg = EvidenceAlertConfig()
    pol = EvidencePolicy(zones, table, cfg)
    events = []
    t = T0
    rng = np.random.default_rng(1)
    # 30 min of a node reporting a fake engine that circles it slowly (a spoofer or a faulty node)
    for k in range(180):
        t = T0 + 10.0 * k
        rows = [{"sensor": "ac-1", "t": t - dt, "bearing_deg": float(np.mod(2.0 * k + rng.normal(0, 2), 360)),
                 "snr_db": 20.0} for dt in (1.0, 4.0, 7.0)]
        events += pol.update(t, _empty(t), _dets(table, rows))
    assert any(e.kind == "raise" for e in events)
    assert {e.certainty for e in events if e.kind != "clear"} == {"Possible"}
    # CAP says so too
    xml = CapWriter(zones).message(next(e for e in events if e.kind == "raise"))
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert etree.fromstring(xml).find(".//cap:certainty", ns).text == "Possible"
    # the node falls silent: everything clears once its memory has run out
    t_stop = t
    while t < t_stop + cfg.report_memory_s + cfg.clear_after_s + 60:
        t += 10.0
        events += pol.update(t, _empty(t), None)
    assert pol.active() == []
    assert sum(e.kind == "raise" for e in events) == sum(e.kind == "clear" for e in events)


def test_a_lost_tracks_alert_widens_and_then_expires(zones):
    cfg = EvidenceAlertConfig(lost_expire_s=900.0)  # with the oblast stage (off by default)
    pol = EvidencePolicy(zones, _sensors(), cfg)
    lat, lon = 50.9, 31.6
    ve, vn = -40.0, -25.0  # south-west, toward Kyiv
    t = T0
    for k in range(12):  # two minutes of a confirmed track
        t = T0 + 10.0 * k
        dt = 10.0 * k
        pol.update(t, _track(t, lat + vn * dt / M_PER_DEG, lon + ve * dt / (M_PER_DEG * np.cos(np.radians(lat))),
                             ve, vn), None)
    t_lost = t
    n_leaf, parents, certs = {}, {}, {}
    while t < t_lost + cfg.lost_expire_s + cfg.clear_after_s + 60:
        t += 10.0
        pol.update(t, _empty(t), None)
        act = pol.active()
        age = t - t_lost
        n_leaf[age] = sum(1 for a in act if zones[a.zone].parent)
        parents[age] = {a.zone for a in act if not zones[a.zone].parent}
        certs[age] = {pol.certainty_of(a.zone) for a in act}
    # still warned right after the loss (the threat does not vanish)
    assert n_leaf[10.0] > 0
    # widens: the raion-sized stage alerts more cells than the fan did, then the whole oblast is alerted
    fine = max(v for a, v in n_leaf.items() if a < cfg.lost_fine_s - 30)
    raion = max(v for a, v in n_leaf.items() if cfg.lost_fine_s + 30 < a < cfg.lost_raion_s)
    assert raion > fine
    assert any(parents[a] for a in parents if cfg.lost_raion_s + 30 < a < cfg.lost_expire_s)
    assert "Likely" in certs[10.0] or "Observed" in certs[10.0]
    assert certs[cfg.lost_raion_s + 60] <= {"Possible", "Likely"}
    # ... and expires: nothing in force once the time is up
    assert pol.active() == []


def test_alerts_narrow_by_update_when_a_track_confirms_a_lone_report(zones):
    table = _sensors()
    pol = EvidencePolicy(zones, table)
    t = T0
    det = _dets(table, [{"sensor": "ac-1", "t": t - dt, "bearing_deg": 90.0, "snr_db": 10.0} for dt in (1, 4, 7)])
    ev = pol.update(t, _empty(t), det)
    cell = _cell_at(zones, NODE_LAT, NODE_LON + 1500 / (M_PER_DEG * np.cos(np.radians(NODE_LAT))))
    assert pol.certainty_of(cell) == "Possible"
    t += 10.0
    ev = pol.update(t, _track(t, NODE_LAT, NODE_LON + 1500 / (M_PER_DEG * np.cos(np.radians(NODE_LAT))),
                              -40.0, -20.0), None)
    upd = [e for e in ev if e.zone == cell]
    assert upd and upd[0].kind == "update" and upd[0].certainty == "Observed"
    assert pol.certainty_of(cell) == "Observed"


def _grid_of_nodes(spacing_m: float = 2500.0, half_km: float = 45.0) -> list[Sensor]:
    """Acoustic nodes every ``spacing_m`` around the test node (dense coverage, as around Kyiv)."""
    out = []
    n = int(half_km * 1000 / spacing_m)
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            if i == 0 and j == 0:
                continue
            out.append(Sensor(id=f"g-{i:+03d}{j:+03d}", kind="acoustic", lat=NODE_LAT + i * spacing_m / M_PER_DEG,
                              lon=NODE_LON + j * spacing_m / (M_PER_DEG * np.cos(np.radians(NODE_LAT))),
                              alt_m=150.0, bearing_sigma_deg=2.5, max_range_m=3000.0))
    return out


def _heard_then_silence(zones, negative_info: bool, alive: bool = True) -> tuple[EvidencePolicy, float, list]:
    """A lone node hears an engine, then 7 minutes of silence all around; ``alive``: every node sends a heartbeat
    every 120 s (known alive), else the nodes around are down (no heartbeat, no report)."""
    table = _sensors(*_grid_of_nodes())
    cfg = EvidenceAlertConfig(negative_info=negative_info)
    pol = EvidencePolicy(zones, table, cfg)
    every_row = np.arange(len(table))
    t = T0
    events = []

    def beat(t_now: float) -> None:
        if alive and int(t_now - T0) % 120 == 0:
            pol.heartbeat(every_row, np.full(every_row.size, t_now))

    for k in range(7):  # a minute of quiet, then the node hears an engine east of it for half a minute
        t = T0 + 10.0 * k
        beat(t)
        rows = [{"sensor": "ac-1", "t": t - dt, "bearing_deg": 90.0, "snr_db": 10.0} for dt in (1.0, 4.0, 7.0)]
        events += pol.update(t, _empty(t), _dets(table, rows if k >= 4 else []))
    t_heard = t
    assert pol.active(), "the lone node's sector is alerted"
    while t < t_heard + 420.0:  # every node (the dense coverage all around) hears nothing for 7 minutes
        t += 10.0
        beat(t)
        events += pol.update(t, _empty(t), _dets(table, []))
    return pol, t_heard, events


def test_silent_nodes_exclude_a_lone_reports_drone_and_its_alerts_expire_early(zones):
    # with negative information: nodes within audible range of every place the drone could be heard nothing,
    # so no plausible path remains: the hypothesis dies and its cells clear long before the report memory
    pol, t_heard, events = _heard_then_silence(zones, negative_info=True)
    assert pol.hyps == {}
    assert pol.active() == []
    assert sum(e.kind == "raise" for e in events) == sum(e.kind == "clear" for e in events) > 0
    # without it, the same silence leaves the hypothesis flying (and alerting) for its whole memory
    pol2, _, _ = _heard_then_silence(zones, negative_info=False)
    assert pol2.hyps and pol2.active()


def test_only_nodes_known_alive_count_as_negative_information(zones):
    # the same silence from nodes that sent no heartbeat (down, jammed, cut off) says nothing: the lone node's
    # hypothesis keeps flying and alerting
    pol, _, _ = _heard_then_silence(zones, negative_info=True, alive=False)
    assert pol.hyps and pol.active()


def test_a_node_whose_heartbeats_stopped_no_longer_excludes():
    from skytrace.alerting.negative import SilenceMap

    table = SensorTable.from_sensors([Sensor(id="ac-1", kind="acoustic", lat=NODE_LAT, lon=NODE_LON, alt_m=150.0,
                                             bearing_sigma_deg=2.5, max_range_m=3000.0)])
    sm = SilenceMap(table, np.array([3000.0]), np.array([2.5]), silence_s=60.0, alive_s=300.0)
    sm.observe(T0, _dets(table, []))
    lat = np.array([NODE_LAT + 1000.0 / M_PER_DEG])  # 1 km north of the node: well within its audible range
    lon = np.array([NODE_LON])
    assert not sm.excluded(T0 + 120.0, lat, lon).any(), "never heard from: not known alive"
    sm.heartbeat(np.array([0]), np.array([T0 + 100.0]))
    assert sm.excluded(T0 + 120.0, lat, lon).all(), "alive and silent toward the point"
    assert not sm.excluded(T0 + 500.0, lat, lon).any(), "last heartbeat 400 s old: taken as down"
    sm.observe(T0 + 560.0, _dets(table, [{"sensor": "ac-1", "t": T0 + 560.0, "bearing_deg": 270.0}]))
    assert sm.excluded(T0 + 570.0, lat, lon).all(), "a report (toward elsewhere) proves it alive again"


def test_weaker_evidence_does_not_resend_the_alert(zones):
    pol = EvidencePolicy(zones, _sensors())
    lat, lon, ve, vn = 50.9, 31.6, -40.0, -25.0
    events = []
    t = T0
    for k in range(40):  # a confirmed track, then (after a minute) only coasting: Observed -> Likely
        t = T0 + 10.0 * k
        dt = 10.0 * k
        events += pol.update(t, _track(t, lat + vn * dt / M_PER_DEG,
                                       lon + ve * dt / (M_PER_DEG * np.cos(np.radians(lat))), ve, vn,
                                       status="confirmed" if k < 6 else "coasting"), None)
    raised = {e.zone for e in events if e.kind == "raise"}
    held = [z for z in raised if pol.certainty_of(z) is not None and any(
        e.zone == z and e.kind == "raise" and e.certainty == "Observed" for e in events)]
    assert held, "cells raised by the confirmed track are still under alert"
    # the state follows the evidence (Likely after clear_after_s weaker) but no CAP Update was sent for it: the
    # only Updates are for the threat becoming imminent
    assert any(pol.certainty_of(z) == "Likely" for z in held)
    assert all(e.level == "imminent" for e in events if e.kind == "update" and e.certainty != "Observed")


def _flicker(zones, cfg: EvidenceAlertConfig) -> list:
    """Evidence for one cell that comes and goes: 60 s on, 150 s off, six times (a hypothesis re-anchored by a
    node that keeps hearing, then silence); returns the cell's finished alert periods."""
    from skytrace.alerting.evidence import _Evidence

    pol = EvidencePolicy(zones, _sensors(), cfg)
    zi = next(i for i, z in enumerate(zones.zones) if z.parent)
    t = T0
    for _cycle in range(6):
        for on_s in (True,) * 6 + (False,) * 15:
            ev = _Evidence(len(zones), cfg.p_keep / cfg.p_raise)
            if on_s:
                ev.score[zi], ev.cert[zi] = 2.0, 2
            pol._decide(t, ev, {})
            t += 10.0
    pol.close(t)
    return [p for p in pol.periods if p.zone == zones.zones[zi].id]


def test_a_flickering_zone_holds_longer_instead_of_re_raising(zones):
    plain = _flicker(zones, EvidenceAlertConfig())
    held = _flicker(zones, EvidenceAlertConfig(rearm_s=600.0))
    assert len(plain) == 6, "without the re-arm rule every burst of evidence is its own alert period"
    assert len(held) < len(plain)
    # the held alert covers every moment the plain one did (no miss), only longer
    for p in plain:
        assert any(h.start <= p.start and h.end >= p.end for h in held)
