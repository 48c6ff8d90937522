"""Stop a private tmux server (`tmux -L NAME`) and remove its socket file, which tmux leaves behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def socket_path(name: str) -> Path:
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / name


def stop_tmux_server(name: str) -> None:
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)
    socket_path(name).unlink(missing_ok=True)
