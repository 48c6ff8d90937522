"""Textual's Linux driver, with an input thread that sleeps until there is something to do.

Textual's own input thread wakes ten times a second whatever happens (``select(0.1)``), only to
see whether the app is exiting and whether a lone Escape has waited long enough to be a key.
That was 10 of the console's ~60 wake-ups a second and ~0.13% of a core here, on every console,
the ones left running in an SSH session on a production host included. This one sleeps until a
key arrives, the parser's own timeout for a pending escape sequence runs out, or the driver
stops: stopping writes a byte to a pipe the thread also waits on, so exit is as prompt as before.

The loop is Textual 8.2's ``LinuxDriver.run_input_thread`` (pyproject pins textual to 8.2.x)
with only the timeout and the wake pipe changed.
"""

from __future__ import annotations

import contextlib
import os
import selectors
from codecs import getincrementaldecoder
from threading import Event
from typing import Any

from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver


class _WakingEvent(Event):
    """The driver's exit flag: setting it also wakes the input thread's select."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self.wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        if self.wake_fd >= 0:
            with contextlib.suppress(OSError):  # the pipe is full: the thread has a wake-up waiting anyway
                os.write(self.wake_fd, b"x")


class QuietLinuxDriver(LinuxDriver):
    """LinuxDriver whose input thread wakes for input, an escape sequence's timeout, or exit; never on a beat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.exit_event = _WakingEvent(wake_write)

    def close(self) -> None:
        super().close()
        event = self.exit_event
        if isinstance(event, _WakingEvent) and event.wake_fd >= 0:
            wake_write, event.wake_fd = event.wake_fd, -1  # no later set() may write to a reused fd number
            for fd in (self._wake_read, wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def run_input_thread(self) -> None:
        """Wait for input and dispatch events."""
        selector = selectors.SelectSelector()
        fileno, wake = self.fileno, self._wake_read
        selector.register(fileno, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        feed, tick = parser.feed, parser.tick
        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def timeout() -> float | None:
            """Until a pending escape sequence times out (a lone Escape becomes the key), else none."""
            due = parser._timeout_time
            return None if due is None else max(0.0, due - get_time())

        def process_selector_events(selector_events: list[tuple[selectors.SelectorKey, int]],
                                    final: bool = False) -> None:
            ready = [(key, mask) for key, mask in selector_events if key.fd != wake]
            if len(ready) < len(selector_events):
                with contextlib.suppress(OSError):  # drained: the next select sleeps again
                    read(wake, 512)
            for last, (_key, mask) in loop_last(ready):
                if mask & selectors.EVENT_READ:
                    unicode_data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not unicode_data:  # stdin is piped and ended
                        break
                    for event in feed(unicode_data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process_selector_events(selector.select(timeout()))
            selector.unregister(fileno)
            process_selector_events(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except (EOFError, ParseError):
                pass
