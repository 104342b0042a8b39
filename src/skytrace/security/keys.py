"""Sensor keys: one Ed25519 key pair per sensor node, and the registry of public keys the service trusts.

The registry is a small JSON file (``keys.json``) that the operator edits only through ``skytrace keys``::

    {"version": 1, "sensors": {"ac-1": [{"key_id": "3f9c...", "public_key": "<base64 raw 32 bytes>",
                                         "created": 1795381200.0, "status": "active"}]}}

A sensor has at most one ``active`` key. ``rotate`` adds a new active key and retires the old one (reports signed
with a retired key are rejected: a node that rotated must use its new key); ``revoke`` marks every key of the
sensor revoked (a stolen or compromised node). Keys are never deleted, so the history of who could speak for a
sensor stays auditable. Private keys stay on the node (PKCS#8 PEM, file mode 0600); the registry holds only
public keys. Ed25519: RFC 8032, via the ``cryptography`` package (OpenSSL).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from skytrace.errors import SkytraceError

MAX_REGISTRY_BYTES = 16 << 20  # a registry of 100k sensors is ~15 MB; anything larger is not ours
KEY_STATUSES = ("active", "retired", "revoked")


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - the extra is missing
        raise SkytraceError("sensor keys need the cryptography package: pip install 'skytrace[security]'") from None
    return ed25519, serialization


def key_id(public_raw: bytes) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def generate_private_key(path: str | os.PathLike) -> bytes:
    """Create an Ed25519 private key at ``path`` (PEM, mode 0600; refuses to overwrite); returns the public key."""
    ed25519, serialization = _crypto()
    p = Path(path)
    if p.exists():
        raise SkytraceError(f"{p} exists; refusing to overwrite a private key")
    priv = ed25519.Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public_raw_of(priv)


def public_raw_of(priv) -> bytes:
    _, serialization = _crypto()
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_private_key(path: str | os.PathLike):
    """An Ed25519 private key from a PEM file, with a one-line error for anything else."""
    ed25519, serialization = _crypto()
    p = Path(path)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SkytraceError(f"{p}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SkytraceError(f"{p}: not an Ed25519 key")
    return key


def load_public_key_file(path: str | os.PathLike) -> bytes:
    """Raw 32-byte public key from a PEM public key file or a file holding its base64."""
    ed25519, serialization = _crypto()
    p = Path(path)
    try:
        data = p.read_bytes()[:10_000]
    except OSError as exc:
        raise SkytraceError(f"{p}: {exc.strerror}") from None
    if b"BEGIN PUBLIC KEY" in data:
        try:
            pub = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise SkytraceError(f"{p}: bad PEM public key ({exc})") from None
        if not isinstance(pub, ed25519.Ed25519PublicKey):
            raise SkytraceError(f"{p}: not an Ed25519 public key")
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return decode_public(data.strip().decode("ascii", "replace"), str(p))


def decode_public(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise SkytraceError(f"{where}: public key is not base64") from None
    if len(raw) != 32:
        raise SkytraceError(f"{where}: an Ed25519 public key has 32 bytes, got {len(raw)}")
    return raw


@dataclass
class KeyEntry:
    key_id: str
    public_key: bytes
    created: float
    status: str = "active"
    changed: float | None = None  # when it was retired or revoked


@dataclass
class KeyRegistry:
    """Public keys per sensor id (see the module docstring); ``path`` is where :meth:`save` writes."""

    sensors: dict[str, list[KeyEntry]] = field(default_factory=dict)
    path: Path | None = None

    # ----------------------------------------------------------------------------------------------- file
    @classmethod
    def load(cls, path: str | os.PathLike, missing_ok: bool = False) -> KeyRegistry:
        p = Path(path)
        if not p.exists():
            if missing_ok:
                return cls(path=p)
            raise SkytraceError(f"{p}: key registry not found (create it with `skytrace keys register`)")
        if p.stat().st_size > MAX_REGISTRY_BYTES:
            raise SkytraceError(f"{p}: key registry larger than {MAX_REGISTRY_BYTES} bytes")
        try:
            doc = json.loads(p.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SkytraceError(f"{p}: not a JSON key registry ({str(exc)[:120]})") from None
        if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("sensors"), dict):
            raise SkytraceError(f"{p}: expected {{\"version\": 1, \"sensors\": {{...}}}}")
        reg = cls(path=p)
        for sid, entries in doc["sensors"].items():
            if not isinstance(entries, list):
                raise SkytraceError(f"{p}: sensors.{sid} must be a list of keys")
            out = []
            for i, e in enumerate(entries):
                where = f"{p}: sensors.{sid}[{i}]"
                if not isinstance(e, dict) or e.get("status") not in KEY_STATUSES:
                    raise SkytraceError(f"{where}: expected a key with status one of {', '.join(KEY_STATUSES)}")
                raw = decode_public(str(e.get("public_key", "")), where)
                created = e.get("created")
                if not isinstance(created, int | float) or isinstance(created, bool):
                    raise SkytraceError(f"{where}: created must be a number")
                out.append(KeyEntry(key_id(raw), raw, float(created), e["status"], e.get("changed")))
            if sum(k.status == "active" for k in out) > 1:
                raise SkytraceError(f"{p}: sensor {sid!r} has more than one active key")
            reg.sensors[str(sid)] = out
        return reg

    def save(self, path: str | os.PathLike | None = None) -> Path:
        p = Path(path) if path is not None else self.path
        if p is None:
            raise SkytraceError("no path to save the key registry to")
        doc = {"version": 1, "sensors": {sid: [
            {"key_id": k.key_id, "public_key": base64.b64encode(k.public_key).decode(), "created": k.created,
             "status": k.status, **({"changed": k.changed} if k.changed is not None else {})} for k in keys]
            for sid, keys in sorted(self.sensors.items())}}
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, p)  # atomic: a crash never leaves a half-written registry
        return p

    # ------------------------------------------------------------------------------------------ operations
    def register(self, sensor: str, public_raw: bytes, now: float | None = None) -> KeyEntry:
        """First key of a sensor (a sensor that already has a key is rotated, not registered)."""
        if any(k.status == "active" for k in self.sensors.get(sensor, [])):
            raise SkytraceError(f"sensor {sensor!r} already has an active key: use `skytrace keys rotate`")
        return self._add(sensor, public_raw, now)

    def rotate(self, sensor: str, public_raw: bytes, now: float | None = None) -> KeyEntry:
        """A new active key for ``sensor``; its previous active key is retired."""
        now = time.time() if now is None else now
        keys = self.sensors.get(sensor, [])
        if not any(k.status == "active" for k in keys):
            raise SkytraceError(f"sensor {sensor!r} has no active key to rotate (register it, or it was revoked)")
        for k in keys:
            if k.status == "active":
                k.status, k.changed = "retired", now
        return self._add(sensor, public_raw, now)

    def revoke(self, sensor: str, now: float | None = None) -> int:
        """Revoke every key of ``sensor``; returns how many keys were still usable."""
        now = time.time() if now is None else now
        if sensor not in self.sensors:
            raise SkytraceError(f"sensor {sensor!r} is not in the key registry")
        n = 0
        for k in self.sensors[sensor]:
            if k.status != "revoked":
                k.status, k.changed, n = "revoked", now, n + 1
        return n

    def _add(self, sensor: str, public_raw: bytes, now: float | None) -> KeyEntry:
        if not sensor or len(sensor) > 200:
            raise SkytraceError("a sensor id must be 1-200 characters")
        kid = key_id(public_raw)
        for sid, keys in self.sensors.items():
            if any(k.key_id == kid for k in keys):
                raise SkytraceError(f"this public key is already registered (sensor {sid!r}); keys are not reused")
        entry = KeyEntry(kid, public_raw, time.time() if now is None else now)
        self.sensors.setdefault(sensor, []).append(entry)
        return entry

    def lookup(self, sensor: str, kid: str) -> KeyEntry | None:
        for k in self.sensors.get(sensor, ()):
            if k.key_id == kid:
                return k
        return None
