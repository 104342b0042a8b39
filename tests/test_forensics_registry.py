"""The evidence registry on both store back-ends (SQLite file, real PostgreSQL), tied to the custody log."""

from __future__ import annotations

from pathlib import Path

import pytest

from skytrace.forensics.custody import Vault
from skytrace.forensics.registry import FUZE_NOTE, Registry, RegistryError


def _exercise(reg: Registry) -> None:
    reg.add_incident("A", "INC-1", "2026-11-23T02:10:00Z", 50.45, 30.52, "Kyiv", "test", ["T2", "T1", "T1"])
    reg.add_debris("A", "DEB-1", "INC-1", 1795400000.0, 50.451, 30.521, "SES", "burnt", "Ц-13", "SN1")
    reg.add_component("A", "C-1", "DEB-1", "imu", "NWM NW4525D0", "NW-4525DO", "NWM", "", "2219")
    fuze = reg.add_component("A", "C-2", "DEB-1", "fuze", "unreadable")
    assert fuze["handling_note"] == FUZE_NOTE
    inc = reg.get("incident", "INC-1")
    assert inc["t"] == 1795399800.0 and inc["tracks"] == '["T1", "T2"]'
    assert [c["id"] for c in reg.list("component", {"debris": "DEB-1"})] == ["C-1", "C-2"]
    assert reg.get("component", "C-1")["part_number_norm"] == "NW4525DO"
    with pytest.raises(RegistryError, match="already exists"):
        reg.add_incident("A", "INC-1", 0, 50, 30)
    with pytest.raises(RegistryError, match="no debris"):
        reg.add_component("A", "C-3", "DEB-404", "imu")
    with pytest.raises(RegistryError, match="category"):
        reg.add_component("A", "C-3", "DEB-1", "warhead")
    with pytest.raises(RegistryError, match="unknown field"):
        reg.list("debris", {"id; DROP TABLE forensic_debris": 1})
    assert reg.check_against_log() == []


def test_registry_sqlite_and_custody(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "v", actor="A")
    reg = Registry(str(tmp_path / "v" / "skytrace.db"), vault)
    _exercise(reg)
    # the store's own tables are untouched: the service opens the same file afterwards
    from skytrace.store import open_store

    store = open_store(str(tmp_path / "v" / "skytrace.db"))
    store.close()
    reg.execute("UPDATE forensic_incidents SET lat = 50.46 WHERE id = ?", ("INC-1",))
    assert reg.check_against_log() == ["incident INC-1: record differs from what was registered in the custody log"]
    assert sum(e["action"] == "register" for e in vault.entries()) == 4


def test_registry_postgres(pg_url: str, tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "v", actor="A")
    reg = Registry(pg_url, vault)
    _exercise(reg)
    reg.close()
    reg = Registry(pg_url, vault)  # tables persist, records still match the log
    assert reg.check_against_log() == []
    assert len(reg.list("debris")) == 1
