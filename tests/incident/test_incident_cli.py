"""Bad input to the incident commands is one line and exit 2; the lists and reports read the folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main


@pytest.mark.parametrize(("argv", "words"), [
    (["--incident", "../escape"], "--incident '../escape': use letters"),
    (["--incident", "x", "--json"], "does not go with --json"),
    (["report", "no-such"], "no incident called 'no-such'"),
    (["report", "a/b/c"], "neither a recording file nor an incident folder"),
    (["report"], "the following arguments are required"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_report_of_a_file_that_is_not_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not json\n")
    assert main(["report", str(junk)]) == 2
    assert "holds no Samples" in capsys.readouterr().err


def test_incidents_with_none_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents"]) == 0
    assert "warroom --incident NAME" in capsys.readouterr().out


def test_config_secrets_reach_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from console.settings.arguments import console_parser
    from console.settings.settings import build_settings

    monkeypatch.setenv("API_TOKEN_FOR_TEST", "tok-from-env-123")
    config = tmp_path / "c.toml"
    config.write_text('secrets = ["literal-secret-1"]\nsecret_env = ["API_TOKEN_FOR_TEST", "UNSET_VAR_X"]\n')
    settings = build_settings(console_parser().parse_args(["--config", str(config), "--incident", "db-1"]))
    assert settings.secrets == ["literal-secret-1", "tok-from-env-123"] and settings.incident == "db-1"
    config.write_text("secrets = [1]\n")
    with pytest.raises(Exception, match="secrets and secret_env must be lists of strings"):
        build_settings(console_parser().parse_args(["--config", str(config)]))
