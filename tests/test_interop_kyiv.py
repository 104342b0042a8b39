"""A kyiv-night replay streamed live: CoT to a TCP listener and CAT062 over UDP, decoded back, within 1 m."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from skytrace.cli import app
from skytrace.interop.loopback import stream_and_decode
from skytrace.io import formats
from skytrace.model import TrackPoint

runner = CliRunner()


@pytest.fixture(scope="module")
def kyiv_tracks(kyiv_short, tmp_path_factory):
    out = tmp_path_factory.mktemp("kyiv-interop") / "tracks.jsonl"
    res = runner.invoke(app, ["track", "--sensors", str(kyiv_short / "sensors.json"), "--detections",
                              str(kyiv_short / "detections.jsonl"), "--out", str(out), "--every", "2"])
    assert res.exit_code == 0, res.output
    return formats.read_tracks(out)


def test_kyiv_night_tracks_streamed_as_cot_and_cat062(kyiv_tracks):
    assert kyiv_tracks
    r = stream_and_decode(kyiv_tracks)
    assert r["cot_events"] == r["points"] == r["cat062_records"], r
    assert r["cot_stats"]["failed"] == r["cat062_stats"]["failed"] == 0
    assert r["cot_max_m"] < 0.02  # 1e-7 degree in the XML
    assert r["cat062_max_m"] < 1.0, r  # I062/105 LSB 180/2^25 deg: <= 0.3 m per axis after rounding
    assert r["cat062_max_alt_m"] <= 6.25 * 0.3048 / 2 + 1e-6  # I062/130 LSB 6.25 ft


def test_kyiv_night_all_targets_streamed(kyiv_short):
    """Every simulated drone of the first 30 min (truth states every 10 s) as tracks: many at once per step."""
    truth = [p for p in formats.read_truth(kyiv_short / "truth.jsonl") if round(p.t) % 10 == 0 and p.t == round(p.t)]
    points = [TrackPoint(t=p.t, track=p.target, status="confirmed", lat=p.lat, lon=p.lon, alt_m=p.alt_m,
                         ve=p.ve, vn=p.vn, vu=p.vu, pos_sigma_m=50.0) for p in truth]
    r = stream_and_decode(points)
    assert r["cot_events"] == r["points"] == r["cat062_records"], r
    assert r["cot_max_m"] < 0.02 and r["cat062_max_m"] < 1.0, r


def test_sinks_run_inside_the_pipeline(kyiv_short, kyiv_tracks):
    """The three live sinks as the Pipeline's sinks (recorded kyiv-night tracks as the track source, the default
    alert policy on the scenario's zones): tracks reach TAK and the CAT062 listener, alerts reach the webhook."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from skytrace.batch import SensorTable
    from skytrace.interop import asterix, cot, webhook
    from skytrace.interop.loopback import TcpListener, UdpListener, wait_for_delivery
    from skytrace.pipeline import Pipeline, PipelineConfig, RecordedTracks, Sink
    from skytrace.zones import read_zones

    posts = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tcp, udp = TcpListener(), UdpListener()
    zones = read_zones(kyiv_short / "zones.geojson")
    sinks = [cot.CotSink(cot.CotSinkConfig(url=f"tcp://127.0.0.1:{tcp.port}", zones=zones, max_queue=100_000)),
             asterix.Cat062UdpSink(asterix.Cat062SinkConfig(port=udp.port, max_queue=100_000)),
             webhook.WebhookSink(webhook.WebhookConfig(f"http://127.0.0.1:{srv.server_address[1]}/",
                                                       b"a-secret-of-16-bytes-or-more"))]
    assert all(isinstance(s, Sink) for s in sinks)
    source = RecordedTracks(kyiv_tracks)
    pipe = Pipeline(SensorTable.from_sensors([]), zones, tracker=source, sinks=sinks,
                    config=PipelineConfig(step_s=2.0, alert_every_s=10.0, max_age_s=float("inf"),
                                          max_future_s=float("inf")))
    for t in source.times:
        pipe.step(float(t))
    for s in sinks:
        s.close()
    n_alert_events = sinks[2].stats["sent"]
    wait_for_delivery(tcp, len(kyiv_tracks) + n_alert_events, udp, sinks[1].stats["sent"])
    srv.shutdown()
    tcp.close()
    udp.close()
    events = cot.parse_events(tcp.received())
    tracks = [e for e in events if e["type"] != "u-d-f"]
    shapes = [e for e in events if e["type"] == "u-d-f"]
    n_cat = sum(len(asterix.decode_cat062(d)) for d in udp.datagrams)
    assert len(tracks) == n_cat == len(kyiv_tracks) and pipe.stats["sink_errors"] == 0
    assert n_alert_events > 0 and len(posts) == n_alert_events and len(shapes) == n_alert_events  # one per event
    assert all(p["type"] == "skytrace.alert" for p in posts)
