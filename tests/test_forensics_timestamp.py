"""RFC 3161 timestamps of the custody log's head against a real TSA: ``openssl ts -reply`` behind a loopback HTTP
server, with a test CA and TSA certificate made here. The tokens are verified by skytrace and cross-checked with
``openssl ts -verify``."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from skytrace.cli import app
from skytrace.forensics.custody import Vault, verify_vault
from skytrace.forensics.timestamp import TimestampError, timestamp_head, verify_token

OPENSSL = shutil.which("openssl") or "openssl"  # the Debian package; CI images have it

TSA_CNF = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {d}
serial = {d}/tsaserial
crypto_device = builtin
signer_cert = {d}/tsa.crt
certs = {d}/ca.crt
signer_key = {d}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _cert(subject: str, key, issuer_name: str, issuer_key, ca: bool, days: int = 30) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return b.sign(issuer_key, hashes.SHA256())


def _write_ca(d: Path, name: str) -> tuple[Path, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert(name, key, name, key, ca=True)
    p = d / f"{name}.crt"
    p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return p, key


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    """A running TSA on 127.0.0.1: (url, ca.pem path, dir)."""
    d = tmp_path_factory.mktemp("tsa")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("skytrace test CA", ca_key, "skytrace test CA", ca_key, ca=True)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = _cert("skytrace test TSA", tsa_key, "skytrace test CA", ca_key, ca=False)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "tsa.crt").write_bytes(tsa_cert.public_bytes(serialization.Encoding.PEM))
    (d / "tsa.key").write_bytes(tsa_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (d / "tsaserial").write_text("01\n")
    (d / "tsa.cnf").write_text(TSA_CNF.format(d=d))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:  # openssl keeps the serial in a file
                (d / "req.tsq").write_bytes(body)
                r = subprocess.run([OPENSSL, "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile",
                                    str(d / "req.tsq"), "-out", str(d / "resp.tsr")], capture_output=True)
                reply = (d / "resp.tsr").read_bytes() if r.returncode == 0 else b""
            self.send_response(200 if reply else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa", d / "ca.crt", d
    server.shutdown()
    th.join()


@pytest.fixture()
def vault(tmp_path: Path) -> Vault:
    v = Vault.create(tmp_path / "vault", actor="investigator A")
    v.append("note", actor="investigator A", details={"text": "debris DEB-1 photographed"})
    return v


def test_timestamp_head_verifies_and_openssl_agrees(vault: Vault, tsa) -> None:
    url, ca, d = tsa
    n, head = vault.head()
    path, info = timestamp_head(vault, url, "investigator A", ca.read_bytes())
    assert info.digest_hex == head
    assert info.tsa_subject == "CN=skytrace test TSA"
    gen = dt.datetime.strptime(info.gen_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - gen).total_seconds()) < 600
    last = list(vault.entries())[-1]
    assert last["action"] == "timestamp" and last["object"] == head and last["details"]["token"] == path.name
    findings, _ = verify_vault(vault.root, tsa_ca_pem=ca.read_bytes())
    assert findings == []
    # the independent check: openssl verifies the same token over the same digest
    r = subprocess.run([OPENSSL, "ts", "-verify", "-digest", head, "-in", str(path), "-token_in", "-CAfile", str(ca),
                        "-untrusted", str(d / "tsa.crt")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Verification: OK" in r.stdout


def test_token_for_another_hash_or_altered_is_rejected(vault: Vault, tsa) -> None:
    url, ca, _ = tsa
    path, _ = timestamp_head(vault, url, "investigator A")
    token = path.read_bytes()
    head = bytes.fromhex(list(vault.entries())[-2]["hash"])
    verify_token(token, head)
    with pytest.raises(TimestampError, match="another hash"):
        verify_token(token, bytes(32))
    # flip one byte inside the signature (the token's tail)
    bad = bytearray(token)
    bad[-5] ^= 0x01
    with pytest.raises(TimestampError):
        verify_token(bytes(bad), head)
    # a CA that did not issue the TSA certificate
    other_ca, _ = _write_ca(path.parent, "other CA")
    with pytest.raises(TimestampError, match="not issued by the trusted CA"):
        verify_token(token, head, other_ca.read_bytes())


def test_verify_reports_tampered_and_missing_tokens(vault: Vault, tsa) -> None:
    url, ca, _ = tsa
    path, _ = timestamp_head(vault, url, "investigator A")
    bad = bytearray(path.read_bytes())
    bad[-5] ^= 0x01
    path.write_bytes(bytes(bad))
    problems = [str(f) for f in verify_vault(vault.root, tsa_ca_pem=ca.read_bytes())[0]]
    assert any(p.startswith(f"timestamps/{path.name}: token does not verify") for p in problems), problems
    path.unlink()
    problems = [str(f) for f in verify_vault(vault.root)[0]]
    assert problems == [f"timestamps/{path.name}: timestamp token is missing (logged at custody.jsonl line 3 (seq 2))"]


def test_cli_timestamp_and_verify(vault: Vault, tsa) -> None:
    url, ca, _ = tsa
    runner = CliRunner()
    r = runner.invoke(app, ["forensics", "timestamp", "--tsa", url, "--tsa-ca", str(ca), "--vault", str(vault.root),
                            "--actor", "investigator A"])
    assert r.exit_code == 0, r.output
    assert "timestamped" in r.output and "CN=skytrace test TSA" in r.output
    r = runner.invoke(app, ["forensics", "verify", "--vault", str(vault.root), "--tsa-ca", str(ca)])
    assert r.exit_code == 0, r.output
    # an unreachable TSA is a one-line error (the CLI's main prints it and exits 2), not a traceback
    r = subprocess.run([sys.executable, "-c", "from skytrace.cli import main; main()", "forensics", "timestamp",
                        "--tsa", "http://127.0.0.1:9/none", "--vault", str(vault.root), "--actor", "A"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: cannot reach the TSA") and "Traceback" not in r.stderr
