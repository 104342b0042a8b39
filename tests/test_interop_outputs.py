"""Outputs for everyone else: GeoJSON, KML (read back by fastkml), the signed webhook, the Atom index of CAP."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from interop_fixtures import sample_tracks
from skytrace.alerting.engine import AlertEvent
from skytrace.cli import app
from skytrace.errors import SkytraceError
from skytrace.interop import atom, webhook
from skytrace.io import formats
from skytrace.model import Alert
from skytrace.pipeline import StepResult

runner = CliRunner()
SECRET = b"0123456789abcdef-test-secret"


@pytest.fixture
def run_dir(tmp_path):
    from skytrace.zones import builtin_oblasts

    formats.write_jsonl(tmp_path / "tracks.jsonl", sample_tracks())
    zones = builtin_oblasts()
    zones.write(tmp_path / "zones.geojson")
    formats.write_jsonl(tmp_path / "alerts.jsonl", [
        Alert(zone=zones.ids[0], start=1_790_000_002.0, end=1_790_000_600.0, level="warning", tracks=["T000002"]),
        Alert(zone=zones.ids[0], start=1_790_001_000.0, end=None, level="warning", tracks=["T000001"])])
    return tmp_path


def _export(run_dir, fmt: str):
    out = run_dir / f"out.{fmt}"
    res = runner.invoke(app, ["export", "--tracks", str(run_dir / "tracks.jsonl"), "--format", fmt,
                              "--zones", str(run_dir / "zones.geojson"), "--alerts", str(run_dir / "alerts.jsonl"),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_geojson_export(run_dir):
    import shapely.geometry

    out = _export(run_dir, "geojson")
    doc = json.loads(out.read_text())
    tracks = [f for f in doc["features"] if f["properties"]["kind"] == "track"]
    zones = [f for f in doc["features"] if f["properties"]["kind"] == "zone"]
    assert len(tracks) == 3 and len(zones) == 1 and len(zones[0]["properties"]["alerts"]) == 2
    for f in doc["features"]:
        assert shapely.geometry.shape(f["geometry"]).is_valid
    t3 = next(f for f in tracks if f["properties"]["track"] == "T000003")
    assert t3["properties"]["class"] == "manned" and t3["properties"]["target_id"] == "icao:508035"
    assert len(t3["geometry"]["coordinates"]) == 10 and t3["geometry"]["coordinates"][0][2] == 1500.0


def test_kml_export_reads_back_with_fastkml(run_dir):
    from fastkml import kml

    out = _export(run_dir, "kml")
    doc = kml.KML.parse(str(out))
    folders = list(doc.features[0].features)
    tracks, alerts = folders[0], folders[1]
    names = sorted(p.name for p in tracks.features)
    assert names == ["T000001", "T000002", "T000003"]
    t1 = next(p for p in tracks.features if p.name == "T000001")
    coords = list(t1.geometry.coords)
    assert len(coords) == 10 and coords[0] == pytest.approx((30.60, 50.40, 300.0))
    assert len(list(alerts.features)) == 2 and all(p.geometry is not None for p in alerts.features)


def test_export_rejects_alerts_of_unknown_zones(run_dir):
    formats.write_jsonl(run_dir / "bad_alerts.jsonl", [Alert(zone="nowhere", start=1.0, end=2.0, level="warning",
                                                             tracks=[])])
    res = runner.invoke(app, ["export", "--tracks", str(run_dir / "tracks.jsonl"), "--format", "geojson",
                              "--zones", str(run_dir / "zones.geojson"), "--alerts", str(run_dir / "bad_alerts.jsonl"),
                              "--out", str(run_dir / "x.geojson")])
    assert isinstance(res.exception, SkytraceError) and "nowhere" in str(res.exception)


# --------------------------------------------------------------------------------------------------- webhook
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that fails the first ``fail`` posts with 503 and can hold requests."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.posts: list[tuple[dict, bytes]] = []
        self.attempts = 0
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                outer.arrived.set()
                outer.release.wait(20)
                if outer.attempts <= outer.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.posts.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


def _event(k: int) -> AlertEvent:
    return AlertEvent(t=1_790_000_000.0 + k, zone="UA-32", kind="raise", level="warning", tracks=["T000001"],
                      probability=0.6, eta_s=420.0, reason="test", alert_id=f"skytrace-{k:06d}", start=1.0)


def _snapshot():
    from skytrace.batch import TrackSnapshot

    return TrackSnapshot.from_records(0.0, [])


def test_webhook_signs_and_retries_with_backoff():
    rx = Receiver(fail=2)
    sink = webhook.WebhookSink(webhook.WebhookConfig(rx.url, SECRET, backoff_s=0.05))
    sink.on_step(StepResult(1.0, _snapshot(), [_event(1), _event(2)]))
    sink.close()
    rx.close()
    assert rx.attempts == 4 and sink.stats["retries"] == 2 and sink.stats["sent"] == 2
    for headers, body in rx.posts:
        ts, sig = headers[webhook.TIMESTAMP_HEADER], headers[webhook.SIGNATURE_HEADER]
        assert webhook.verify_signature(SECRET, ts, body, sig)
        assert not webhook.verify_signature(b"another-secret-of-16+", ts, body, sig)
        assert not webhook.verify_signature(SECRET, ts, body.replace(b"UA-32", b"UA-30"), sig)
        assert not webhook.verify_signature(SECRET, ts, body, sig, now=float(ts) + 3600)  # a replay, later
    assert [json.loads(b)["event"]["alert_id"] for _, b in rx.posts] == ["skytrace-000001", "skytrace-000002"]


def test_webhook_never_blocks_and_bounds_its_queue():
    rx = Receiver()
    rx.release.clear()  # the endpoint hangs
    sink = webhook.WebhookSink(webhook.WebhookConfig(rx.url, SECRET, max_queue=3, timeout_s=30))
    sink.on_step(StepResult(1.0, _snapshot(), [_event(0)]))
    assert rx.arrived.wait(10)  # the first post is in flight and held by the endpoint ...
    sink.on_step(StepResult(2.0, _snapshot(), [_event(k) for k in range(1, 11)]))  # ... yet this returns
    assert rx.posts == [] and sink.stats["submitted"] == 11 and sink.stats["dropped"] == 7  # 3 queued, 7 dropped
    rx.release.set()
    sink.close()
    rx.close()
    assert [json.loads(b)["event"]["alert_id"][-2:] for _, b in rx.posts] == ["00", "08", "09", "10"]


def test_webhook_gives_up_on_4xx_and_dead_endpoints():
    class Reject(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(401)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Reject)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sink = webhook.WebhookSink(webhook.WebhookConfig(f"http://127.0.0.1:{srv.server_address[1]}/", SECRET))
    sink.post({"hello": 1})
    sink.close()
    srv.shutdown()
    assert sink.stats["failed"] == 1 and sink.stats["retries"] == 0
    srv.server_close()
    dead = webhook.WebhookSink(webhook.WebhookConfig(f"http://127.0.0.1:{srv.server_address[1]}/", SECRET,
                                                     max_attempts=3, backoff_s=0.01))
    dead.post({"hello": 2})
    dead.close()
    assert dead.stats["failed"] == 1 and dead.stats["retries"] == 2


def test_webhook_config_is_checked():
    with pytest.raises(SkytraceError, match="http"):
        webhook.WebhookConfig("ftp://x", SECRET)
    with pytest.raises(SkytraceError, match="16 bytes"):
        webhook.WebhookConfig("http://127.0.0.1/", b"short")


# ------------------------------------------------------------------------------------------------------ Atom
def test_atom_index_of_the_cap_feed():
    import feedparser

    from skytrace.alerting.cap import CapWriter
    from skytrace.zones import builtin_oblasts

    zones = builtin_oblasts()
    z = zones.ids[3]
    w = CapWriter(zones)
    evs = [AlertEvent(1_790_000_000.0, z, "raise", "warning", ["T1"], 0.4, 600.0, "r", "skytrace-000001",
                      1_790_000_000.0),
           AlertEvent(1_790_000_300.0, z, "clear", "clear", ["T1"], 0.0, None, "r", "skytrace-000001",
                      1_790_000_000.0)]
    msgs = [(f"https://alerts.example.org/cap/{k}.xml", w.message(e)) for k, e in enumerate(evs)]
    xml = atom.cap_atom_feed(msgs, "urn:uuid:5a4c7e0e-3b2f-4a57-9d1e-8f2b8a7e6c11",
                             "https://alerts.example.org/cap/index.atom")
    feed = feedparser.parse(xml)
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) == 2
    assert feed.entries[0].links[0].href == "https://alerts.example.org/cap/1.xml"  # newest first
    assert feed.entries[0].title.startswith("Cancel: All clear")
    assert feed.entries[0].links[0].type == "application/cap+xml"
    assert feed.entries[1].title.startswith("Drone threat")
    assert time.mktime(feed.entries[0].updated_parsed) > time.mktime(feed.entries[1].updated_parsed)


@pytest.mark.parametrize("xml, why", [
    (b"<alert>", "malformed"),
    (b"<x xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>", "not a CAP"),
    (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>a</identifier></alert>", "without sender"),
    (b"<alert>" + b" " * (1 << 20) + b"</alert>", "1 MiB"),
])
def test_atom_rejects_bad_cap(xml, why):
    from skytrace.errors import FormatError

    with pytest.raises(FormatError, match=why):
        atom.cap_atom_feed([("u", xml)], "urn:x", "https://x/")
