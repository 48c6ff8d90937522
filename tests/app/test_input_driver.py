"""The console's terminal driver: its input thread sleeps until a key, and still reads every key.

A real pipe stands in for the terminal, read by the driver's real input thread and Textual's own
escape-sequence parser; what is checked is what a user would notice (keys, a lone Escape, a
prompt exit) and what an SSH session on a production host pays while nobody types (wake-ups).
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

from console.ui.input_driver import QuietLinuxDriver

IDLE_S = 2.0


def wake_ups(thread: threading.Thread) -> int:
    """How many times the kernel has switched ``thread`` out so far: each sleep that ends is one."""
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        return sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)


class Terminal:
    """A driver of ``driver_class`` reading a pipe in its own input thread; what it parses is in ``events``."""

    def __init__(self, driver_class: type[LinuxDriver]) -> None:
        self.read_fd, self.write_fd = os.pipe()

        async def make() -> LinuxDriver:  # a Driver is made on the loop that runs its app
            return driver_class(App())

        self.driver = asyncio.run(make())
        self.driver.fileno = self.read_fd
        self.events: queue.Queue[Message] = queue.Queue()
        self.driver.process_message = self.events.put  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.driver.run_input_thread, daemon=True)
        self.thread.start()

    def key(self, data: bytes, timeout: float = 2.0) -> str:
        os.write(self.write_fd, data)
        return str(getattr(self.events.get(timeout=timeout), "key", None))

    def close(self) -> None:
        self.driver.exit_event.set()
        self.thread.join(5)
        self.driver.close()
        os.close(self.read_fd)
        os.close(self.write_fd)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Terminals made in the test, closed after it (with the SIGTSTP/SIGCONT handlers a driver installs)."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTSTP, signal.SIGCONT)}
    made: list[Terminal] = []
    yield made
    for terminal in made:
        if terminal.thread.is_alive():
            terminal.close()
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def idle_wake_ups(terminal: Terminal) -> int:
    time.sleep(0.3)
    before = wake_ups(terminal.thread)
    time.sleep(IDLE_S)
    return wake_ups(terminal.thread) - before


def test_the_input_thread_sleeps_while_nobody_types_and_still_reads_each_key(terminals: list[Terminal]) -> None:
    terminal = Terminal(QuietLinuxDriver)
    terminals.append(terminal)
    idle = idle_wake_ups(terminal)
    assert idle <= 2, f"the input thread woke {idle} times in {IDLE_S:g} s with no key pressed"
    assert terminal.key(b"q") == "q"
    assert terminal.key(b"\x1b[A") == "up"  # an escape sequence in one read
    assert terminal.key(b"\x1b") == "escape"  # a lone Escape: a key once the parser's own timeout passes
    assert idle_wake_ups(terminal) <= 2, "a pending Escape left the thread on a beat"
    started = time.monotonic()
    terminal.driver.exit_event.set()  # what the driver's stop does
    terminal.thread.join(2)
    assert not terminal.thread.is_alive(), "the input thread did not stop when the driver did"
    assert time.monotonic() - started < 0.5
    terminal.close()


def test_textuals_own_input_thread_wakes_on_a_beat(terminals: list[Terminal]) -> None:
    """What the driver above replaces, measured the same way: if Textual stops polling, this says so."""
    terminal = Terminal(LinuxDriver)
    terminals.append(terminal)
    assert idle_wake_ups(terminal) >= 10
