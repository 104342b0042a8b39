"""Casework end to end through the CLI: vault, registry, media, attribution, sanctions, report (PDF pages checked
as images with pdftoppm), FtM export, and verification after tampering with the database and the store."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from skytrace.forensics.attribution import Observation, parse_catalogue, parse_date_code, score_component

CATALOGUE = [
    {"id": "ref-imu-1", "manufacturer": "Northwind Microsystems", "aliases": ["NWM", "Нортвінд"],
     "part_number_patterns": ["NW-4525DO-*"], "category": "imu", "country": "FD",
     "sources": ["fictional test source"], "reliability": "B"},
    {"id": "ref-gnss-1", "manufacturer": "Caldera Devices", "aliases": ["CDV"],
     "part_number_patterns": ["CDV8830?B*", "CD-88B0"], "category": "gnss", "country": "FD",
     "sources": ["fictional"], "reliability": "C"},
    {"id": "ref-servo-1", "manufacturer": "Lumtek Motors", "part_number_patterns": ["LT-S55*"],
     "category": "servo", "country": "XX", "reliability": "D"},
]

# a small fictional sanctions list in FollowTheMoney format (never real data)
FTM = [
    {"id": "fict-1", "schema": "Company", "properties": {"name": ["Northwind Micro Systems Ltd"],
                                                         "country": ["fd"], "topics": ["sanction"]}},
    {"id": "fict-2", "schema": "Company", "properties": {"name": ["Zenith Orchard Farming"]}},
    {"id": "fict-3", "schema": "Person", "properties": {"name": ["Northwind Person"]}},
]


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", *args],
                       capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_misreadings_transliteration_and_date_codes() -> None:
    import datetime as dt

    cat = parse_catalogue(CATALOGUE)
    # O/0 and B/8 misreadings, Cyrillic look-alikes, a maker written in Cyrillic
    cases = [
        (Observation("NW4525D0-XY", category="imu"), "ref-imu-1"),
        (Observation("СDV88З0ХВ1", category="gnss"), "ref-gnss-1"),  # Cyrillic С, З, Х look like C, 3, X
        (Observation("4525DO-AB", manufacturer="Нортвінд", category="imu"), "ref-imu-1"),
        (Observation("LT S55-9", category="servo"), "ref-servo-1"),
    ]
    for obs, want in cases:
        best = score_component(obs, cat)[0]
        assert best.entry.id == want, best.explain()
        assert best.match, best.explain()
        assert "part_number" in best.explain() and "category" in best.explain()
    unknown = score_component(Observation("QX7781-ZZ", category="engine"), cat)[0]
    assert not unknown.match
    inc = dt.date(2022, 10, 10)
    late = score_component(Observation("NW-4525DO-AA", category="imu", date_code="2307", incident_date=inc), cat)[0]
    assert any("IMPOSSIBLE" in f for f in late.flags)
    ok = score_component(Observation("NW-4525DO-AA", category="imu", date_code="2219", incident_date=inc), cat)[0]
    assert ok.flags == []
    assert parse_date_code("2219") == dt.date(2022, 5, 9) and parse_date_code("2260") is None


def _photo(path: Path) -> None:
    img = Image.new("RGB", (320, 240), (40, 40, 40))
    px = img.load()
    for x in range(80, 240):
        for y in range(60, 180):
            px[x, y] = (255, 0, 255)  # a magenta plate: found again on the PDF page
    exif = Image.Exif()
    exif[0x0132] = "2026:11:23 07:15:00"  # DateTime
    exif[0x010F] = "TestCam"  # Make
    img.save(path, format="JPEG", exif=exif.tobytes())


def test_casework_cli_report_and_verify(tmp_path: Path) -> None:
    # a missing pdftoppm is a broken set-up (bash .ci/services.sh install), not a reason to skip
    assert shutil.which("pdftoppm"), "pdftoppm missing: install poppler-utils (bash .ci/services.sh install)"
    vault = tmp_path / "vault"
    v = ["--vault", str(vault)]
    a = ["--actor", "Investigator Test"]
    cli("forensics", "init", *v, *a)
    (tmp_path / "cat.json").write_text(json.dumps(CATALOGUE, ensure_ascii=False))
    (tmp_path / "list.ftm.json").write_text("".join(json.dumps(e) + "\n" for e in FTM))
    cli("forensics", "add-incident", *v, *a, "--id", "INC-1", "--time", "2026-11-23T02:10:00Z", "--lat", "50.45",
        "--lon", "30.52", "--place", "Kyiv, test site", "--description", "Test incident", "--tracks", "T1")
    cli("forensics", "add-debris", *v, *a, "--id", "DEB-1", "--incident", "INC-1", "--time", "2026-11-23T07:00:00Z",
        "--lat", "50.451", "--lon", "30.521", "--by", "Emergency service", "--condition", "burnt",
        "--markings", "Ц-13", "--serial", "SN0001")
    cli("forensics", "add-component", *v, *a, "--id", "C-1", "--debris", "DEB-1", "--category", "imu",
        "--marking", "NWM NW4525D0-DS5 2219", "--date-code", "2219")
    cli("forensics", "add-component", *v, *a, "--id", "C-2", "--debris", "DEB-1", "--category", "gnss",
        "--marking", "CDV8830XB7 2812", "--date-code", "2812")
    r = cli("forensics", "add-component", *v, *a, "--id", "C-3", "--debris", "DEB-1", "--category", "fuze",
            "--marking", "unreadable")
    assert "EOD" in r.stdout
    _photo(tmp_path / "plate.jpg")
    r = cli("forensics", "add-media", *v, *a, str(tmp_path / "plate.jpg"), "--component", "C-1")
    sha = r.stdout.split()[-1]
    media = json.loads(cli("forensics", "list", "media", "--json", *v).stdout)
    assert media[0]["sha256"] == sha and json.loads(media[0]["exif"])["Make"] == "TestCam"
    r = cli("forensics", "attribute", *v, *a, "--catalogue", str(tmp_path / "cat.json"))
    assert "C-1 #1 MATCH" in r.stdout and "Northwind" in r.stdout
    assert "IMPOSSIBLE date code 2812" in r.stdout  # week 12 of 2028 is after the incident
    r = cli("forensics", "screen", *v, *a, "--entities", str(tmp_path / "list.ftm.json"))
    assert "fict-1" in r.stdout and "fict-2" not in r.stdout and "fict-3" not in r.stdout
    hits = json.loads(cli("forensics", "list", "screening", "--json", *v).stdout)
    assert [h["decision"] for h in hits] == ["pending"]
    assert hits[0]["dataset_version"].startswith("sha256:")
    # the report before review says NOT REVIEWED
    cli("forensics", "report", *v, *a, "--incident", "INC-1", "--out", str(tmp_path / "r0"), "--no-pdf")
    assert "NOT REVIEWED" in (tmp_path / "r0" / "report.html").read_text()
    bad = cli("forensics", "decide", *v, *a, hits[0]["id"], "--decision", "maybe", ok=False)
    assert bad.returncode == 2 and "match, no-match, unsure" in bad.stderr
    cli("forensics", "decide", *v, *a, hits[0]["id"], "--decision", "unsure", "--note", "same name, other city")
    out = tmp_path / "report"
    cli("forensics", "report", *v, *a, "--incident", "INC-1", "--out", str(out))
    html = (out / "report.html").read_text()
    assert "NOT REVIEWED" not in html and "unsure by Investigator Test" in html
    assert "IMPOSSIBLE" in html and "EOD" in html and sha in html
    # the PDF, page by page, as images
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out / "report.pdf"), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    found_photo = False
    for p in pages:
        im = np.asarray(Image.open(p).convert("RGB")).astype(int)
        h, w, _ = im.shape
        assert abs(h / w - 297 / 210) < 0.02  # A4 portrait
        assert im.std() > 10  # not blank
        magenta = (im[..., 0] > 200) & (im[..., 1] < 80) & (im[..., 2] > 200)
        found_photo |= magenta.sum() > 50
    assert found_photo, "the photo sheet's image is not on any page"
    text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True).stdout
    assert "Custody log" in text and "Limits" in text and "Northwind" in text
    # FtM export
    cli("forensics", "export-ftm", *v, *a, "--incident", "INC-1", "--out", str(tmp_path / "inc.ftm.json"))
    ents = [json.loads(x) for x in (tmp_path / "inc.ftm.json").read_text().splitlines()]
    assert {e["schema"] for e in ents} >= {"Event", "Company", "Note"}
    # intact, then tampered
    r = cli("forensics", "verify", *v)
    assert r.stdout.startswith("intact")
    db = sqlite3.connect(vault / "skytrace.db")
    db.execute("UPDATE forensic_debris SET serial = 'SN0002' WHERE id = 'DEB-1'")
    db.commit()
    db.close()
    r = cli("forensics", "verify", *v, ok=False)
    assert r.returncode == 1 and "debris DEB-1: record differs" in r.stdout
    obj = vault / "objects" / sha[:2] / sha
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes() + b"x")
    r = cli("forensics", "verify", *v, ok=False)
    assert f"objects/{sha[:2]}/{sha}: stored original was modified" in r.stdout


def test_bad_registry_input_is_one_line_error(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    cli("forensics", "init", "--vault", str(vault), "--actor", "x")
    for args, msg in [
        (["add-incident", "--id", "I 1", "--time", "2026-01-01T00:00:00Z", "--lat", "50", "--lon", "30"], "`id`"),
        (["add-incident", "--id", "I1", "--time", "2026-01-01T00:00:00", "--lat", "50", "--lon", "30"], "zone"),
        (["add-incident", "--id", "I1", "--time", "0", "--lat", "95", "--lon", "30"], "outside"),
        (["add-debris", "--id", "D1", "--incident", "nope", "--time", "0", "--lat", "50", "--lon", "30"],
         "no incident"),
        (["verify", "--head", "00"], ""),
    ]:
        r = cli("forensics", *args, "--vault", str(vault), *(["--actor", "x"] if args[0] != "verify" else []),
                ok=False)
        if args[0] == "verify":
            assert r.returncode == 1 and "removed from the end" in r.stdout
            continue
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli("forensics", "verify", "--vault", str(tmp_path / "none"), ok=False)
    assert r.returncode == 2 and "not an evidence vault" in r.stderr
