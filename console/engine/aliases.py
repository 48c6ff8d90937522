"""Share mode's aliases: every address, host name and user name gets one stand-in for the whole incident.

``10.20.30.40`` always reads ``addr-1``, ``db-primary.corp`` always ``host-2``,
``alice`` always ``user-1``, on every screen, in every screen dump, in the
console and in every browser viewer, and after a restart. The mapping lives
in one JSON file in the incident's folder (``AliasMap``); it holds the real
names, so it is written 0600 and never drawn. Several processes share it (the
console and each viewer of ``warroom serve``): a new alias is assigned under
an exclusive ``flock`` after re-reading the file, so two processes never give
one name two aliases or one alias two names.

``Redactor`` does the text side: addresses are found by pattern (any IPv4 or
IPv6 literal, validated), host and user names by knowing them (the targets,
the SSH hosts, this host's name, names the probes reported). It has no Textual
in it; console/ui/share.py applies it to every line the screen draws.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from console.engine import paths
from probes.samples import LOCAL_HOST, Sample

#: The three kinds of name share mode hides, and the prefix of their aliases.
KINDS = {"addr": "addr", "host": "host", "user": "user"}
FILE_NAME = "aliases.json"
FORMAT_VERSION = 1
#: Accounts every Linux host has: naming them identifies nobody, and "root" is also an ordinary word
#: on screen ("root would show more", "root cause") that hiding would only garble.
SYSTEM_USERS = frozenset({"root", "nobody", "daemon", "postgres", "redis", "mysql", "www-data", "nginx", "sshd",
                          "messagebus", "syslog", "_apt"})
#: A one-letter name would match every such word on screen; longer ones match whole words only.
MIN_NAME_LEN = 2
#: A dotted name with an alphabetic last label: "db.corp", "api.example.com" (not "3.11" or "e.g").
_DOTTED_NAME = re.compile(r"(?<![\w.@-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,23}[a-z0-9])"
                          r"(?![\w-]|\.\w)", re.IGNORECASE)
#: Endings of dotted words that are files, not hosts (error texts name files: "payload.py", "config.toml").
_FILE_SUFFIXES = frozenset({"py", "pyc", "toml", "tcss", "json", "jsonl", "txt", "md", "pcap", "pcapng", "log", "html",
                            "svg", "png", "sock", "conf", "cfg", "yaml", "yml", "ini", "so", "gz", "zst", "sh", "csv",
                            "pem", "crt", "key", "tmp", "lock", "service"})
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
#: Candidates only; ipaddress decides ("12:30:45" and MAC addresses are not IPv6 addresses).
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9a-f.]*:[0-9a-f.]*:)[0-9a-f:.]{2,45}(?:%[\w.-]+)?(?![\w:])", re.IGNORECASE)
#: Field names whose string values are host names, wherever they occur in a Sample's fields
#: ("name" only in DNS samples: elsewhere it names a process or a pool).
_NAME_KEYS = frozenset({"sni", "san", "server_name", "hostname", "cname_chain", "qname", "peer_name"})
_DNS_NAME_KEYS = _NAME_KEYS | {"name"}
_USER_KEYS = frozenset({"user", "username"})
#: Snapshot kinds whose fields are thousands of rows of addresses (found by pattern) and numbers.
_BULK_KINDS = frozenset({"conns"})


def aliases_path(folder: Path) -> Path:
    """The alias file of an incident (or recording) folder."""
    return folder / FILE_NAME


def default_aliases_path() -> Path:
    """Where the aliases live when no incident folder was named: under the user's data directory."""
    return aliases_path(paths.data_dir() / "share")


class AliasMap:
    """Real name -> alias, per kind, kept in one JSON file shared by every process of the incident.

    ``path`` None keeps the map in memory only (tests, a console that cannot write its data directory).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._maps: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        self._stamp: tuple[int, int] | None = None
        self.load()

    def get(self, kind: str, real: str) -> str | None:
        return self._maps[kind].get(_key(kind, real))

    def known(self, kind: str) -> dict[str, str]:
        """A copy of one kind's mapping (real -> alias)."""
        return dict(self._maps[kind])

    def alias(self, kind: str, real: str) -> str:
        """The alias of ``real``, assigning the next free one (and saving it) the first time it is seen."""
        key = _key(kind, real)
        found = self._maps[kind].get(key)
        if found is not None:
            return found
        return self.assign(kind, [real])[key]

    def assign(self, kind: str, reals: Iterable[str]) -> dict[str, str]:
        """Aliases for several names at once: one lock and one write for all the new ones."""
        keys = [_key(kind, real) for real in reals]
        with self._locked():
            self._read()  # another process may have named some of them meanwhile
            mapping = self._maps[kind]
            fresh = [key for key in dict.fromkeys(keys) if key not in mapping]
            number = _highest(mapping.values(), KINDS[kind])
            for key in fresh:
                number += 1
                mapping[key] = f"{KINDS[kind]}-{number}"
            if fresh:
                self._write()
        return {key: mapping[key] for key in keys}

    def load(self) -> bool:
        """Re-read the file if another process changed it; True when it did."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
        except OSError:
            return False
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return False
        self._read()
        return True

    def _read(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # no file yet, or a torn one: keep what is in memory; the next write repairs it
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        for kind in KINDS:
            section = data.get(kind) if isinstance(data, dict) else None
            if isinstance(section, dict):
                self._maps[kind].update({str(k): str(v) for k, v in section.items()})

    def _write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": FORMAT_VERSION, **self._maps}, out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
        stat = self.path.stat()
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self.path = None  # unwritable: aliases stay consistent in this process, and nothing leaks
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)


def _key(kind: str, real: str) -> str:
    return real if kind == "user" else real.lower()  # DNS names and hex digits ignore case


def _highest(aliases: Iterable[str], prefix: str) -> int:
    tails = (alias.rsplit("-", 1)[1] for alias in aliases if alias.startswith(prefix + "-"))
    return max((int(tail) for tail in tails if tail.isdigit()), default=0)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def host_of(target: str) -> str | None:
    """The host part of a target as typed: "db:5432", "[::1]:80", "https://u@api.x/p" -> db, ::1, api.x."""
    text = target.strip()
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    if text.startswith("["):
        return text[1:].split("]", 1)[0] or None
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text or None


class Redactor:
    """Replaces addresses, known host names and known user names in text by their aliases."""

    def __init__(self, aliases: AliasMap) -> None:
        self.aliases = aliases
        self.generation = 0
        """Bumped whenever a new host or user name becomes known (cached redactions are then stale)."""
        self._names: dict[str, str] = {}
        """Known name (host or user) -> its kind."""
        self._pattern: re.Pattern[str] | None = None
        self._seen_strings: set[str] = set()
        for kind in ("host", "user"):
            for real in aliases.known(kind):
                self._names.setdefault(real, kind)
        self._compile()

    # -- learning names ---------------------------------------------------------

    def learn(self, kind: str, names: Iterable[str | None]) -> bool:
        """Make names known (and give each its alias now); True if any was new."""
        fresh = []
        for name in names:
            if not name or name == LOCAL_HOST or _is_ip(name):
                continue
            if kind == "user" and (name in SYSTEM_USERS or name.startswith("systemd-")):
                continue
            if len(name) < MIN_NAME_LEN:
                continue
            key = _key(kind, name)
            if key not in self._names:
                self._names[key] = kind
                fresh.append(key)
        if not fresh:
            return False
        self.aliases.assign(kind, fresh)
        self.generation += 1
        self._compile()
        return True

    def learn_target(self, target: str) -> bool:
        return self.learn("host", [host_of(target)])

    def learn_this_host(self) -> bool:
        """This machine's names and the user running warroom."""
        names = {socket.gethostname(), socket.getfqdn()}
        changed = self.learn("host", names)
        with contextlib.suppress(Exception):  # no passwd entry in a container: nothing to hide then
            changed = self.learn("user", [getpass.getuser()]) or changed
        return changed

    def learn_sample(self, sample: Sample) -> bool:
        """Host and user names a Sample carries: its target's and host's, and names the probe reported."""
        hosts: set[str] = set()
        users: set[str] = set()
        if sample.target:
            host = host_of(sample.target)
            if host:
                hosts.add(host)
        if sample.host != LOCAL_HOST:
            hosts.add(sample.host)
        if sample.kind not in _BULK_KINDS:
            _walk(sample.fields, None, hosts, users, _DNS_NAME_KEYS if sample.kind == "dns" else _NAME_KEYS)
            if sample.message and sample.message not in self._seen_strings:
                self._remember(sample.message)
                hosts.update(_dotted_names(sample.message))
        changed = self.learn("host", hosts)
        return self.learn("user", users) or changed

    def follow_file(self) -> bool:
        """Take in names another process (the console, another viewer) added to the alias file."""
        if not self.aliases.load():
            return False
        fresh = False
        for kind in ("host", "user"):
            for real in self.aliases.known(kind):
                if real not in self._names:
                    self._names[real] = kind
                    fresh = True
        if fresh:
            self.generation += 1
            self._compile()
        return fresh

    def _remember(self, text: str) -> None:
        if len(self._seen_strings) > 50_000:  # bounded: a long incident repeats the same messages
            self._seen_strings.clear()
        self._seen_strings.add(text)

    # -- redacting text -------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every address and known name replaced by its alias."""
        return "".join(part for part, _start, _end in self.pieces(text))

    def pieces(self, text: str) -> list[tuple[str, int, int]]:
        """``text`` as (piece, start, end) in order: unchanged runs and replacements of text[start:end]."""
        spans = self.spans(text)
        out: list[tuple[str, int, int]] = []
        pos = 0
        for start, end, alias in spans:
            if start > pos:
                out.append((text[pos:start], pos, start))
            out.append((alias, start, end))
            pos = end
        if pos < len(text) or not out:
            out.append((text[pos:], pos, len(text)))
        return out

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, alias) of every address and known name in ``text``, not overlapping, in order."""
        found: list[tuple[int, int, str, str]] = []  # start, end, kind, real
        if ":" in text:
            found += [(m.start(), m.end(), "addr", m.group(0)) for m in _IPV6.finditer(text) if _is_ip(m.group(0))]
        if "." in text:
            found += [(m.start(), m.end(), "addr", m.group(0)) for m in _IPV4.finditer(text) if _is_ip(m.group(0))]
        if self._pattern is not None:
            for m in self._pattern.finditer(text):
                kind = self._names.get(_key("host", m.group(0))) or self._names.get(m.group(0))
                if kind is not None:
                    found.append((m.start(), m.end(), kind, m.group(0)))
        if not found:
            return []
        found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
        chosen: list[tuple[int, int, str, str]] = []
        for item in found:
            if chosen and item[0] < chosen[-1][1]:
                continue  # inside a longer match already taken ("10.0.0.1" inside "::ffff:10.0.0.1")
            chosen.append(item)
        addresses = [real for _s, _e, kind, real in chosen if kind == "addr" and self.aliases.get("addr", real) is None]
        if addresses:
            self.aliases.assign("addr", addresses)
        return [(start, end, self.aliases.alias(kind, real)) for start, end, kind, real in chosen]

    def _compile(self) -> None:
        if not self._names:
            self._pattern = None
            return
        names = sorted(self._names, key=len, reverse=True)  # longest first: "db.corp" before "db"
        body = "|".join(re.escape(name) for name in names)
        self._pattern = re.compile(rf"(?<![\w.-])(?:{body})(?![\w-]|\.\w)", re.IGNORECASE)


def _dotted_names(text: str) -> set[str]:
    return {m.group(1) for m in _DOTTED_NAME.finditer(text)
            if m.group(1).rsplit(".", 1)[1].lower() not in _FILE_SUFFIXES and not _is_ip(m.group(1))}


def _walk(value: Any, key: str | None, hosts: set[str], users: set[str], name_keys: frozenset[str]) -> None:
    """Collect names from a Sample's fields: values under name-like keys, and dotted names in any string."""
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, str(k), hosts, users, name_keys)
    elif isinstance(value, list):
        for item in value:
            _walk(item, key, hosts, users, name_keys)
    elif isinstance(value, str) and value:
        if key in _USER_KEYS:
            users.add(value)
        elif key in name_keys and " " not in value:
            hosts.add(value)
        elif key == "subject" or key == "issuer":
            hosts.update(cn for cn in re.findall(r"CN=([^,+]+)", value) if "." in cn)
        else:
            hosts.update(_dotted_names(value))
