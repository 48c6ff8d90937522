"""One redactor for everything an incident writes: screen text, recording, timeline, report, rules.

It applies probes/redact.py's helpers (userinfo and token-like query values in
URLs, passwords in key=value DSNs), masks Authorization, Cookie and API-key
headers and bearer tokens in free text (a pasted log line or a note often
carries them), and removes every literal secret it was given: passwords in
the targets' URLs and the config's DSNs, the values of ``password_env``
variables, and whatever the config marks secret (``secrets`` and
``secret_env``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from probes.redact import MASK, redact, redact_url, scrub, url_secrets

#: A URL in running text: it stops before brackets, quotes and backslashes, and never ends in punctuation
#: (the "," or ")" after a URL in a sentence is not part of it).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>(){}\\`|]*[^\s\"'<>(){}\\`|.,;:!?]")
#: A header line (or "Header: value" inside a longer line) whose value is a credential.
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-amz-security-token"
    r"|x-csrf-token|x-vault-token)(\s*[:=]\s*)(\"?)([^\r\n\"]*)")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{6,})")
#: Cheap test for the regex path: a line with none of these needs only the literal scrub.
_TRIGGERS = re.compile(r"(?i)://|authorization|cookie|bearer|basic |token|passw|pwd|secret|api[-_]?key")


class Redactor:
    """Masks secrets in text and in nested JSON-like values."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # 1-2 character "secrets" would shred ordinary words (the same rule as probes/redact.py).
        self.secrets: set[str] = {s for s in secrets if s and len(s) >= 3}

    def add(self, *secrets: str) -> None:
        self.secrets.update(s for s in secrets if s and len(s) >= 3)

    def add_from_text(self, text: str) -> None:
        """Learn the secrets inside ``text`` (a URL's password, a DSN's password=...) so they vanish everywhere."""
        for url in _URL.findall(text):
            self.add(*url_secrets(url))
            userinfo = url.split("://", 1)[1].split("@", 1)
            if len(userinfo) == 2 and ":" in userinfo[0]:
                self.add(userinfo[0].split(":", 1)[1])
        for m in re.finditer(r"(?i)\b(?:password|passwd|pwd|token|secret)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", text):
            self.add(m.group(1).strip("'"))
        for m in _HEADER.finditer(text):
            value = m.group(4).strip()
            self.add(value)
            bearer = _BEARER.search(value)
            if bearer:
                self.add(bearer.group(2))

    def text(self, text: str) -> str:
        if not text:
            return text
        out = scrub(text, self.secrets)
        if not _TRIGGERS.search(out):
            return out
        # URLs get redact_url; the text between them redact() (its key=value rules would eat a URL's tail).
        pieces: list[str] = []
        last = 0
        for m in _URL.finditer(out):
            pieces += [redact(out[last:m.start()]), redact_url(m.group(0))]
            last = m.end()
        out = "".join([*pieces, redact(out[last:])])
        out = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", out)
        out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
        return out

    def value(self, value: Any) -> Any:
        """``value`` with every string inside it redacted (dicts, lists, tuples; keys too)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def needs(self, text: str) -> bool:
        """Whether ``text`` may hold something to mask (cheap; for the recording's hot path)."""
        return any(s in text for s in self.secrets) or bool(_TRIGGERS.search(text))


def config_secrets(secret_values: Iterable[str], secret_envs: Iterable[str]) -> list[str]:
    """Literal secrets from the config's ``secrets`` list and the values of its ``secret_env`` variables."""
    out = [s for s in secret_values if s]
    out += [os.environ[name] for name in secret_envs if os.environ.get(name)]
    return out


def redactor_for(targets: Iterable[str] = (), *, secrets: Iterable[str] = (), dsns: Iterable[str] = (),
                 password_envs: Iterable[str] = ()) -> Redactor:
    """The redactor for an incident: the targets' and DSNs' passwords, env passwords, config secrets."""
    redactor = Redactor(secrets)
    for text in [*targets, *dsns]:
        redactor.add_from_text(text)
    redactor.add(*(os.environ[name] for name in password_envs if os.environ.get(name)))
    return redactor
