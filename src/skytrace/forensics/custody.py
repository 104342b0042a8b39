"""Custody log and evidence vault: an append-only, hash-chained, Ed25519-signed log and content-addressed media.

Preservation follows the Berkeley Protocol on Digital Open Source Investigations (UN OHCHR / UC Berkeley, 2022),
ch. VI: *authenticity* (a SHA-256 of every original at intake), *identity* (who did what, signed),
*persistence* (an untouched original kept read-only; analysts work on linked working copies) and every access
logged.

Vault layout::

    VAULT/custody.jsonl            one entry a line, append-only
    VAULT/objects/ab/abcdef...     originals, named by their SHA-256 (read-only, bytes untouched: EXIF kept)
    VAULT/working/<sha>-<name>     working copies (each logged with the original it derives from)
    VAULT/keys/trusted.pub         public keys (hex) whose signatures verify accepts, one a line

Entry: ``{"seq", "time", "actor", "action", "object", "details", "prev", "key", "hash", "sig"}``. ``hash`` is the
SHA-256 of the canonical JSON (keys sorted, no spaces, UTF-8; integers and strings only, so the encoding is
unambiguous as in RFC 8785) of the entry without ``hash`` and ``sig``; ``prev`` is the previous entry's hash
(64 zeros for the first); ``sig`` is the Ed25519 signature (RFC 8032) of the hash by ``key``.

:func:`verify_vault` detects an edited entry (hash mismatch), a deleted, inserted or reordered entry (sequence and
chain breaks), a forged signature or an entry signed by a key that is not trusted (a swapped key), a modified or
missing original, a file in ``objects/`` that no entry registered, and truncation of the log's tail when the
caller gives the head hash recorded elsewhere (a report, an e-mail, a timestamp authority). Without an external
head, removing the last entries cannot be told from a shorter log: that is a limit of any hash chain.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from skytrace.errors import SkytraceError

GENESIS = "0" * 64
ACTIONS = ("init", "ingest", "access", "derive", "register", "decision", "export", "note", "timestamp")
_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class CustodyError(SkytraceError):
    """The vault cannot be used (missing, unreadable key, bad arguments)."""


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - depends on the install
        raise CustodyError("the custody log needs the forensics extra: pip install 'skytrace[forensics]'") from None
    return ed25519, serialization, InvalidSignature


def canonical_json(obj: object) -> bytes:
    """Canonical JSON of integers, strings, booleans, null, lists and objects (sorted keys, no spaces, UTF-8).

    Floats are refused: their text form is not unique across implementations (RFC 8785 section 3.2.2.3).
    """
    def check(o: object) -> None:
        if isinstance(o, float):
            raise CustodyError(f"custody entries hold no floats (got {o!r}); store numbers as strings or integers")
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise CustodyError("custody entry keys must be strings")
                check(v)
        elif isinstance(o, list):
            for v in o:
                check(v)
    check(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def generate_key(path: str | os.PathLike) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600) and return its public key (hex)."""
    ed25519, serialization, _ = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public_key_hex(key)


def load_key(path: str | os.PathLike):
    ed25519, serialization, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CustodyError(f"cannot read the signing key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise CustodyError(f"{path} is not an Ed25519 private key")
    return key


def public_key_hex(key) -> str:
    _, serialization, _ = _crypto()
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Vault:
    """An evidence vault (see the module docstring). ``key_path`` signs new entries."""

    root: Path
    key_path: Path | None = None
    _key: object = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.root / "custody.jsonl"

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    @property
    def working(self) -> Path:
        return self.root / "working"

    @property
    def trusted_path(self) -> Path:
        return self.root / "keys" / "trusted.pub"

    @classmethod
    def create(cls, root: str | os.PathLike, key_path: str | os.PathLike | None = None, actor: str = "") -> Vault:
        """Create a vault: directories, a signing key (unless given), the trusted key list, the first entry."""
        r = Path(root)
        if (r / "custody.jsonl").exists():
            raise CustodyError(f"{r} already holds a custody log")
        for sub in ("objects", "working", "keys"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        kp = Path(key_path) if key_path else r / "keys" / "custody_ed25519.pem"
        pub = public_key_hex(load_key(kp)) if kp.exists() else generate_key(kp)
        (r / "keys" / "trusted.pub").write_text(pub + "\n")
        v = cls(r, kp)
        v.append("init", actor=actor or "skytrace", details={"public_key": pub})
        return v

    @classmethod
    def open(cls, root: str | os.PathLike, key_path: str | os.PathLike | None = None) -> Vault:
        r = Path(root)
        if not (r / "custody.jsonl").is_file():
            raise CustodyError(f"{r} is not an evidence vault (no custody.jsonl); create one with "
                               "`skytrace forensics init`")
        kp = Path(key_path) if key_path else r / "keys" / "custody_ed25519.pem"
        return cls(r, kp)

    # ------------------------------------------------------------------ log
    def _signing_key(self):
        if self._key is None:
            if self.key_path is None or not self.key_path.exists():
                raise CustodyError(f"no signing key at {self.key_path}; pass --key")
            self._key = load_key(self.key_path)
        return self._key

    def entries(self) -> Iterator[dict]:
        with self.log_path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    yield json.loads(raw)

    def append(self, action: str, actor: str, obj: str | None = None, details: dict | None = None) -> dict:
        """Append one signed entry (under an exclusive lock: concurrent writers serialise)."""
        if action not in ACTIONS:
            raise CustodyError(f"unknown custody action {action!r} (one of {', '.join(ACTIONS)})")
        if not actor or len(actor) > 200:
            raise CustodyError("a custody entry needs an actor (who did it), at most 200 characters")
        key = self._signing_key()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                last = None
                seq = 0
                for raw in fh:
                    if raw.strip():
                        last = raw
                        seq += 1
                prev = json.loads(last)["hash"] if last else GENESIS
                entry = {"seq": seq, "time": _utc_now(), "actor": actor, "action": action, "object": obj,
                         "details": details or {}, "prev": prev, "key": public_key_hex(key)}
                h = entry_hash(entry)
                entry["hash"] = h
                entry["sig"] = key.sign(bytes.fromhex(h)).hex()
                fh.seek(0, os.SEEK_END)
                fh.write(canonical_json(entry) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return entry

    def head(self) -> tuple[int, str]:
        """(number of entries, hash of the last): record it outside the vault to detect truncation later."""
        n, h = 0, GENESIS
        for e in self.entries():
            n, h = n + 1, e["hash"]
        return n, h

    # --------------------------------------------------------------- media
    def object_path(self, sha: str) -> Path:
        if not _SHA.match(sha):
            raise CustodyError(f"not a SHA-256 hex digest: {sha!r}")
        return self.objects / sha[:2] / sha

    def ingest(self, path: str | os.PathLike, actor: str, details: dict | None = None) -> tuple[str, bool]:
        """Store a file as an untouched original (content-addressed) and log it. Returns (sha256, new)."""
        src = Path(path)
        if not src.is_file():
            raise CustodyError(f"cannot ingest {src}: not a file")
        sha = sha256_file(src)
        dst = self.object_path(sha)
        new = not dst.exists()
        if new:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".part")
            shutil.copyfile(src, tmp)
            if sha256_file(tmp) != sha:
                tmp.unlink()
                raise CustodyError(f"{src} changed while it was copied; ingest again")
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, dst)
        info = {"name": src.name, "size": str(src.stat().st_size), "duplicate": "no" if new else "yes"}
        info.update(details or {})
        self.append("ingest", actor, sha, info)
        return sha, new

    def access(self, sha: str, actor: str, purpose: str) -> Path:
        """Log an access to an original and return its (read-only) path."""
        p = self.object_path(sha)
        if not p.is_file():
            raise CustodyError(f"no original {sha} in the vault")
        self.append("access", actor, sha, {"purpose": purpose})
        return p

    def working_copy(self, sha: str, actor: str, purpose: str) -> Path:
        """Make a working copy of an original (logged with the original it derives from) and return its path."""
        src = self.access(sha, actor, purpose)
        name = next((e["details"].get("name", "file") for e in self.entries()
                     if e["action"] == "ingest" and e["object"] == sha), "file")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
        self.working.mkdir(parents=True, exist_ok=True)
        dst = self.working / f"{sha[:12]}-{len(list(self.working.iterdir()))}-{safe}"
        shutil.copyfile(src, dst)
        os.chmod(dst, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
        self.append("derive", actor, sha, {"working_copy": dst.name, "purpose": purpose})
        return dst


@dataclass
class Finding:
    """One problem found by :func:`verify_vault`: where (line / seq / file) and what."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def verify_vault(root: str | os.PathLike, trusted_keys: list[str] | None = None,
                 expected_head: str | None = None, tsa_ca_pem: bytes | None = None) -> tuple[list[Finding], int]:
    """Check the whole vault; returns (findings, number of entries). No findings: intact.

    RFC 3161 tokens in ``timestamps/`` are verified against the entries they name (and the TSA's CA certificate
    ``tsa_ca_pem`` when given); a token that a ``timestamp`` entry logged but that is missing is reported too.

    ``trusted_keys`` (hex public keys) default to ``keys/trusted.pub`` of the vault; pass them from outside the
    vault (the report, a colleague) to detect a vault whose log and key list were both replaced.
    """
    ed25519, _, invalid_sig = _crypto()
    v = Vault(Path(root))
    if not v.log_path.is_file():
        raise CustodyError(f"{root} is not an evidence vault (no custody.jsonl)")
    if trusted_keys is None:
        trusted_keys = v.trusted_path.read_text().split() if v.trusted_path.is_file() else []
    trusted = {k.strip().lower() for k in trusted_keys if k.strip()}
    findings: list[Finding] = []
    prev_hash = GENESIS
    expected_seq = 0
    objects: dict[str, str] = {}  # sha -> where it was ingested
    hashes_by_seq: dict[int, str] = {}
    tokens: dict[str, str] = {}  # token file name -> where it was logged
    n = 0
    with v.log_path.open("rb") as fh:
        lines = fh.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, raw in enumerate(lines, start=1):
        where = f"custody.jsonl line {lineno}"
        try:
            e = json.loads(raw)
            if not isinstance(e, dict):
                raise ValueError("not an object")
        except ValueError:
            findings.append(Finding(where, "not a valid entry (edited or corrupted)"))
            prev_hash = None
            expected_seq += 1
            continue
        n += 1
        seq = e.get("seq")
        where = f"custody.jsonl line {lineno} (seq {seq})"
        if seq != expected_seq:
            kind = ("an entry is missing before it (deletion)" if isinstance(seq, int) and seq > expected_seq
                    else "out of order or inserted")
            findings.append(Finding(where, f"sequence number {seq}, expected {expected_seq}: {kind}"))
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
        try:
            h = entry_hash(e)
        except CustodyError as exc:
            findings.append(Finding(where, f"invalid content ({exc})"))
            prev_hash = e.get("hash")
            continue
        if h != e.get("hash"):
            findings.append(Finding(where, "content does not match its hash: the entry was edited"))
        if prev_hash is not None and e.get("prev") != prev_hash:
            findings.append(Finding(where, "chain broken: `prev` is not the hash of the entry before it "
                                           "(an entry was deleted, inserted or moved)"))
        key_hex = str(e.get("key", ""))
        try:
            pub = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
            pub.verify(bytes.fromhex(str(e.get("sig", ""))), bytes.fromhex(str(e.get("hash", ""))))
        except (ValueError, invalid_sig):
            findings.append(Finding(where, "signature does not verify"))
        if key_hex.lower() not in trusted:
            findings.append(Finding(where, f"signed by a key that is not trusted ({key_hex[:16]}...): "
                                           "the signing key was swapped"))
        if e.get("action") == "ingest" and isinstance(e.get("object"), str):
            objects.setdefault(e["object"], where)
        if e.get("action") == "timestamp" and isinstance(e.get("details"), dict):
            tokens[str(e["details"].get("token", ""))] = where
        if isinstance(seq, int) and isinstance(e.get("hash"), str) and _SHA.match(e["hash"]):
            hashes_by_seq[seq] = e["hash"]
        prev_hash = e.get("hash")
    if expected_head is not None and prev_hash != expected_head:
        findings.append(Finding("custody.jsonl end", f"last entry hash {str(prev_hash)[:16]}... is not the recorded "
                                                     f"head {expected_head[:16]}...: entries removed from the end "
                                                     "or added after it"))
    for sha, where in objects.items():
        try:
            p = v.object_path(sha)
        except CustodyError:
            findings.append(Finding(where, f"ingest entry names an invalid object {sha!r}"))
            continue
        if not p.is_file():
            findings.append(Finding(f"objects/{sha[:2]}/{sha}", f"stored original is missing (ingested at {where})"))
        elif sha256_file(p) != sha:
            findings.append(Finding(f"objects/{sha[:2]}/{sha}", "stored original was modified (SHA-256 differs)"))
    if v.objects.is_dir():
        for p in sorted(v.objects.rglob("*")):
            if p.is_file() and p.name not in objects:
                findings.append(Finding(str(p.relative_to(v.root)), "file in the object store that no entry "
                                                                    "registered (inserted)"))
    if tokens or (v.root / "timestamps").is_dir():
        from skytrace.forensics.timestamp import verify_timestamps

        problems, _ = verify_timestamps(v.root, hashes_by_seq, tsa_ca_pem)
        findings.extend(Finding(w, p) for w, p in problems)
        for name, where in tokens.items():
            if not (v.root / "timestamps" / name).is_file():
                findings.append(Finding(f"timestamps/{name}", f"timestamp token is missing (logged at {where})"))
    return findings, n
