"""The evidence registry over REST (served by the live service) and its web page in headless chromium.

Read-only without a key; writes need the key, a JSON body and valid fields; queries are paged and bounded; the
custody status turns to TAMPERED when a registry row is edited outside skytrace. The page is checked in Debian's
chromium (Playwright): it lists the records, filters by clicking, registers a component with the key, shows a
validation error, and makes no request outside the service."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest

from skytrace.forensics.api import forensics_router
from skytrace.forensics.custody import Vault
from skytrace.forensics.registry import Registry
from skytrace.io import formats
from skytrace.service.app import create_app
from skytrace.service.core import LiveService
from skytrace.service.runner import ServerThread
from skytrace.service.stages import pipeline_stage
from skytrace.store import open_store

KEY = "k3y-for-tests-0123456789"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path("test-artifacts")


@pytest.fixture()
def vault(tmp_path: Path) -> Path:
    v = Vault.create(tmp_path / "vault", actor="investigator A")
    reg = Registry(str(v.root / "skytrace.db"), v)
    reg.add_incident("investigator A", "INC-1", "2026-11-23T02:10:00Z", 50.45, 30.52, "Kyiv, Solomianskyi",
                     tracks=["T000017"])
    reg.add_incident("investigator A", "INC-2", "2026-11-23T02:40:00Z", 50.40, 30.60, "Kyiv, Darnytskyi")
    reg.add_debris("investigator A", "DEB-1", "INC-1", "2026-11-23T07:00:00Z", 50.451, 30.519, "police unit 3",
                   "engine block, wing", "Герань-2 Ф1234")
    reg.add_debris("investigator A", "DEB-2", "INC-2", "2026-11-23T08:00:00Z", 50.401, 30.601, "police unit 5")
    reg.add_component("investigator A", "C-1", "DEB-1", "imu", "NWM NW4525D0-DS5 2219", "NW4525D0-DS5")
    reg.add_component("investigator A", "C-2", "DEB-1", "fuze", "<b>no marking</b>")
    photo = tmp_path / "wing.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    reg.add_media("investigator A", photo, debris="DEB-1")
    reg.close()
    return v.root


@pytest.fixture()
def service(kyiv_short) -> LiveService:
    table = formats.load_sensor_table(kyiv_short / "sensors.json")
    return LiveService(table=table, zones=None, stage=pipeline_stage(table, None), store=open_store(None),
                       step_s=0.2)


def _post(url: str, kind: str, body: dict, key: str | None = KEY, extra: dict | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **(extra or {})}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{url}/api/v1/forensics/{kind}", json=body, headers=headers)


def test_rest_read_filter_page_and_custody(vault: Path, service: LiveService) -> None:
    with ServerThread(create_app(service, routers=(forensics_router(vault),))) as srv:
        base = srv.url + "/api/v1/forensics"
        inc = httpx.get(base + "/incidents").json()
        assert inc["total"] == 2 and [r["id"] for r in inc["items"]] == ["INC-1", "INC-2"]
        assert httpx.get(base + "/incidents/INC-1").json()["place"] == "Kyiv, Solomianskyi"
        assert httpx.get(base + "/incidents/NOPE").status_code == 404
        deb = httpx.get(base + "/debris", params={"incident": "INC-2"}).json()
        assert [r["id"] for r in deb["items"]] == ["DEB-2"]
        page = httpx.get(base + "/debris", params={"limit": 1, "offset": 1}).json()
        assert page["total"] == 2 and [r["id"] for r in page["items"]] == ["DEB-2"]
        comps = httpx.get(base + "/components", params={"debris": "DEB-1"}).json()["items"]
        assert {c["id"] for c in comps} == {"C-1", "C-2"}
        assert httpx.get(base + "/components/C-2").json()["handling_note"].startswith("explosive ordnance")
        media = httpx.get(base + "/media", params={"debris": "DEB-1"}).json()["items"]
        assert len(media) == 1 and media[0]["name"] == "wing.jpg"
        assert httpx.get(base + f"/media/{media[0]['sha256']}").json()["debris"] == "DEB-1"
        # bounded, validated queries
        assert httpx.get(base + "/debris", params={"limit": 501}).status_code == 422
        assert httpx.get(base + "/debris", params={"incident": "x' OR '1'='1"}).status_code == 422
        assert httpx.get(base + "/media/not-a-hash").status_code == 422
        cust = httpx.get(base + "/custody").json()
        assert cust["intact"] is True and cust["entries"] == 9 and len(cust["head"]) == 64
        # a row edited in the database behind skytrace's back
        db = sqlite3.connect(vault / "skytrace.db")
        db.execute("UPDATE forensic_debris SET recovered_by = 'someone else' WHERE id = 'DEB-2'")
        db.commit()
        db.close()
        cust = httpx.get(base + "/custody").json()
        assert cust["intact"] is False
        assert cust["findings"] == ["debris DEB-2: record differs from what was registered in the custody log"]


def test_rest_is_read_only_without_key_and_writes_need_it(vault: Path, service: LiveService) -> None:
    body = {"actor": "investigator B", "id": "INC-3", "time": "2026-11-23T03:00:00Z", "lat": 50.5, "lon": 30.4}
    with ServerThread(create_app(service, routers=(forensics_router(vault),))) as srv:
        r = _post(srv.url, "incidents", body)
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
    n_before = sum(1 for _ in Vault(vault).entries())
    with ServerThread(create_app(service, routers=(forensics_router(vault, write_key=KEY),))) as srv:
        assert _post(srv.url, "incidents", body, key=None).status_code == 401
        assert _post(srv.url, "incidents", body, key="wrong-key-0123456789").status_code == 401
        r = httpx.post(f"{srv.url}/api/v1/forensics/incidents", content=b"id=INC-3",
                       headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        assert _post(srv.url, "incidents", {**body, "lat": 95}).status_code == 422
        assert _post(srv.url, "incidents", {**body, "admin": True}).status_code == 422  # unknown field
        assert _post(srv.url, "incidents", {**body, "description": "x" * 70_000}).status_code == 413
        r = _post(srv.url, "incidents", body)
        assert r.status_code == 201 and r.json()["id"] == "INC-3"
        r = _post(srv.url, "incidents", body)
        assert r.status_code == 422 and "already exists" in r.json()["detail"]
        r = _post(srv.url, "debris", {"actor": "B", "id": "DEB-9", "incident": "INC-404", "time": 1.8e9, "lat": 50,
                                      "lon": 30})
        assert r.status_code == 422 and "no incident 'INC-404'" in r.json()["detail"]
        # a cross-site page cannot write (the service's Origin guard)
        r = _post(srv.url, "incidents", {**body, "id": "INC-4"}, extra={"Origin": "http://evil.example"})
        assert r.status_code == 403
        cust = httpx.get(srv.url + "/api/v1/forensics/custody").json()
    entries = list(Vault(vault).entries())
    assert len(entries) == n_before + 1 and entries[-1]["actor"] == "investigator B"
    assert cust["intact"] is True


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("no chromium: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_registry_page_browse_and_register(vault: Path, service: LiveService, browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with ServerThread(create_app(service, routers=(forensics_router(vault, write_key=KEY),))) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []

        def route(r):
            if r.request.url.startswith(srv.url):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(srv.url + "/forensics.html")
        page.wait_for_function("window.skytraceForensics && window.skytraceForensics.loaded > 0")
        assert page.locator("#incidents tbody tr").count() == 2
        assert page.locator("#debris tbody tr").count() == 2
        assert page.locator("#custody").inner_text() == "custody log intact: 9 entries"
        # typed text stays text: the marking "<b>no marking</b>" is shown literally, not as markup
        assert page.locator("#components td", has_text="<b>no marking</b>").count() == 1
        # click an incident: the debris list shows only its items
        page.locator("#incidents tbody tr", has_text="INC-2").click()
        page.wait_for_function("document.querySelectorAll('#debris tbody tr').length === 1")
        assert page.locator("#debris tbody tr").inner_text().startswith("DEB-2")
        page.locator("#debris tbody tr", has_text="DEB-2").click()
        page.wait_for_function("document.querySelector('#comp-filter').textContent === 'of DEB-2'")
        assert page.locator("#components tbody tr").count() == 0
        # register a component on DEB-2
        assert page.locator("#f-lat").is_visible() and page.locator("#f-debris").is_hidden()
        page.select_option("#f-kind", "components")
        assert page.locator("#f-lat").is_hidden() and page.locator("#f-debris").is_visible()
        page.fill("#f-key", KEY)
        page.fill("#f-actor", "investigator C")
        page.fill("#f-id", "C-3")
        page.fill("#f-debris", "DEB-2")
        page.select_option("#f-category", "gnss")
        page.fill("#f-marking", "U-BLOX NEO-M8N 1905")
        page.click("#add-form button[type=submit]")
        page.wait_for_function("document.querySelector('#add-result').textContent === 'registered C-3'")
        page.wait_for_function("document.querySelectorAll('#components tbody tr').length === 1")
        assert "U-BLOX NEO-M8N 1905" in page.locator("#components tbody tr").inner_text()
        page.wait_for_function("document.querySelector('#custody').textContent === 'custody log intact: 10 entries'")
        page.screenshot(path=str(ARTIFACTS / "forensics-registry.png"), full_page=True)
        # a component on a debris item that does not exist: the page shows the service's one-line reason
        page.fill("#f-id", "C-4")
        page.fill("#f-debris", "DEB-404")
        page.click("#add-form button[type=submit]")
        page.wait_for_function("document.querySelector('#add-result').className === 'err'")
        assert page.locator("#add-result").inner_text() == "no debris 'DEB-404'"
        page.close()
    assert outside == []
