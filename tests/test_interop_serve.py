"""`skytrace serve --cat062/--cot/--webhook`: the interoperability sinks plugged into the live service's pipeline."""

from __future__ import annotations

import socket
import time

import pytest

from skytrace.errors import SkytraceError
from skytrace.io import formats
from skytrace.service.build import add_output_sinks
from skytrace.service.core import LiveService
from skytrace.service.stages import TruthReplayStage
from skytrace.store import open_store
from skytrace.zones import read_zones


def test_live_service_streams_cat062_over_udp_before_the_store(kyiv_short):
    from skytrace.interop.asterix import decode_cat062

    truth = formats.read_truth(kyiv_short / "truth.jsonl")
    t_mid = truth[len(truth) // 2].t
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    stage = TruthReplayStage(truth, [], wall0=1000.0, t0=t_mid, speed=1.0)
    svc = LiveService(table=table, zones=read_zones(kyiv_short / "zones.geojson"), stage=stage,
                      store=open_store(None), step_s=0.25)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(120.0)  # the first block loads libasterix specs on the sender thread: seconds on a loaded machine
    sinks = add_output_sinks(svc, cat062=f"127.0.0.1:{rx.getsockname()[1]}")
    assert [type(s).__name__ for s in svc.stage.sinks[-2:]] == ["Cat062UdpSink", "_Sink"]  # the store stays last
    msgs = svc.step_once(1001.0)
    n_tracks = len(msgs[0]["track"])
    assert n_tracks > 0
    data = rx.recv(65536)
    records = decode_cat062(data)
    assert len(records) >= 1
    for s in sinks:
        s.close()
    rx.close()
    with pytest.raises(SkytraceError, match="SKYTRACE_WEBHOOK_SECRET"):
        add_output_sinks(svc, webhook="http://127.0.0.1:9/hook", webhook_secret=b"short")
    time.sleep(0.1)
