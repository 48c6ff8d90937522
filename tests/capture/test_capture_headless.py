"""The capture code in probes/ stays headless and cheap to import: no Textual, scapy only when dissecting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_capture_modules_loads_neither_textual_nor_scapy() -> None:
    code = ("import json, sys, probes.capture, probes.pcapstream, probes.dissect, console.commands.capture, "
            "console.diagnosis.capture\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'scapy', 'rich'})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_default_filter_leaves_out_this_consoles_ssh_session() -> None:
    from probes.capture import default_filter

    assert default_filter({}) == "not port 22"
    over_ssh = default_filter({"SSH_CONNECTION": "127.0.0.9 51234 127.0.0.1 2222"})
    assert over_ssh == "not port 22 and not (host 127.0.0.9 and tcp port 51234 and tcp port 2222)"
    assert default_filter({"SSH_CONNECTION": "x; rm -rf / 1 2 3"}) == "not port 22"  # never pasted unchecked
