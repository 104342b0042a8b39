"""Tamper tests of the custody log and the content-addressed vault: every kind of edit is detected and located."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from skytrace.forensics.custody import (
    CustodyError,
    Vault,
    canonical_json,
    entry_hash,
    generate_key,
    load_key,
    public_key_hex,
    verify_vault,
)


@pytest.fixture()
def vault(tmp_path: Path) -> Vault:
    v = Vault.create(tmp_path / "vault", actor="investigator A")
    photo = tmp_path / "wing.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe1 fake jpeg with exif " + os.urandom(64))
    sha, new = v.ingest(photo, actor="investigator A", details={"note": "left wing, serial plate"})
    assert new
    v.access(sha, actor="analyst B", purpose="read serial")
    v.working_copy(sha, actor="analyst B", purpose="crop marking")
    v.append("note", actor="analyst B", details={"text": "marking reads 'MS4525'"})
    return v


def _lines(v: Vault) -> list[bytes]:
    return v.log_path.read_bytes().splitlines()


def _write(v: Vault, lines: list[bytes]) -> None:
    v.log_path.write_bytes(b"\n".join(lines) + b"\n")


def _problems(v: Vault, **kw) -> list[str]:
    findings, _ = verify_vault(v.root, **kw)
    return [str(f) for f in findings]


def test_intact_vault_verifies(vault: Vault) -> None:
    findings, n = verify_vault(vault.root)
    assert findings == []
    assert n == 6  # init, ingest, access, access (working copy), derive, note
    actions = [e["action"] for e in vault.entries()]
    assert actions == ["init", "ingest", "access", "access", "derive", "note"]


def test_original_is_untouched_and_read_only(vault: Vault, tmp_path: Path) -> None:
    sha = next(e["object"] for e in vault.entries() if e["action"] == "ingest")
    p = vault.object_path(sha)
    assert p.read_bytes() == (tmp_path / "wing.jpg").read_bytes()
    assert not p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    copies = list(vault.working.iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == p.read_bytes()


def test_edit_of_an_entry_is_detected(vault: Vault) -> None:
    lines = _lines(vault)
    e = json.loads(lines[5])
    e["details"]["text"] = "marking reads 'MS4515'"
    lines[5] = canonical_json(e)
    _write(vault, lines)
    probs = _problems(vault)
    assert any("line 6" in p and "edited" in p for p in probs), probs


def test_edit_with_recomputed_hash_is_detected_by_signature_and_chain(vault: Vault) -> None:
    lines = _lines(vault)
    e = json.loads(lines[2])
    e["actor"] = "somebody else"
    e["hash"] = entry_hash(e)
    lines[2] = canonical_json(e)
    _write(vault, lines)
    probs = _problems(vault)
    assert any("line 3" in p and "signature" in p for p in probs), probs
    assert any("line 4" in p and "chain broken" in p for p in probs), probs


def test_deletion_is_detected(vault: Vault) -> None:
    lines = _lines(vault)
    del lines[2]
    _write(vault, lines)
    probs = _problems(vault)
    assert any("line 3" in p and "deletion" in p for p in probs), probs
    assert any("line 3" in p and "chain broken" in p for p in probs), probs


def test_insertion_is_detected(vault: Vault, tmp_path: Path) -> None:
    lines = _lines(vault)
    fake = dict(json.loads(lines[3]))
    fake["details"] = {"purpose": "inserted"}
    fake["hash"] = entry_hash(fake)
    lines.insert(3, canonical_json(fake))
    _write(vault, lines)
    probs = _problems(vault)
    assert any("line 4" in p for p in probs), probs
    assert any("line 5" in p and ("chain broken" in p or "sequence" in p) for p in probs), probs


def test_reordering_is_detected(vault: Vault) -> None:
    lines = _lines(vault)
    lines[2], lines[3] = lines[3], lines[2]
    _write(vault, lines)
    probs = _problems(vault)
    assert any("line 3" in p and "sequence" in p for p in probs), probs
    assert any("chain broken" in p for p in probs), probs


def test_truncation_is_detected_against_a_recorded_head(vault: Vault) -> None:
    n, head = vault.head()
    lines = _lines(vault)
    _write(vault, lines[:-1])
    assert _problems(vault) == []  # a hash chain alone cannot see a shorter log ...
    probs = _problems(vault, expected_head=head)  # ... the head recorded elsewhere can
    assert any("removed from the end" in p for p in probs), probs


def test_swapped_key_is_detected(vault: Vault, tmp_path: Path) -> None:
    # an attacker rewrites the whole log with their own key: every entry is self-consistent
    other = tmp_path / "other.pem"
    generate_key(other)
    key = load_key(other)
    prev = "0" * 64
    rewritten = []
    for raw in _lines(vault):
        e = json.loads(raw)
        e["key"] = public_key_hex(key)
        e["prev"] = prev
        e.pop("hash"), e.pop("sig")
        e["hash"] = entry_hash(e)
        e["sig"] = key.sign(bytes.fromhex(e["hash"])).hex()
        prev = e["hash"]
        rewritten.append(canonical_json(e))
    _write(vault, rewritten)
    probs = _problems(vault)
    assert len(probs) == 6 and all("not trusted" in p for p in probs), probs
    # ... and replacing the vault's trusted key list too is caught by a key pinned outside the vault
    original = (vault.root / "keys" / "trusted.pub").read_text().split()
    (vault.root / "keys" / "trusted.pub").write_text(public_key_hex(key) + "\n")
    assert _problems(vault) == []
    assert all("not trusted" in p for p in _problems(vault, trusted_keys=original))


def test_modified_original_is_detected(vault: Vault) -> None:
    sha = next(e["object"] for e in vault.entries() if e["action"] == "ingest")
    p = vault.object_path(sha)
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    probs = _problems(vault)
    assert probs == [f"objects/{sha[:2]}/{sha}: stored original was modified (SHA-256 differs)"]


def test_missing_original_is_detected(vault: Vault) -> None:
    sha = next(e["object"] for e in vault.entries() if e["action"] == "ingest")
    vault.object_path(sha).unlink()
    probs = _problems(vault)
    assert len(probs) == 1 and "missing" in probs[0] and sha in probs[0]


def test_unregistered_file_in_store_is_detected(vault: Vault) -> None:
    fake = "ab" + "0" * 62
    p = vault.objects / "ab" / fake
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"planted")
    probs = _problems(vault)
    assert len(probs) == 1 and "no entry registered" in probs[0]


def test_corrupted_line_is_reported(vault: Vault) -> None:
    lines = _lines(vault)
    lines[1] = lines[1][:-5]
    _write(vault, lines)
    probs = _problems(vault)
    assert any(p.startswith("custody.jsonl line 2: not a valid entry") for p in probs), probs


def test_floats_are_refused_and_bad_actions_rejected(vault: Vault) -> None:
    with pytest.raises(CustodyError):
        vault.append("note", actor="x", details={"value": 1.5})
    with pytest.raises(CustodyError):
        vault.append("delete", actor="x")
    with pytest.raises(CustodyError):
        vault.append("note", actor="")
