"""RFC 3161 trusted timestamps of the custody log's head: proof, from a third party, that the log existed by then.

A hash chain shows that no entry was changed *relative to the head*; it cannot show *when* the head existed, nor
stop someone from rebuilding a shorter log. A time-stamping authority (TSA, RFC 3161) signs ``(hash, time)``: the
token binds the head entry's hash to the TSA's clock, so truncating or rewriting the log before that time is
detectable by anyone holding the token and the TSA's certificate.

- The *message imprint* is the head entry's ``hash`` (already the SHA-256 of its canonical JSON), algorithm
  SHA-256; a fresh 64-bit nonce and ``certReq`` are sent, so the reply carries the TSA certificate.
- Tokens are stored in ``VAULT/timestamps/<seq>-<hash[:16]>.tsr`` (the DER ``TimeStampToken``) and logged
  (action ``timestamp``, with the TSA's time, serial and the token's SHA-256).
- Verification (:func:`verify_token`) follows RFC 3161 sec. 2.4.2 and RFC 5652 sec. 5.4: the token is CMS
  SignedData over a TSTInfo; the imprint must equal the entry hash; the signed attributes' message digest must
  equal the digest of the TSTInfo; the signature over the DER SET of signed attributes must verify with the
  signer certificate's key (RSA PKCS#1 v1.5 or ECDSA); the signer certificate must carry the critical
  ``timeStamping`` extended key usage; with a trusted CA certificate (``--tsa-ca``) it must be issued by that CA
  and valid at the token's time.

ASN.1 is parsed and built with asn1crypto (the TSP/CMS definitions), signatures and certificates are checked with
``cryptography``. Reference: C. Adams et al., RFC 3161 *Time-Stamp Protocol (TSP)*, 2001; RFC 5816 (ESSCertIDv2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from skytrace.errors import SkytraceError

MAX_RESPONSE_BYTES = 1 << 20
TIMESTAMPING_EKU = "1.3.6.1.5.5.7.3.8"
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512, "sha1": hashlib.sha1}


class TimestampError(SkytraceError):
    """A timestamp could not be obtained, or a token does not verify."""


def _asn1():
    try:
        from asn1crypto import algos, cms, core, tsp
    except ImportError:  # pragma: no cover - depends on the install
        raise TimestampError("RFC 3161 timestamps need the forensics extra: pip install 'skytrace[forensics]'"
                             ) from None
    return algos, cms, core, tsp


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says: the TSA's time (UTC, ISO 8601), serial, policy and signer subject."""

    gen_time: str
    serial: str
    policy: str
    tsa_subject: str
    digest_hex: str


def build_request(digest: bytes, nonce: int) -> bytes:
    """DER ``TimeStampReq`` for a SHA-256 ``digest`` (version 1, nonce, certReq true)."""
    algos, _, _, tsp = _asn1()
    if len(digest) != 32:
        raise TimestampError("the message imprint must be a SHA-256 digest (32 bytes)")
    req = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                            "hashed_message": digest},
        "nonce": nonce, "cert_req": True})
    return req.dump()


def token_from_response(resp_der: bytes, nonce: int | None = None) -> bytes:
    """The DER ``TimeStampToken`` of a ``TimeStampResp``; error if the TSA refused or the nonce differs."""
    _, _, _, tsp = _asn1()
    try:
        resp = tsp.TimeStampResp.load(resp_der)
        status = resp["status"]["status"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the TSA's reply is not a TimeStampResp ({exc})") from None
    if status not in ("granted", "granted_with_mods"):
        text = resp["status"]["status_string"].native if resp["status"]["status_string"] else None
        raise TimestampError(f"the TSA refused the request: {status}{' (' + '; '.join(text) + ')' if text else ''}")
    token = resp["time_stamp_token"]
    if nonce is not None:
        got = token["content"]["encap_content_info"]["content"].parsed["nonce"].native
        if got != nonce:
            raise TimestampError("the TSA's reply carries another nonce (a replayed or foreign reply)")
    return token.dump()


def request_token(url: str, digest: bytes, timeout_s: float = 20.0) -> bytes:
    """Ask the TSA at ``url`` (HTTP POST, ``application/timestamp-query``) for a token over ``digest``."""
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"TSA URL must be http:// or https:// (got {url!r})")
    nonce = secrets.randbits(63)
    req = urllib.request.Request(url, data=build_request(digest, nonce), method="POST",
                                 headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as fh:
            body = fh.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise TimestampError(f"cannot reach the TSA at {url}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"the TSA's reply is larger than {MAX_RESPONSE_BYTES} bytes")
    return token_from_response(body, nonce)


def _verify_signature(cert, signature: bytes, data: bytes, hash_name: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    algo = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
            "sha1": hashes.SHA1()}[hash_name]
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algo))
        else:
            raise TimestampError(f"unsupported TSA key type {type(key).__name__}")
    except InvalidSignature:
        raise TimestampError("the token's signature does not verify with the TSA certificate") from None


def verify_token(token_der: bytes, digest: bytes, ca_pem: bytes | None = None) -> TimestampInfo:
    """Verify an RFC 3161 token over ``digest`` (see the module docstring); raises TimestampError if it fails."""
    _, cms, _, tsp = _asn1()
    from cryptography import x509

    try:
        ci = cms.ContentInfo.load(token_der)
        if ci["content_type"].native != "signed_data":
            raise TimestampError("the token is not CMS SignedData")
        sd = ci["content"]
        eci = sd["encap_content_info"]
        if eci["content_type"].native != "tst_info":
            raise TimestampError("the token does not hold a TSTInfo")
        tst_der = eci["content"].contents
        tst = tsp.TSTInfo.load(tst_der)
        imprint = tst["message_imprint"]
        signers = list(sd["signer_infos"])
        certs = [c.chosen for c in (sd["certificates"] or []) if c.name == "certificate"]
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the token is not valid DER/CMS ({exc})") from None
    if imprint["hash_algorithm"]["algorithm"].native != "sha256" or imprint["hashed_message"].native != digest:
        raise TimestampError("the token timestamps another hash than this log entry's")
    if len(signers) != 1:
        raise TimestampError(f"the token has {len(signers)} signers, expected 1")
    si = signers[0]
    hash_name = si["digest_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise TimestampError(f"unsupported digest algorithm {hash_name}")
    attrs = {a["type"].native: a["values"][0].native for a in si["signed_attrs"]}
    if attrs.get("content_type") != "tst_info":
        raise TimestampError("the signed content-type attribute is not TSTInfo")
    if attrs.get("message_digest") != _HASHES[hash_name](tst_der).digest():
        raise TimestampError("the TSTInfo was altered (its digest differs from the signed one)")
    sid = si["sid"]
    signer = None
    for c in certs:
        if sid.name == "issuer_and_serial_number":
            if (c.issuer == sid.chosen["issuer"] and c.serial_number == sid.chosen["serial_number"].native):
                signer = c
        elif c.key_identifier == sid.chosen.native:
            signer = c
    if signer is None:
        raise TimestampError("the token does not carry the TSA's certificate (request it with certReq)")
    cert = x509.load_der_x509_certificate(signer.dump())
    signed_attrs = si["signed_attrs"].dump()
    signed_attrs = b"\x31" + signed_attrs[1:]  # RFC 5652 5.4: signed over the explicit SET OF tag, not [0]
    _verify_signature(cert, si["signature"].native, signed_attrs, hash_name)
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError("the signer certificate has no extended key usage (timeStamping required)") from None
    if not eku.critical or [u.dotted_string for u in eku.value] != [TIMESTAMPING_EKU]:
        raise TimestampError("the signer certificate is not a TSA certificate (critical EKU timeStamping only)")
    gen_time = tst["gen_time"].native
    if ca_pem is not None:
        try:
            ca = x509.load_pem_x509_certificate(ca_pem)
        except ValueError as exc:
            raise TimestampError(f"cannot read the TSA's CA certificate ({exc})") from None
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature or a name/algorithm mismatch
            raise TimestampError(f"the TSA certificate was not issued by the trusted CA ({exc or 'bad signature'})"
                                 ) from None
        for c in (cert, ca):
            if not (c.not_valid_before_utc <= gen_time <= c.not_valid_after_utc):
                raise TimestampError(f"certificate {c.subject.rfc4514_string()} was not valid at the token's time")
    return TimestampInfo(gen_time=gen_time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         serial=str(tst["serial_number"].native), policy=str(tst["policy"].native),
                         tsa_subject=cert.subject.rfc4514_string(), digest_hex=digest.hex())


def timestamp_head(vault, url: str, actor: str, ca_pem: bytes | None = None, timeout_s: float = 20.0
                   ) -> tuple[Path, TimestampInfo]:
    """Timestamp the vault's head entry at the TSA ``url``, store the token and log it."""
    n, head = vault.head()
    if n == 0:
        raise TimestampError("the custody log is empty")
    digest = bytes.fromhex(head)
    token = request_token(url, digest, timeout_s)
    info = verify_token(token, digest, ca_pem)
    d = vault.root / "timestamps"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{n - 1}-{head[:16]}.tsr"
    path.write_bytes(token)
    vault.append("timestamp", actor, head, {"seq": str(n - 1), "tsa": url[:300], "gen_time": info.gen_time,
                                            "serial": info.serial, "token": path.name,
                                            "token_sha256": hashlib.sha256(token).hexdigest()})
    return path, info


def verify_timestamps(root: Path, hashes_by_seq: dict[int, str], ca_pem: bytes | None = None
                      ) -> tuple[list[tuple[str, str]], list[TimestampInfo]]:
    """Check every stored token against the entry it names; returns (problems as (where, what), verified)."""
    problems: list[tuple[str, str]] = []
    ok: list[TimestampInfo] = []
    d = Path(root) / "timestamps"
    if not d.is_dir():
        return problems, ok
    for p in sorted(d.glob("*.tsr")):
        where = f"timestamps/{p.name}"
        try:
            seq = int(p.name.split("-", 1)[0])
        except ValueError:
            problems.append((where, "token file name does not name an entry (<seq>-<hash>.tsr)"))
            continue
        h = hashes_by_seq.get(seq)
        if h is None:
            problems.append((where, f"timestamps entry seq {seq}, which the log does not hold (truncated?)"))
            continue
        try:
            ok.append(verify_token(p.read_bytes(), bytes.fromhex(h), ca_pem))
        except TimestampError as exc:
            problems.append((where, f"token does not verify for seq {seq}: {exc}"))
    return problems, ok
