"""The config file: TOML, so it can hold comments and is read without a new dependency.

Looked up at --config PATH, else $XDG_CONFIG_HOME/warroom/config.toml (if it
exists). Every section is optional; an unknown key or a wrong type is one
clear error line, never a traceback.
"""

from __future__ import annotations

import os
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
    "record": str,
    "pools": list,
    "postgres": (dict, list),
    "redis": (dict, list),
    "metrics": (dict, list),
    "hosts": list,
    "ssh": dict,
    "capture": dict,
    "thresholds": dict,
    "conns": dict,
}

#: The sections console.settings.pools reads.
POOL_SECTIONS = ("pools", "postgres", "redis", "metrics", "thresholds", "conns")


@dataclass
class Config:
    path: Path | None = None
    targets: list[str] = field(default_factory=list)
    interval: float | None = None
    theme: str | None = None
    record: str | None = None
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


def load_config(path: str | Path | None) -> Config:
    """Read ``path`` (or the default file when it exists); raise ConfigError when it is wrong."""
    explicit = path is not None
    file = Path(path) if path is not None else default_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(f"config file {file}: unknown key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
        if not isinstance(value, KNOWN_KEYS[key]):
            raise ConfigError(f"config file {file}: {key!r} has the wrong type ({type(value).__name__})")
    targets = data.get("targets", [])
    if not all(isinstance(t, str) for t in targets):
        raise ConfigError(f"config file {file}: 'targets' must be a list of strings")
    interval = data.get("interval")
    if interval is not None and interval <= 0:
        raise ConfigError(f"config file {file}: 'interval' must be more than 0 seconds")
    sections = {k: v for k, v in data.items() if k not in {"targets", "interval", "theme", "record"}}
    return Config(path=file, targets=list(targets), interval=float(interval) if interval else None,
                  theme=data.get("theme"), record=data.get("record"), sections=sections)
