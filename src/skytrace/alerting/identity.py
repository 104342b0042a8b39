"""Identity of cooperative targets in the pipeline: tag tracks, cross-check the claim, keep believed ones quiet.

An ADS-B aircraft or a Remote ID drone reports as its own ``position`` sensor (:mod:`skytrace.io.identity`); a
track updated by such a sensor *claims* that identity. Every step :meth:`IdentityCheck.annotate` sets the
snapshot's ``cls``, ``target_id`` and ``identity_flag`` columns, and :meth:`IdentityCheck.alert_view` gives the
alert policy the picture without the believed, never-alerting targets (``manned``; ``cooperative-uav`` unless
the operator asks) and without their reports (else their position reports would alert as lone trusted reports).

A transmitter can lie: a one-way attack drone carrying a transponder that claims to be an airliner would
otherwise silence every alert along its path. The claim is **not believed** (``identity_flag`` says why; the track
then alerts like any other, and its reports count as evidence) when

- **the position jumps**: two reports of one transmitter further apart than ``max_speed_mps`` of its class allows
  over their time difference, plus three sigmas of both positions and ``jump_margin_m``
  (a spoofer replaying or inventing positions, or two transmitters sharing one address);
- **a drone engine is heard there and no radar sees an aircraft there**: within the last ``window_s``, at least
  ``min_nodes`` acoustic nodes reported a Shahed-like engine (classes ``engine_classes``) on a bearing passing
  within ``bearing_gate_m`` (+ three bearing sigmas) of the track's position, within ``audible_range_m``, and no
  radar plot lies within ``radar_gate_m`` of it. Without radar coverage the acoustic evidence alone decides
  (conservative: a wrong flag costs a needless alert, a wrong belief a missed drone).

A flag is kept for the life of the service (``flagged``): a transmitter caught lying once is not believed again.
Reference for the threat: ADS-B's lack of authentication (Schäfer, Lenders, Martinovic, "Experimental analysis of
attacks on next generation air traffic communication", ACNS 2013); Remote ID is no better authenticated in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skytrace.batch import ACOUSTIC, DETECTION_CLASS_CODE, POSITION, RADAR, DetectionBatch, SensorTable, TrackSnapshot
from skytrace.errors import SkytraceError
from skytrace.io.identity import COOPERATIVE_UAV, MANNED, IdentityMap, may_alert

M_PER_DEG = 111_320.0
JUMP = "position jump"
ENGINE = "drone engine heard, no radar aircraft"


@dataclass
class IdentityCheckConfig:
    """Cross-check of the identities ADS-B and Remote ID transmitters claim (docs/interop.md)."""

    max_speed_manned_mps: float = 400.0  # m/s; faster than any airliner's ground speed (jet-stream tail wind included)
    max_speed_uav_mps: float = 120.0  # m/s; faster than any civil drone that broadcasts Remote ID
    jump_margin_m: float = 300.0  # m; allowed on top of speed x time and three sigmas of both positions
    window_s: float = 30.0  # s of acoustic and radar reports kept for the comparison
    audible_range_m: float = 10_000.0  # m; a node farther from the claimed position cannot have heard it
    bearing_gate_m: float = 1500.0  # m; lateral miss allowed on top of 3 bearing sigmas (sound delay, fusion)
    min_nodes: int = 2  # distinct nodes hearing a drone engine at the claimed position needed to contradict it
    radar_gate_m: float = 2000.0  # m; a radar plot this close to the claimed position confirms an aircraft there
    engine_classes: str = "uav-engine,shahed"  # comma-separated report classes that are a one-way attack drone's engine
    alert_cooperative: bool = False  # identified Remote ID drones alert too (docs/interop.md)


class IdentityCheck:
    """Annotates track snapshots with cooperative identities and decides which claims to believe (module doc)."""

    def __init__(self, sensors: SensorTable, identities: IdentityMap, config: IdentityCheckConfig | None = None):
        self.sensors = sensors
        self.identities = identities
        self.cfg = config or IdentityCheckConfig()
        self.flagged: dict[str, tuple[str, float]] = {}  # sensor id -> (reason, time first flagged)
        self.stats = {"cooperative_tracks": 0, "flagged_identities": 0}
        n = len(sensors)
        self._coop = np.zeros(n, bool)
        self._version = -1
        self._owner: list[str | None] = [None] * n  # sensor id whose last position the row's state holds
        self._last = np.full((n, 4), np.nan)  # t, lat, lon, sigma of each cooperative sensor's latest report
        names = [c.strip() for c in self.cfg.engine_classes.split(",") if c.strip()]
        if unknown := [c for c in names if c not in DETECTION_CLASS_CODE]:
            raise SkytraceError(f"[identity] engine_classes: unknown class {unknown[0]!r}; one of "
                                f"{', '.join(DETECTION_CLASS_CODE)}")
        self._engine_codes = np.array([DETECTION_CLASS_CODE[c] for c in names], dtype=np.int8)
        self._heard = np.zeros((0, 4))  # t, node row, bearing deg, bearing sigma deg
        self._plots = np.zeros((0, 3))  # t, lat, lon

    # ---------------------------------------------------------------------------------------------- sensors
    def _coop_rows(self) -> np.ndarray:
        if self._version != self.identities.version or len(self._coop) != len(self.sensors):
            ids = self.sensors.ids
            self._coop = np.array([ids[i] in self.identities.by_sensor for i in range(len(ids))], dtype=bool)
            self._version = self.identities.version
        return self._coop

    def _max_speed(self, sensor_id: str) -> float:
        ident = self.identities.by_sensor.get(sensor_id)
        return self.cfg.max_speed_uav_mps if ident is not None and ident.cls == COOPERATIVE_UAV \
            else self.cfg.max_speed_manned_mps

    def _flag(self, sensor_id: str, reason: str, t: float) -> None:
        if sensor_id not in self.flagged:
            self.flagged[sensor_id] = (reason, t)
            self.stats["flagged_identities"] += 1

    # ---------------------------------------------------------------------------------------------- evidence
    def _check_jumps(self, det: DetectionBatch, coop: np.ndarray) -> None:
        rows = det.sensor.astype(np.int64)
        sel = np.flatnonzero(coop[rows] & (self.sensors.kind[rows] == POSITION) & np.isfinite(det.lat))
        if sel.size == 0:
            return
        sel = sel[np.lexsort((det.t[sel], rows[sel]))]
        ids = self.sensors.ids
        for i in sel:  # cooperative reports are few (one per transmitter and second)
            r = int(rows[i])
            sid = ids[r]
            if self._owner[r] != sid:
                self._owner[r] = sid
                self._last[r] = np.nan
            t, lat, lon = float(det.t[i]), float(det.lat[i]), float(det.lon[i])
            sig = float(det.pos_sigma_m[i]) if np.isfinite(det.pos_sigma_m[i]) else 30.0
            t0, lat0, lon0, sig0 = self._last[r]
            if np.isfinite(t0):
                d = np.hypot((lat - lat0) * M_PER_DEG, (lon - lon0) * M_PER_DEG * np.cos(np.radians(lat)))
                allowed = self._max_speed(sid) * abs(t - t0) + 3.0 * (sig + sig0) + self.cfg.jump_margin_m
                if d > allowed:
                    self._flag(sid, JUMP, t)
            if not np.isfinite(t0) or t >= t0:
                self._last[r] = (t, lat, lon, sig)

    def _remember(self, t: float, det: DetectionBatch) -> None:
        """Keep the last ``window_s`` of drone-engine bearings and radar plots (as positions)."""
        rows = det.sensor.astype(np.int64)
        kind = self.sensors.kind[rows] if len(det) else np.zeros(0, np.int8)
        eng = (kind == ACOUSTIC) & np.isin(det.cls_code, self._engine_codes) & np.isfinite(det.bearing_deg)
        if eng.any():
            sig = np.where(np.isfinite(det.bearing_sigma_deg[eng]), det.bearing_sigma_deg[eng],
                           np.nan_to_num(self.sensors.bearing_sigma_deg[rows[eng]], nan=5.0))
            self._heard = np.vstack([self._heard, np.column_stack([det.t[eng], rows[eng], det.bearing_deg[eng], sig])])
        rad = (kind == RADAR) & np.isfinite(det.range_m) & np.isfinite(det.bearing_deg)
        if rad.any():
            rr = rows[rad]
            slat, slon = self.sensors.lat[rr], self.sensors.lon[rr]
            gr = det.range_m[rad] * np.cos(np.radians(np.nan_to_num(det.elevation_deg[rad])))
            b = np.radians(det.bearing_deg[rad])
            plat = slat + gr * np.cos(b) / M_PER_DEG
            plon = slon + gr * np.sin(b) / (M_PER_DEG * np.cos(np.radians(slat)))
            self._plots = np.vstack([self._plots, np.column_stack([det.t[rad], plat, plon])])
        t_min = t - self.cfg.window_s
        self._heard = self._heard[self._heard[:, 0] >= t_min]
        self._plots = self._plots[self._plots[:, 0] >= t_min]

    def _engine_without_radar(self, lat: float, lon: float) -> bool:
        cfg = self.cfg
        if len(self._heard):
            rows = self._heard[:, 1].astype(np.int64)
            coslat = np.cos(np.radians(lat))
            dx = (lon - self.sensors.lon[rows]) * M_PER_DEG * coslat
            dy = (lat - self.sensors.lat[rows]) * M_PER_DEG
            dist = np.hypot(dx, dy)
            diff = np.radians((self._heard[:, 2] - np.degrees(np.arctan2(dx, dy)) + 180.0) % 360.0 - 180.0)
            lateral = np.where(np.abs(diff) < np.pi / 2, dist * np.abs(np.sin(diff)), dist)
            hit = (dist <= cfg.audible_range_m) & (
                lateral <= cfg.bearing_gate_m + 3.0 * np.radians(self._heard[:, 3]) * dist)
            if np.unique(rows[hit]).size < cfg.min_nodes:
                return False
        else:
            return False
        if len(self._plots):
            d = np.hypot((self._plots[:, 1] - lat) * M_PER_DEG,
                         (self._plots[:, 2] - lon) * M_PER_DEG * np.cos(np.radians(lat)))
            if (d <= cfg.radar_gate_m).any():
                return False
        return True

    # ---------------------------------------------------------------------------------------------- per step
    def annotate(self, t: float, tracks: TrackSnapshot, det: DetectionBatch | None) -> TrackSnapshot:
        """Set ``cls``, ``target_id`` and ``identity_flag`` of ``tracks`` (in place; returned for chaining)."""
        coop = self._coop_rows()
        if det is not None and len(det):
            self._check_jumps(det, coop)
            self._remember(t, det)
        n = len(tracks)
        cls: list[str | None] = [None] * n
        tid: list[str | None] = [None] * n
        flag: list[str | None] = [None] * n
        if n and coop.any():
            rows = tracks.sensor_rows if tracks.sensor_names is self.sensors.ids else None
            if rows is not None and len(rows) == n:  # tracker rows: visit only tracks with a cooperative sensor
                candidates = np.flatnonzero((coop[np.maximum(rows, 0)] & (rows >= 0)).any(axis=1))
            else:
                candidates = np.arange(n)
            for i in candidates:
                sid = self._claim(tracks, int(i), coop)
                if sid is None:
                    continue
                ident = self.identities.by_sensor[sid]
                cls[i], tid[i] = ident.cls, ident.target_id
                if sid not in self.flagged and self._engine_without_radar(float(tracks.lat[i]),
                                                                           float(tracks.lon[i])):
                    self._flag(sid, ENGINE, t)
                if sid in self.flagged:
                    flag[i] = self.flagged[sid][0]
        self.stats["cooperative_tracks"] = sum(c is not None for c in cls)
        tracks.cls, tracks.target_id, tracks.identity_flag = cls, tid, flag
        return tracks

    def _claim(self, tracks: TrackSnapshot, i: int, coop: np.ndarray) -> str | None:
        """The cooperative sensor (id) among a track's contributing sensors, if any."""
        if tracks.sensor_rows is not None and tracks.sensor_names is self.sensors.ids:
            for r in tracks.sensor_rows[i]:
                if r >= 0 and coop[r]:
                    return self.sensors.ids[int(r)]
            return None
        for s in tracks.sensors_of(i) or ():
            if s in self.identities.by_sensor:
                return s
        return None

    def believed_quiet(self, tracks: TrackSnapshot) -> np.ndarray:
        """Per track: a believed identity whose class must not alert (manned; cooperative UAV unless asked)."""
        if tracks.cls is None or tracks.identity_flag is None:
            return np.zeros(len(tracks), bool)
        return np.array([c is not None and f is None and not may_alert(c, self.cfg.alert_cooperative)
                         for c, f in zip(tracks.cls, tracks.identity_flag, strict=True)], dtype=bool)

    def alert_view(self, tracks: TrackSnapshot, det: DetectionBatch | None
                   ) -> tuple[TrackSnapshot, DetectionBatch | None]:
        """What the alert policy sees: no believed quiet tracks, no reports of believed quiet transmitters."""
        quiet = self.believed_quiet(tracks)
        out_tracks = tracks.take(np.flatnonzero(~quiet)) if quiet.any() else tracks
        if det is None or not len(det):
            return out_tracks, det
        coop = self._coop_rows()
        rows = det.sensor.astype(np.int64)
        drop = coop[rows].copy()
        if drop.any():
            ids = self.sensors.ids
            for r in np.unique(rows[drop]):
                sid = ids[int(r)]
                ident = self.identities.by_sensor.get(sid)
                if sid in self.flagged or ident is None or may_alert(ident.cls, self.cfg.alert_cooperative):
                    drop[rows == r] = False
        return out_tracks, (det.take(~drop) if drop.any() else det)


__all__ = ["ENGINE", "JUMP", "MANNED", "IdentityCheck", "IdentityCheckConfig"]
