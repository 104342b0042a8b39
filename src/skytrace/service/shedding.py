"""Load shedding between ingest and the tracker: which reports to drop from tracking when too many wait.

The queue of reports waiting for the next pipeline step is bounded (``[service] max_queued_reports``). When it
overflows, reports are thinned in order of value, least valuable first:

1. **Acoustic bearings from the busiest nodes.** A dense acoustic cluster reports the same drone many times per
   second from many nodes; its bearings are redundant with each other. The budget is shared by water-filling: every
   node keeps up to the same quota of its newest reports, so quiet nodes (the only ears in their area) keep all of
   theirs and only the chattiest nodes lose reports.
2. **Position sightings** (citizen reports), the same way (the busiest reporters lose their oldest first), only
   if acoustic thinning was not enough.
3. **Never** radar, optical or other kinds with range or elevation: one radar plot can carry a track on its own.

Alerts are never shed: they are outputs of the pipeline, not queued reports. Shed reports are not lost: with the
durable inbox they were stored before they were acknowledged; they only skip tracking. Everything shed is counted
per kind in the status (``shed``). The policy is the "drop the least valuable work first" rule of overload control
(e.g. M. Welsh, D. Culler, "Adaptive overload control for busy internet servers", USITS 2003).
"""

from __future__ import annotations

import numpy as np

from skytrace.batch import SensorTable
from skytrace.model import Detection

SHEDDABLE_FIRST = "acoustic"
SHEDDABLE_SECOND = "position"


def water_fill_quota(counts: np.ndarray, budget: int) -> int:
    """The largest per-node quota ``q`` with ``sum(min(counts, q)) <= budget`` (counts > 0)."""
    if budget <= 0 or counts.size == 0:
        return 0
    c = np.sort(counts)
    # with quota c[i], nodes 0..i keep all of theirs, the rest keep c[i] each
    kept_at = np.cumsum(c) + c * (c.size - 1 - np.arange(c.size))
    i = int(np.searchsorted(kept_at, budget, side="right"))
    if i >= c.size:
        return int(c[-1])
    done = int(np.cumsum(c)[i - 1]) if i > 0 else 0
    return max(0, (budget - done) // (c.size - i))


def thin_reports(dets: list[Detection], table: SensorTable, keep_n: int) -> tuple[list[Detection], dict[str, int]]:
    """At most ``keep_n`` reports (or all the never-shed ones if they alone exceed it) and the counts shed by kind.

    Keeps arrival order among the kept reports.
    """
    kept, _, shed = split_reports(dets, table, keep_n)
    return kept, shed


def split_reports(dets: list[Detection], table: SensorTable, keep_n: int
                  ) -> tuple[list[Detection], list[Detection], dict[str, int]]:
    """:func:`thin_reports` that also returns the shed reports (in arrival order): a service without a durable
    inbox still stores them (shed from tracking, never lost)."""
    if len(dets) <= keep_n:
        return dets, [], {}
    kinds = [table.records[table.index[d.sensor]].kind for d in dets]
    idx_first = [i for i, k in enumerate(kinds) if k == SHEDDABLE_FIRST]
    idx_second = [i for i, k in enumerate(kinds) if k == SHEDDABLE_SECOND]
    n_protected = len(dets) - len(idx_first) - len(idx_second)
    keep = np.ones(len(dets), dtype=bool)
    shed: dict[str, int] = {}
    # 1. acoustic: water-filling over nodes, each keeps its newest `quota`
    _thin_tier(dets, idx_first, keep_n - n_protected - len(idx_second), keep, shed, SHEDDABLE_FIRST)
    # 2. sightings, the same way, if still over
    _thin_tier(dets, idx_second, keep_n - int(np.count_nonzero(keep)) + len(idx_second), keep, shed,
               SHEDDABLE_SECOND)
    flags = keep.tolist()
    return ([d for d, k in zip(dets, flags, strict=True) if k], [d for d, k in zip(dets, flags, strict=True) if not k],
            shed)


def _thin_tier(dets: list[Detection], idx: list[int], budget: int, keep: np.ndarray, shed: dict[str, int],
               kind: str) -> None:
    """Keep at most ``budget`` of the reports ``idx`` (water-filling over sensors, newest kept); mark the rest."""
    if not idx or budget >= len(idx):
        return
    sensors = np.array([dets[i].sensor for i in idx])
    names, inv, counts = np.unique(sensors, return_inverse=True, return_counts=True)
    quota = water_fill_quota(counts, max(0, budget))
    seen = np.zeros(names.size, dtype=np.int64)
    for j in range(len(idx) - 1, -1, -1):  # newest last in arrival order: walk backwards
        s = inv[j]
        if seen[s] >= quota:
            keep[idx[j]] = False
        seen[s] += 1
    shed[kind] = int(len(idx) - np.count_nonzero(keep[idx]))
