"""The one clock of the service: every recorded time, lease and TTL reads it.

Production uses :class:`SystemClock`. Tests install a :class:`ManualClock` with
:func:`use_clock` (fixture ``clock`` in ``tests/conftest.py``) and move it with ``advance``,
so lease expiry and TTLs are tested without waiting. The clock is process-wide on purpose: the
request threads, the middleware and background runners all see the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` (or ``timedelta(**kwargs)``); returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)


_SYSTEM = SystemClock()
_current: Clock = _SYSTEM


def now() -> datetime:
    """The current time of the installed clock (UTC)."""
    return _current.now()


def current() -> Clock:
    return _current


def install(clock: Clock | None) -> None:
    """Make ``clock`` the process's clock (``None``: the system clock)."""
    global _current
    _current = clock if clock is not None else _SYSTEM


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` for the duration of a block, then restore the previous one."""
    previous = _current
    install(clock)
    try:
        yield clock
    finally:
        install(previous)
