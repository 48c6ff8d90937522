"""What the console ships to a remote host: a zip of the probes it asked for and the command that runs it.

Only what the requested probes need travels: the agent, each requested
probe's module and every module of probes/ those import (found by reading
their import statements, lazy ones included), and a pure-Python package such
as dnspython only for the probes that need it. The probes' modules travel as
source, and those a first Sample waits for also as bytecode for the console's
Python (see _add_probe_module). A console asking for tcp and system ships ~100 KB
instead of ~580 KB with all of probes/ and dnspython, so a host starts in less
time and the link carries less.

The zip travels on the SSH channel's stdin right after the command starts, and
the bootstrap (probes.agent.BOOTSTRAP) loads it from an anonymous memory file,
so nothing is written to the host's disk. Only pure-Python packages can travel
this way (zipimport cannot load C extensions): psutil, for one, must already be
installed on the host, and a probe that needs a missing module reports itself
"unavailable" instead of running.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import marshal
import os
import re
import shlex
import threading
import zipfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from probes.agent import (
    AGENT_VERSION,
    BOOTSTRAP,
    DEFAULT_KEEPALIVE_TIMEOUT,
    PROCESS_MARKER,
    QUICK_KINDS,
    TLS_FREE_KINDS,
)
from probes.runtime import ProbeSpec
from probes.samples import SCHEMA_VERSION

#: Pure-Python packages shipped with the agent when they are installed here.
#: dnspython: the dns probe needs it and hosts rarely have it.
DEFAULT_SHIP = ("dns",)

#: Printed by the remote shell when it finds no python to run the agent with.
NO_PYTHON_MARK = "warroom-no-python"

_EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _add_tree(zf: zipfile.ZipFile, root: Path, arc_root: str) -> bool:
    """Add a package's .py files; False (and nothing added) if it has compiled extensions."""
    files: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(_EXTENSION_SUFFIXES):
                return False
            if name.endswith(".py"):
                path = Path(dirpath) / name
                files.append((path, f"{arc_root}/{path.relative_to(root).as_posix()}"))
    for path, arcname in files:
        _add_file(zf, path, arcname)
    return True


def _probes_dir() -> Path:
    probes_dir = _package_dir("probes")
    if probes_dir is None:  # pragma: no cover - we are running from it
        raise RuntimeError("cannot find the probes package to ship")
    return probes_dir


_FROM_SUBMODULE = re.compile(r"^[ \t]*(?:from|import)[ \t]+probes\.(\w+)", re.M)
_FROM_PACKAGE = re.compile(r"^[ \t]*from[ \t]+probes[ \t]+import[ \t]+(?:\(([^)]*)\)|([^#\n]*))", re.M)


@lru_cache(maxsize=256)
def _imports_in(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """The probes/ modules ``path`` imports anywhere in it (function-level imports included).

    Import statements found by pattern, not by parsing: ast.parse of probes/ took 90-160 ms, and it
    sat on a cold host's path (the payload is built when the first host connects). A match inside a
    string only ships a module too many.
    """
    del mtime_ns  # part of the cache key only: an edited file is read again
    text = path.read_text(encoding="utf-8")
    found = set(_FROM_SUBMODULE.findall(text))
    for parenthesized, plain in _FROM_PACKAGE.findall(text):  # "from probes import registry, tls as tls_probe"
        lines = parenthesized.splitlines() if parenthesized else [plain]
        words = ",".join(line.split("#")[0] for line in lines).split(",")
        found.update(word.split()[0] for word in words if word.strip())
    return tuple(sorted(found))


def probe_modules(kinds: Iterable[str]) -> tuple[str, ...]:
    """The modules of probes/ (bare names) an agent running ``kinds`` needs: the agent, each kind's
    module, and everything they import from probes/, transitively."""
    probes_dir = _probes_dir()
    todo = ["agent", *kinds]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        path = probes_dir / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        todo.extend(_imports_in(path, path.stat().st_mtime_ns))
    return tuple(sorted(seen))


def _add_file(zf: zipfile.ZipFile, path: Path, arcname: str) -> None:
    _add_bytes(zf, arcname, path.read_bytes())


def _add_bytes(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    # A fixed date keeps the zip byte-identical between runs (cacheable, comparable).
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _add_probe_module(zf: zipfile.ZipFile, path: Path, arcname: str, *, compiled: bool) -> None:
    """The module's source and, when ``compiled``, beside it its bytecode for this interpreter.

    zipimport cannot cache what it compiles, so an agent compiled every module it imported on
    each start: 25-30 ms of a cold host's ~100 ms of CPU went to the probes' own modules. It tries
    the .pyc first and, when the host's Python is another version (another magic number), goes
    on to the .py. The pyc is "unchecked hash" (PEP 552): nothing compares it with a file date.
    Bytecode is twice the bytes of source, so only the modules a first Sample waits for get it
    (the quick probes' and the agent's, see _compiled_modules); the others, and shipped packages
    (dnspython, h11), are imported in a worker thread after the first Samples and stay source.
    """
    source = path.read_bytes()
    _add_bytes(zf, arcname, source)
    if compiled:
        code = compile(source, arcname, "exec", dont_inherit=True)
        header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
        _add_bytes(zf, arcname + "c", header + marshal.dumps(code))


def _compiled_modules(kinds: Iterable[str]) -> set[str]:
    """The modules of probes/ imported before an agent's first Sample: its own and the quick probes'."""
    return {"__init__", *probe_modules(kind for kind in kinds if kind in QUICK_KINDS)}


_build_lock = threading.Lock()


def build_payload(ship: tuple[str, ...] = DEFAULT_SHIP, kinds: tuple[str, ...] | None = None) -> bytes:
    """The zip the agent runs from: the probes it needs (all of probes/ when ``kinds`` is None) plus the
    pure-Python packages in ``ship``. Built once per argument pair: hosts that start together (each in
    a thread of its own) wait for the first one's zip instead of each zipping dnspython again."""
    with _build_lock:
        return _build_payload(ship, kinds)


@lru_cache(maxsize=16)
def _build_payload(ship: tuple[str, ...], kinds: tuple[str, ...] | None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        probes_dir = _probes_dir()
        names = sorted(p.stem for p in probes_dir.glob("*.py")) if kinds is None else \
            ["__init__", *probe_modules(kinds)]
        compiled = _compiled_modules(names if kinds is None else kinds)
        for name in names:
            _add_probe_module(zf, probes_dir / f"{name}.py", f"probes/{name}.py", compiled=name in compiled)
        for name in ship:
            pkg = _package_dir(name)
            if pkg is not None:
                _add_tree(zf, pkg, name)  # skipped whole when it is not pure Python
    return buf.getvalue()


def python_command(python: str = "python3") -> list[str]:
    """The configured interpreter as argv words (config may say "python3 -S" or a full path)."""
    words = shlex.split(python)
    if not words:
        raise ValueError("empty python command")
    return words


def posix_command(script: str) -> str:
    """Run a one-line POSIX sh script whatever the user's login shell is (bash, zsh, fish, csh ...).

    sshd hands our command to the login shell; wrapping it as ``exec sh -c '...'``
    with no newline and no ``!`` inside keeps every shell's parser out of it.
    """
    if "\n" in script or "\r" in script:
        raise ValueError("remote scripts must be one line")
    return f"exec sh -c {shlex.quote(script)}"


def agent_command(payload_size: int, python: str = "python3", kinds: Sequence[str] = ()) -> str:
    """The remote command that starts the agent for probes of ``kinds``, every word quoted.

    When no interpreter is found the shell prints NO_PYTHON_MARK instead, so
    the console can fall back to what standard commands can tell (ss). The
    bootstrap travels base64-encoded so the command line has no newlines.
    An agent whose probes never speak TLS starts without ssl (probes.agent.TLS_FREE_KINDS).
    """
    words = python_command(python)
    code = base64.b64encode(BOOTSTRAP.encode()).decode()
    launcher = f"import base64;exec(base64.b64decode('{code}'))"
    # -S and "site": site-packages without .pth files or sitecustomize (see probes.agent.BOOTSTRAP).
    # A python configured with -S of its own keeps meaning no site-packages at all.
    site = [] if "-S" in words else ["-S"]
    flags = (["site"] if site else []) + (["nossl"] if kinds and set(kinds) <= TLS_FREE_KINDS else [])
    argv = " ".join(shlex.quote(w) for w in [*words, *site, "-c", launcher, PROCESS_MARKER, str(payload_size),
                                             *flags])
    return posix_command(f"if command -v {shlex.quote(words[0])} >/dev/null 2>&1; then exec {argv}; "
                         f"else echo {NO_PYTHON_MARK}; fi")


def request_line(host: str, specs: Sequence[ProbeSpec], *,
                 keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
                 max_lifetime: float | None = None, deltas: bool = False) -> bytes:
    """The first JSON line the agent reads: versions (the handshake), host name and probes.

    ``deltas`` asks for snapshot kinds (socket table, pools) as changes (probes/snapshot_delta.py)
    instead of whole snapshots.
    """
    request = {"agent": AGENT_VERSION, "schema": SCHEMA_VERSION, "host": host,
               "specs": [s.to_dict() for s in specs], "keepalive_timeout": keepalive_timeout,
               "max_lifetime": max_lifetime, "deltas": deltas}
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"
