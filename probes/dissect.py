"""The slow path: scapy reads the few packets the header path hands over.

scapy is imported here only, and only the layers needed, on first use
(``scapy.all`` costs most of a second; DNS alone about 0.3 s). Every method
returns None instead of raising, because a capture is full of truncated and
malformed packets and one of them must not stop the summary.
"""

from __future__ import annotations

import importlib
from typing import Any

from probes.pcapstream import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    Dissector,
)

#: Modules that ``preload`` imports, so the first dissection does not stall a live capture.
SCAPY_MODULES = ("scapy.layers.dns", "scapy.layers.tls.record", "scapy.layers.tls.handshake",
                 "scapy.layers.tls.extensions", "scapy.layers.http", "scapy.layers.l2", "scapy.layers.inet",
                 "scapy.layers.inet6")

_TLS_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def preload() -> None:
    """Import the scapy layers used below (blocking: call it in a thread)."""
    for name in SCAPY_MODULES:
        importlib.import_module(name)


class ScapyDissector(Dissector):
    """Dissector backed by scapy's DNS, TLS, HTTP and link-layer classes."""

    def __init__(self) -> None:
        self._mods: dict[str, Any] = {}

    def _mod(self, name: str) -> Any:
        mod = self._mods.get(name)
        if mod is None:
            mod = self._mods[name] = importlib.import_module(name)
        return mod

    def dns_question(self, payload: bytes) -> tuple[str, str] | None:
        try:
            dns_mod = self._mod("scapy.layers.dns")
            msg = dns_mod.DNS(payload)
            question = msg.qd[0] if msg.qd else None
            if question is None:
                return None
            qname = question.qname.decode("ascii", "replace") if isinstance(question.qname, bytes) \
                else str(question.qname)
            qtype = question.get_field("qtype").i2repr(question, question.qtype)
            return qname or ".", str(qtype)
        except Exception:  # malformed or cut-off packets are expected
            return None

    def tls_client_hello(self, payload: bytes) -> tuple[str, str] | None:
        """(SNI or "", highest offered version) from a record holding a ClientHello."""
        try:
            self._mod("scapy.layers.tls.handshake")
            ext = self._mod("scapy.layers.tls.extensions")
            # The snap length often cuts a ClientHello short; scapy then rejects the whole record. Padding
            # it to its declared length with zeros lets scapy read every extension that was captured (the
            # zeros parse as empty extensions, which are skipped below).
            declared = 5 + ((payload[3] << 8) | payload[4]) if len(payload) >= 5 else 0
            cut = len(payload) < declared
            if cut:
                payload = payload + bytes(min(declared, 1 << 14) - len(payload))
            record = self._mod("scapy.layers.tls.record").TLS(payload)
            hello = record.getlayer("TLS Handshake - Client Hello")
            if hello is None:
                return None
            sni = ""
            version = int(hello.version)
            saw_versions = False
            for extension in hello.ext or []:
                if isinstance(extension, ext.TLS_Ext_ServerName):
                    names = extension.servernames or []
                    if names:
                        raw = names[0].servername
                        sni = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
                elif isinstance(extension, ext.TLS_Ext_SupportedVersion_CH):
                    # GREASE values (0x?a?a) are not versions; the highest real one is what is offered.
                    offered = [int(v) for v in extension.versions or [] if int(v) in _TLS_VERSIONS]
                    if offered:
                        version = max(offered)
                        saw_versions = True
            if "\x00" in sni:  # the name itself was cut: show what was captured, marked
                sni = sni.split("\x00", 1)[0] + "…" if sni[0] != "\x00" else ""
            label = _TLS_VERSIONS.get(version, f"0x{version:04x}")
            # Cut before supported_versions: a TLS 1.3 client may hide behind the legacy 1.2 field.
            return sni, label + "?" if cut and not saw_versions else label
        except Exception:  # cut off by the snap length, or not TLS at all
            return None

    def tls_alert_name(self, description: int) -> str:
        try:
            names = self._mod("scapy.layers.tls.record")._tls_alert_description
            return str(names.get(description, f"alert {description}"))
        except Exception:  # private table moved in another scapy version
            return f"alert {description}"

    def http_host(self, payload: bytes) -> str | None:
        try:
            request = self._mod("scapy.layers.http").HTTPRequest(payload)
            host = request.Host
            if not host:
                return None
            return host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
        except Exception:  # a request cut off before its Host header
            return None

    def summary(self, linktype: int, frame: bytes) -> str | None:
        try:
            l2 = self._mod("scapy.layers.l2")
            self._mod("scapy.layers.inet")
            self._mod("scapy.layers.inet6")
            cls = {LINKTYPE_ETHERNET: l2.Ether, LINKTYPE_LINUX_SLL: l2.CookedLinux,
                   LINKTYPE_NULL: l2.Loopback, LINKTYPE_LOOP: l2.Loopback}.get(linktype)
            if linktype == LINKTYPE_LINUX_SLL2:
                cls = getattr(l2, "CookedLinuxV2", None)
            if cls is None:
                return f"linktype {linktype}, {len(frame)} bytes"
            return str(cls(frame).summary())
        except Exception:  # a sample line is a nicety, never a failure
            return None
