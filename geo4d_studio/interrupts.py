"""Ctrl-C as a request to stop: long commands finish their current step and save instead of dying."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def first_interrupt_sets(event: threading.Event) -> Iterator[None]:
    """While active, a first Ctrl-C (SIGINT) only sets `event`; a second one interrupts at once.

    A no-op outside the main thread (only it receives signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: object) -> None:
        if event.is_set():
            signal.default_int_handler(signum, frame)
        event.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_interrupts(_worker_id: int) -> None:
    """Set-up for helper processes (data-loader workers): Ctrl-C is the main process's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
