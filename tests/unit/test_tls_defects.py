"""probes/tls_defects.py on certificates made here (trustme): wording, name matching, every defect at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from probes import tls_defects


def _chain(leaf: trustme.LeafCert) -> list[bytes]:
    return [x509.load_pem_x509_certificate(pem.bytes()).public_bytes(Encoding.DER) for pem in leaf.cert_chain_pems]


def test_spans_read_as_a_person_would_say_them() -> None:
    assert tls_defects.span(dt.timedelta(days=1)) == "1.0 day"
    assert tls_defects.span(dt.timedelta(days=2, hours=12)) == "2.5 days"
    assert tls_defects.span(dt.timedelta(hours=5)) == "5.0 hours"
    assert tls_defects.span(dt.timedelta(minutes=12)) == "12 minutes"
    assert tls_defects.stamp(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)) == "2026-11-30 12:00 UTC"


def test_a_wildcard_covers_one_label_only() -> None:
    leaf = trustme.CA().issue_cert("*.example.test", "10.0.0.7")
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    assert tls_defects.names_host(cert, "api.example.test")
    assert tls_defects.names_host(cert, "API.Example.Test.")
    assert not tls_defects.names_host(cert, "a.b.example.test")
    assert not tls_defects.names_host(cert, "example.test")
    assert tls_defects.names_host(cert, "10.0.0.7") and not tls_defects.names_host(cert, "10.0.0.8")


def test_every_defect_of_one_chain_is_listed(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.create_child_ca().issue_cert("api.test")
    ca_file = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))  # a root that did not sign this chain
    later = dt.datetime(3001, 1, 1, tzinfo=dt.timezone.utc)  # past every date of the chain (trustme: 3000)
    defects = tls_defects.chain_defects(_chain(leaf), "www.test", str(ca_file), now=later)
    kinds = [d["kind"] for d in defects]
    assert kinds.count("expired") == 2  # the leaf and the intermediate
    assert "hostname-mismatch" in kinds and "untrusted-root" in kinds
    expired = [str(d["detail"]) for d in defects if d["kind"] == "expired"]
    assert expired[0].startswith("expired ") and expired[1].startswith("intermediate ")
    assert tls_defects.ordered(defects, "untrusted-root", "x")[0]["kind"] == "untrusted-root"


def test_openssl_complaint_we_cannot_see_still_comes_first() -> None:
    ordered = tls_defects.ordered([{"kind": "expired", "detail": "expired 1.0 day ago"}], "cert-invalid",
                                  "unsupported certificate purpose")
    assert ordered == [{"kind": "cert-invalid", "detail": "unsupported certificate purpose"},
                       {"kind": "expired", "detail": "expired 1.0 day ago"}]
