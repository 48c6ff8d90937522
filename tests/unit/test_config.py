"""The config file: good files load, bad ones are one clear line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.settings.config_file import ConfigError, load_config
from tests.unit.test_cli import warroom


def test_good_file_loads(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('targets = ["127.0.0.1:5432"]\ninterval = 0.5\ntheme = "warroom-light"\n'
                    '[[pools]]\nname = "orders-db"\nremote = "127.0.0.1:5432"\nmax = 20\n')
    config = load_config(file)
    assert config.targets == ["127.0.0.1:5432"]
    assert config.interval == 0.5
    assert config.sections["pools"] == [{"name": "orders-db", "remote": "127.0.0.1:5432", "max": 20}]


def test_missing_default_file_is_fine_but_missing_explicit_file_is_not(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config(None).targets == []
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("text, says", [
    ("targets = [", "not valid TOML"),
    ("colour = 'red'", "unknown key 'colour'"),
    ("targets = 'x'", "'targets' has the wrong type"),
    ("targets = [1]", "list of strings"),
    ("interval = -1", "more than 0"),
])
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=says):
        load_config(file)
    result = warroom("--config", str(file), "--json", "--duration", "1")
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_targets_from_the_file_are_probed(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('targets = ["127.0.0.1:1"]\n')
    result = warroom("--config", str(file), "--json", "--duration", "1.5")
    kinds = {(json.loads(line)["kind"], json.loads(line)["target"]) for line in result.stdout.splitlines()}
    assert ("tcp", "127.0.0.1:1") in kinds
