"""`warroom serve`'s guard rails, as a script meets them: loopback by default, a token off loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.serve.helpers import ROOT, serving


def warroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.10", "::"])
def test_non_loopback_bind_without_token_is_refused_with_exit_2(bind: str) -> None:
    result = warroom("serve", "--bind", bind)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--token" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args, says", [
    (["--port", "0"], "--port must be 1-65535"),
    (["--bind", "not-an-address"], "--bind takes an IP address"),
    (["--token", "short"], "--token must be at least 8"),
    (["--theme", "pink"], "unknown theme 'pink'"),
])
def test_bad_serve_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = warroom("serve", *args)
    assert result.returncode == 2 and says in result.stderr and result.stderr.count("\n") == 1, result.stderr


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_token_guards_the_page_and_the_page_loads_nothing_from_elsewhere(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}
    with serving(env, "--token", "s3cret-token-1") as (port, _process):
        assert get(f"http://127.0.0.1:{port}/")[0] == 403
        assert get(f"http://127.0.0.1:{port}/?token=wrong-token-1")[0] == 403
        status, page = get(f"http://127.0.0.1:{port}/?token=s3cret-token-1")
        assert status == 200 and "/ws/s3cret-token-1" in page
        links = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r'url\("?([^")]+)"?\)', page)
        assert links and all(link.startswith(f"http://127.0.0.1:{port}/") for link in links), links
        assert "googleapis" not in page


def test_off_loopback_with_a_token_warns(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}
    with serving(env, "--bind", "0.0.0.0", "--token", "s3cret-token-1") as (port, process):
        assert get(f"http://127.0.0.1:{port}/?token=s3cret-token-1")[0] == 200
        process.terminate()
        _out, err = process.communicate(timeout=10)
    assert "WARNING" in err and "0.0.0.0" in err and "token" in err
