"""Every defect of a certificate chain, judged one by one, in plain words.

OpenSSL stops at its first complaint: an expired leaf from a CA nobody trusts
is reported as "unable to get local issuer certificate" and nothing else.
This module looks at the chain the server sent (leaf first, as DER) and at the
trust store, and lists each defect it finds, as {"kind", "detail"}:

- expired / not-yet-valid: any certificate of the chain outside its dates
  ("expired 1.0 day ago (2026-11-30 12:00 UTC)")
- hostname-mismatch: the leaf does not name the host (subjectAltName only,
  as OpenSSL does for Python; a single left-most "*" label is a wildcard)
- self-signed: the leaf signs itself and is not a trusted certificate
- untrusted-root: the chain ends at a CA certificate that leads to no
  trusted root (the root sent, or an intermediate whose issuer is unknown)
- missing-intermediate: the chain ends at a leaf (or another non-CA
  certificate) whose issuer was not sent and is not in the trust store: the
  server forgot its intermediate. (A leaf issued directly by an unknown root
  looks the same from here: nothing tells the two apart without the issuer.)
- weak-key: RSA or DSA below 2048 bits, EC below 224 bits, in any
  certificate the server sent
- weak-signature: a certificate signed with SHA-1 or MD5 (a self-signed
  root's own signature is not checked by anyone and is not counted)

The trust store is the CA file the probe was given, or the system's default
bundle (ssl.get_default_verify_paths), read once per change of the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import ssl
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.utils import CryptographyDeprecationWarning

from probes.samples import JSONValue

with warnings.catch_warnings():
    # Newer cryptography releases deprecate DSA (51.0 warns on the name): a DSA key is still weak-key
    # evidence while the library can load one, without the library's warning on our stderr.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    _DSA_PUBLIC_KEY: type | None = getattr(dsa, "DSAPublicKey", None)

#: Kinds in the order they are listed after the one OpenSSL named (which always comes first).
KINDS = ("expired", "not-yet-valid", "hostname-mismatch", "self-signed", "untrusted-root", "missing-intermediate",
         "weak-key", "weak-signature")
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
_WEAK_HASHES = {"sha1": "SHA-1", "md5": "MD5"}

Defect = dict[str, JSONValue]


def _load_pem_file(path: str) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    try:
        with warnings.catch_warnings():
            # Bundles carry old roots with quirks (a negative serial number) that cryptography warns about.
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


@functools.lru_cache(maxsize=8)
def _anchors(path: str, version: int) -> tuple[x509.Certificate, ...]:
    return tuple(_load_pem_file(path))


def trust_anchors(ca_file: str | None) -> tuple[x509.Certificate, ...]:
    """The certificates a client trusts: ``ca_file``'s, or the system bundle's (blocking: file reads)."""
    defaults = ssl.get_default_verify_paths()
    path = ca_file or defaults.cafile or defaults.openssl_cafile
    try:
        version = os.stat(path).st_mtime_ns
    except OSError:
        return ()
    return _anchors(path, version)


def who(cert: x509.Certificate) -> str:
    """The certificate in words a person reads: its common name, a leaf's first name, or its RFC 4514 subject."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if names:
        return f"CN={names[0].value!s}"
    if not _is_ca(cert):
        try:  # a leaf without a common name (the modern kind): its first name says which it is
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            first = [str(v) for v in san.get_values_for_type(x509.DNSName)]
            if first:
                return f"the certificate for {first[0]}"
        except x509.ExtensionNotFound:
            pass
    return cert.subject.rfc4514_string() or "(no subject)"


def span(delta: dt.timedelta) -> str:
    """3.2 days, 1.0 day, 5.0 hours, 12 minutes."""
    seconds = abs(delta.total_seconds())
    if seconds >= 86400:
        value, unit = f"{seconds / 86400:.1f}", "day"
    elif seconds >= 3600:
        value, unit = f"{seconds / 3600:.1f}", "hour"
    else:
        value, unit = f"{seconds / 60:.0f}", "minute"
    return f"{value} {unit}" if value in ("1.0", "1") else f"{value} {unit}s"


def stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` signed ``cert``: by the signature, or by name where the signature's algorithm is one
    cryptography will not check (SHA-1, MD5: reported as weak-signature, not as a broken path)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        algorithm = cert.signature_hash_algorithm
        return algorithm is not None and algorithm.name in _WEAK_HASHES
    except (TypeError, InvalidSignature):
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and _issued_by(cert, cert)


def names_host(cert: x509.Certificate, host: str) -> bool:
    """Whether the leaf's subjectAltName covers ``host`` (an address matches an IP entry only)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = host.rstrip(".").lower()
    for pattern in (name.rstrip(".").lower() for name in san.get_values_for_type(x509.DNSName)):
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _san_text(cert: x509.Certificate) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    names += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    return ", ".join(names) or "no names"


def _dates(cert: x509.Certificate, leaf: bool, now: dt.datetime) -> list[Defect]:
    whose = "" if leaf else f"{'intermediate' if _is_ca(cert) else 'certificate'} {who(cert)} "
    out: list[Defect] = []
    if cert.not_valid_after_utc < now:
        out.append({"kind": "expired", "detail": f"{whose}expired {span(now - cert.not_valid_after_utc)} ago "
                                                 f"({stamp(cert.not_valid_after_utc)})"})
    if cert.not_valid_before_utc > now:
        out.append({"kind": "not-yet-valid",
                    "detail": f"{whose}not valid until {stamp(cert.not_valid_before_utc)} "
                              f"(in {span(cert.not_valid_before_utc - now)})"})
    return out


def _strength(cert: x509.Certificate, leaf: bool) -> list[Defect]:
    out: list[Defect] = []
    name = who(cert)
    key = cert.public_key()
    algo = "RSA" if isinstance(key, rsa.RSAPublicKey) else \
        "DSA" if _DSA_PUBLIC_KEY is not None and isinstance(key, _DSA_PUBLIC_KEY) else None
    bits = getattr(key, "key_size", None)
    if algo is not None and isinstance(bits, int) and bits < MIN_RSA_BITS:
        out.append({"kind": "weak-key", "detail": f"{name} has a {bits}-bit {algo} key "
                                                  f"(at least {MIN_RSA_BITS} needed)"})
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        out.append({"kind": "weak-key", "detail": f"{name} has a {key.curve.key_size}-bit EC key ({key.curve.name}, "
                                                  f"at least {MIN_EC_BITS} needed)"})
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in _WEAK_HASHES and (leaf or not _self_signed(cert)):
        out.append({"kind": "weak-signature", "detail": f"{name} is signed with {_WEAK_HASHES[algorithm.name]}"})
    return out


def _path(sent: list[x509.Certificate], anchors: tuple[x509.Certificate, ...],
          trust: str) -> list[Defect]:
    """Walk from the leaf towards a trusted root, through what was sent, then the trust store."""
    leaf = sent[0]
    trusted = set(anchors)
    current, used = leaf, [leaf]
    for _step in range(10):
        if current in trusted:
            return []
        if any(_issued_by(current, anchor) for anchor in anchors if anchor.subject == current.issuer):
            return []
        if _self_signed(current):
            if current is leaf:
                return [{"kind": "self-signed", "detail": f"{who(leaf)} is signed by itself, not by a CA "
                                                          f"({trust} does not hold it)"}]
            return [{"kind": "untrusted-root", "detail": f"the chain ends at the root {who(current)}, which is not "
                                                         f"in {trust}"}]
        issuer = next((c for c in sent if c not in used and c.subject == current.issuer and _issued_by(current, c)),
                      None)
        if issuer is None:
            issuer_name = current.issuer.rfc4514_string()
            if _is_ca(current):
                return [{"kind": "untrusted-root",
                         "detail": f"the chain ends at {who(current)}, issued by {issuer_name}, which is not "
                                   f"in {trust}"}]
            sent_text = "only " + who(leaf) if len(sent) == 1 else f"{len(sent)} certificates"
            whose = "its issuer" if current is leaf else f"the issuer of {who(current)}"
            return [{"kind": "missing-intermediate",
                     "detail": f"the server sent {sent_text}; {whose} ({issuer_name}) is neither sent nor in "
                               f"{trust}: install the full chain (leaf then intermediate)"}]
        used.append(issuer)
        current = issuer
    return [{"kind": "untrusted-root", "detail": f"no path to a root in {trust} within 10 certificates"}]


def chain_defects(ders: list[bytes], server_name: str, ca_file: str | None,
                  now: dt.datetime | None = None) -> list[Defect]:
    """Every defect of the chain ``ders`` (as sent, leaf first) for a client calling ``server_name``."""
    if not ders:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    sent = [x509.load_der_x509_certificate(der) for der in ders]
    leaf = sent[0]
    trust = f"the CA file {ca_file}" if ca_file else "the system trust store"
    defects: list[Defect] = []
    for index, cert in enumerate(sent):
        defects += _dates(cert, index == 0, now)
    if not names_host(leaf, server_name):
        defects.append({"kind": "hostname-mismatch",
                        "detail": f"the certificate is for {_san_text(leaf)}, not {server_name}"})
    defects += _path(sent, trust_anchors(ca_file), trust)
    for index, cert in enumerate(sent):
        defects += _strength(cert, index == 0)
    return defects


def ordered(defects: list[Defect], first_kind: str | None, first_detail: str | None) -> list[Defect]:
    """``defects`` with the one OpenSSL named first (added from its message if we did not find it), then by kind."""
    rank = {kind: i for i, kind in enumerate(KINDS)}
    out = sorted(defects, key=lambda d: rank.get(str(d["kind"]), len(KINDS)))
    if first_kind is None:
        return out
    named = [d for d in out if d["kind"] == first_kind]
    if not named:
        named = [{"kind": first_kind, "detail": first_detail or first_kind}]
    return named + [d for d in out if d["kind"] != first_kind]

