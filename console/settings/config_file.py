"""The config file: TOML, so it can hold comments and is read without a new dependency.

Looked up at --config PATH, else $XDG_CONFIG_HOME/warroom/config.toml (if it
exists). Every section is optional; an unknown key or a wrong type is one
clear error line, never a traceback.
"""

from __future__ import annotations

import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ConfigError(ValueError):
    """The config file is unreadable or wrong; the message names the file and the key."""


#: Top-level keys and the type each must have. Sections other modules read
#: (pools, postgres, redis, metrics, hosts, capture) are passed on as they are.
KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    "targets": list,
    "interval": (int, float),
    "theme": str,
    "record": (str, bool),
    "record_max_mb": (int, float),
    "record_keep_days": (int, float),
    "record_keep_mb": (int, float),
    "pools": list,
    "postgres": (dict, list),
    "redis": (dict, list),
    "metrics": (dict, list),
    "hosts": list,
    "ssh": dict,
    "capture": dict,
    "thresholds": dict,
    "conns": dict,
    "secrets": list,
    "secret_env": list,
}

#: The most a retention setting may say (a hundred years; an exabyte): past that it is a typo.
RETENTION_LIMITS = {"record_keep_days": 36500.0, "record_keep_mb": 1e12}

#: A config file larger than this is not a config file.
MAX_CONFIG_BYTES = 1 << 20

#: The sections console.settings.pools reads.
POOL_SECTIONS = ("pools", "postgres", "redis", "metrics", "thresholds", "conns")


@dataclass
class Config:
    path: Path | None = None
    targets: list[str] = field(default_factory=list)
    interval: float | None = None
    theme: str | None = None
    record: str | bool | None = None
    """A path to record to, false to record nothing, true (or absent) for the default folder."""
    record_max_mb: float | None = None
    record_keep_days: float | None = None
    """Automatic recordings older than this many days are removed at start (0: kept however old)."""
    record_keep_mb: float | None = None
    """Automatic recordings past this many megabytes in all are removed, oldest first (0: no limit)."""
    sections: dict[str, Any] = field(default_factory=dict)
    """The raw sections other modules parse (pools, postgres, redis, metrics, hosts, capture)."""


def hosts_section(config: Config) -> dict[str, Any]:
    """The [ssh] table with the top-level ``hosts`` list folded in, as console.settings.hosts reads it."""
    section = dict(config.sections.get("ssh", {}))
    if "hosts" in config.sections:
        section["hosts"] = config.sections["hosts"]
    return section


def pools_section(config: Config) -> dict[str, Any]:
    """The host-pane sections (pools, postgres, redis, metrics, thresholds, conns) as one dict."""
    return {key: config.sections[key] for key in POOL_SECTIONS if key in config.sections}


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "warroom" / "config.toml"


def read_regular_file(file: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of ``file``, refusing what is not a regular file or is larger than ``max_bytes``.

    A FIFO, a device or a directory would hang or never end; checked before it is opened for reading
    (opened non-blocking, so a FIFO with no writer cannot hang the open either).
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file")
            raise ConfigError(f"{what} {file} is {kind}: give the path of a regular file")
        if info.st_size > max_bytes:
            raise ConfigError(f"{what} {file} is {info.st_size:,} bytes, more than the {max_bytes:,} a "
                              f"{what} may be: is it the right file?")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ConfigError(f"{what} {file} is more than {max_bytes:,} bytes: is it the right file?")
    return data


def _reject_nan(value: Any, where: str) -> None:
    """TOML allows nan and inf; no setting of ours means either."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value}: give a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nan(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nan(item, f"{where}[{i}]")


def load_config(path: str | Path | None) -> Config:
    """Read ``path`` (or the default file when it exists); raise ConfigError when it is wrong."""
    explicit = path is not None
    file = Path(path) if path is not None else default_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return Config()
    raw = read_regular_file(file, "config file", MAX_CONFIG_BYTES)
    try:
        # utf-8-sig: a file saved "with BOM" (Windows editors) is still the same TOML.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {file} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(f"config file {file}: unknown key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
        expected = KNOWN_KEYS[key]
        takes_bool = expected is bool or (isinstance(expected, tuple) and bool in expected)
        if not isinstance(value, expected) or (isinstance(value, bool) and not takes_bool):
            raise ConfigError(f"config file {file}: {key!r} has the wrong type "
                              f"({'true/false' if isinstance(value, bool) else type(value).__name__})")
        _reject_nan(value, f"config file {file}: {key!r}")
    targets = data.get("targets", [])
    if not all(isinstance(t, str) for t in targets):
        raise ConfigError(f"config file {file}: 'targets' must be a list of strings")
    interval = data.get("interval")
    if interval is not None and interval <= 0:
        raise ConfigError(f"config file {file}: 'interval' must be more than 0 seconds, not {interval}")
    record_max_mb = data.get("record_max_mb")
    if record_max_mb is not None and (isinstance(record_max_mb, bool) or not 0 < record_max_mb < 1e7):
        raise ConfigError(f"config file {file}: 'record_max_mb' must be a number of megabytes above 0")
    keep = {key: data.get(key) for key in ("record_keep_days", "record_keep_mb")}
    for key, value in keep.items():
        if value is not None and not 0 <= value <= RETENTION_LIMITS[key]:
            unit = "days" if key.endswith("days") else "megabytes"
            raise ConfigError(f"config file {file}: {key!r} must be a number of {unit} from 0 (no limit) to "
                              f"{RETENTION_LIMITS[key]:g}, not {value}")
    sections = {k: v for k, v in data.items()
                if k not in {"targets", "interval", "theme", "record", "record_max_mb", *keep}}
    return Config(path=file, targets=list(targets), interval=float(interval) if interval else None,
                  theme=data.get("theme"), record=data.get("record"),
                  record_max_mb=float(record_max_mb) if record_max_mb is not None else None,
                  record_keep_days=_float(keep["record_keep_days"]), record_keep_mb=_float(keep["record_keep_mb"]),
                  sections=sections)


def _float(value: float | None) -> float | None:
    return float(value) if value is not None else None
