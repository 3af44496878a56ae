"""The one clock of the service: every recorded time, lease and TTL reads it.

Production uses :class:`SystemClock`. Tests install a :class:`ManualClock` with
:func:`use_clock` (fixture ``clock`` in ``tests/conftest.py``) and move it with ``advance``,
so lease expiry and TTLs are tested without waiting. The clock is process-wide on purpose: the
request threads, the middleware and background runners all see the same time.

Times are kept and exchanged (database, JSON) in UTC. People read them in China time:
:data:`CHINA_TZ` is the one definition of it (Asia/Shanghai, UTC+8 without daylight saving
since 1991), used by working-day calendars, reports, exports and pages; :func:`china_date` and
:func:`china_today` are the one reading of a day in China (deadlines, call-backs, tracking).

Used by every slice, the audit trail, leases, maintenance jobs and the tests' ``server_clock``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

CHINA_TZ = timezone(timedelta(hours=8), "CST")
"""Asia/Shanghai: UTC+8 all year (no daylight saving since 1991), so a fixed offset is exact."""


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


def to_china(moment: datetime) -> datetime:
    """``moment`` in China time; a naive value is taken as UTC (how the database stores it)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA_TZ)


def china_now() -> datetime:
    """The current time of the installed clock, in China time."""
    return to_china(now())


def china_date(moment: datetime) -> date:
    """The calendar day in China of ``moment`` (a naive value is taken as UTC)."""
    return to_china(moment).date()


def china_today() -> date:
    """Today's date in China by the installed clock."""
    return china_now().date()
