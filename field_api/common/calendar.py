"""The Chinese working-day calendar used by every time limit.

Shared: deadlines, callbacks, tracking, the demo and the ``calendar`` command count working days
with it; :func:`calendar_for` builds the one the settings configure. (The day in China of a
moment is :func:`field_api.common.clock.china_date`.)

Statutory holidays and make-up workdays (调休) come from ``chinese_calendar``; an override
YAML adds years the package does not cover yet and local non-working days. Counting follows
the Civil Code (art. 201/203): the start day is not counted, so "N working days after D" is
the N-th working day strictly after D, whether or not D itself is a working day.

A year with no known schedule is never guessed silently: by default it is counted on
weekends alone and the result is marked provisional, naming the missing years; in strict
mode it is an error.

Override file format (per year; every key optional)::

    2027:
      complete: true              # the year's statutory schedule is fully listed here
      holidays: [2027-01-01]
      makeup_workdays: [2027-02-20]
      local_non_working_days: [2027-03-15]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import chinese_calendar
import chinese_calendar.constants
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from field_api.config import Settings
from field_api.errors import ValidationFailed

# A calendar where a whole year passes without one working day is misconfigured; stop
# instead of walking forever.
_MAX_DAYS_WITHOUT_WORK = 366


class CalendarError(ValidationFailed):
    """The working-day calendar cannot answer (bad override file, unusable request)."""

    code = "calendar.invalid"


class CalendarDataMissingError(CalendarError):
    """Strict mode: a date falls in a year whose holiday schedule is unknown."""

    def __init__(self, years: Sequence[int]) -> None:
        self.years = tuple(sorted(set(years)))
        names = ", ".join(str(y) for y in self.years)
        super().__init__(
            f"no holiday schedule for {names}: chinese_calendar covers "
            f"{PACKAGE_YEARS[0]}-{PACKAGE_YEARS[1]}; add the year to the calendar override "
            "file with `complete: true`",
            code="calendar.data_missing",
            params={"years": list(self.years)},
        )


def _package_years() -> tuple[int, int]:
    """The first and last year the installed chinese_calendar has data for."""
    known = list(chinese_calendar.constants.holidays) + list(chinese_calendar.constants.workdays)
    return min(d.year for d in known), max(d.year for d in known)


PACKAGE_YEARS: tuple[int, int] = _package_years()
# The package's own tables, read once: its is_workday() re-derives the supported range on
# every call (about 0.3 ms), which made a 250-day count take 40 ms.
_PACKAGE_HOLIDAYS: frozenset[date] = frozenset(chinese_calendar.constants.holidays)
_PACKAGE_WORKDAYS: frozenset[date] = frozenset(chinese_calendar.constants.workdays)


@dataclass(frozen=True)
class DueDate:
    """A deadline; ``provisional`` when any counted day lies in a year with no schedule."""

    due: date
    provisional: bool
    missing_years: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        """The JSON shape used by the command line and the API."""
        return {
            "due": self.due.isoformat(),
            "provisional": self.provisional,
            "missing_years": list(self.missing_years),
        }


@dataclass(frozen=True)
class WorkingDayCount:
    """A number of working days, provisional like :class:`DueDate`."""

    days: int
    provisional: bool
    missing_years: tuple[int, ...]


@dataclass(frozen=True)
class Interval:
    """A pause of the clock: the days strictly after ``start`` up to and including ``end``.

    The day a pause starts still counts as elapsed, as the first day of any period does not
    count under the Civil Code; a pause started and ended on the same day stops nothing.
    An open pause is closed by the caller at the day it evaluates (see ``rules``).
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise CalendarError(
                f"a pause cannot end ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()})",
                code="calendar.pause_reversed",
                params={"start": self.start.isoformat(), "end": self.end.isoformat()},
            )

    def covers(self, day: date) -> bool:
        """Whether ``day`` is inside the pause."""
        return self.start < day <= self.end


class YearOverride(BaseModel):
    """One year of the override file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    complete: bool = False
    holidays: tuple[date, ...] = Field(default=())
    makeup_workdays: tuple[date, ...] = Field(default=())
    local_non_working_days: tuple[date, ...] = Field(default=())

    @model_validator(mode="after")
    def _no_day_both_ways(self) -> YearOverride:
        clash = set(self.holidays) & set(self.makeup_workdays)
        if clash:
            days = ", ".join(sorted(d.isoformat() for d in clash))
            raise ValueError(f"days listed both as holiday and make-up workday: {days}")
        return self


class CalendarOverride(BaseModel):
    """The parsed override file: year → :class:`YearOverride`."""

    model_config = ConfigDict(frozen=True)

    years: dict[int, YearOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _days_in_their_year(self) -> CalendarOverride:
        for year, entry in self.years.items():
            for day in (*entry.holidays, *entry.makeup_workdays, *entry.local_non_working_days):
                if day.year != year:
                    raise ValueError(f"{day.isoformat()} is listed under year {year}")
        return self


def load_override(path: Path) -> CalendarOverride:
    """Read and validate an override YAML; a clear :class:`CalendarError` when it is bad."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(
            f"cannot read calendar override {path}: {exc.strerror}",
            code="calendar.override_unreadable",
            params={"path": str(path)},
        ) from exc
    except yaml.YAMLError as exc:
        raise CalendarError(
            f"calendar override {path} is not valid YAML: {exc}",
            code="calendar.override_invalid",
            params={"path": str(path)},
        ) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CalendarError(
            f"calendar override {path} must map years to entries",
            code="calendar.override_invalid",
            params={"path": str(path)},
        )
    try:
        return CalendarOverride.model_validate({"years": raw})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}" for err in exc.errors()
        )
        raise CalendarError(
            f"calendar override {path} is invalid: {problems}",
            code="calendar.override_invalid",
            params={"path": str(path)},
        ) from exc


class WorkingCalendar:
    """Answers "is D a working day" and counts working days per the Civil Code."""

    def __init__(self, override: CalendarOverride | None = None, *, strict: bool = False) -> None:
        self.override = override or CalendarOverride()
        self.strict = strict
        self._local_off: frozenset[date] = frozenset(
            d for y in self.override.years.values() for d in y.local_non_working_days
        )
        self._holidays: frozenset[date] = frozenset(
            d for y in self.override.years.values() for d in y.holidays
        )
        self._makeup: frozenset[date] = frozenset(
            d for y in self.override.years.values() for d in y.makeup_workdays
        )

    def has_schedule(self, year: int) -> bool:
        """Whether the statutory schedule of ``year`` is known (package or complete override)."""
        if PACKAGE_YEARS[0] <= year <= PACKAGE_YEARS[1]:
            return True
        entry = self.override.years.get(year)
        return entry is not None and entry.complete

    def _check_year(self, day: date, missing: set[int]) -> None:
        if not self.has_schedule(day.year):
            if self.strict:
                raise CalendarDataMissingError([day.year])
            missing.add(day.year)

    def _is_working(self, day: date) -> bool:
        # Order matters: a local closure beats everything, then the override's corrections,
        # then the package, then weekends alone for a year nobody has published yet.
        if day in self._local_off:
            return False
        if day in self._makeup:
            return True
        if day in self._holidays:
            return False
        if PACKAGE_YEARS[0] <= day.year <= PACKAGE_YEARS[1]:
            # Same rule as chinese_calendar.is_workday (checked against it in the tests).
            return day in _PACKAGE_WORKDAYS or (day.weekday() < 5 and day not in _PACKAGE_HOLIDAYS)
        return day.weekday() < 5

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; strict mode raises for an unknown year."""
        self._check_year(day, set())
        return self._is_working(day)

    def add_working_days(
        self, start: date, days: int, *, pauses: Iterable[Interval] = ()
    ) -> DueDate:
        """The ``days``-th working day strictly after ``start``, skipping paused days.

        Example: ``add_working_days(date(2025, 9, 27), 5)`` → 2025-10-10 (the start day, a
        Saturday, is not counted; the National Day week is skipped).
        """
        if days < 0:
            raise CalendarError(
                f"a number of working days cannot be negative (got {days})",
                code="calendar.negative_days",
                params={"days": days},
            )
        pause_list = tuple(pauses)
        missing: set[int] = set()
        day = start
        counted = 0
        idle = 0
        while counted < days:
            day += timedelta(days=1)
            self._check_year(day, missing)
            if any(p.covers(day) for p in pause_list):
                continue
            if self._is_working(day):
                counted += 1
                idle = 0
            else:
                idle += 1
                if idle > _MAX_DAYS_WITHOUT_WORK:
                    raise CalendarError(
                        f"no working day for a year after {day.isoformat()}",
                        code="calendar.no_working_day",
                        params={"date": day.isoformat()},
                    )
        return DueDate(day, bool(missing), tuple(sorted(missing)))

    def working_days_between(
        self, start: date, end: date, *, pauses: Iterable[Interval] = ()
    ) -> WorkingDayCount:
        """Working days in (start, end], less those inside pauses; negative when end < start."""
        if end < start:
            back = self.working_days_between(end, start, pauses=pauses)
            return WorkingDayCount(-back.days, back.provisional, back.missing_years)
        pause_list = tuple(pauses)
        missing: set[int] = set()
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            self._check_year(day, missing)
            if any(p.covers(day) for p in pause_list):
                continue
            if self._is_working(day):
                count += 1
        return WorkingDayCount(count, bool(missing), tuple(sorted(missing)))


def build_calendar(override_path: Path | None, *, strict: bool) -> WorkingCalendar:
    """A calendar from an override path (re-read whenever the file changes)."""
    if override_path is None:
        return WorkingCalendar(strict=strict)
    try:
        stamp = override_path.stat().st_mtime_ns
    except OSError as exc:
        raise CalendarError(
            f"cannot read calendar override {override_path}: {exc.strerror}",
            code="calendar.override_unreadable",
            params={"path": str(override_path)},
        ) from exc
    return _cached_calendar(override_path.resolve(), stamp, strict)


@lru_cache(maxsize=8)
def _cached_calendar(path: Path, stamp: int, strict: bool) -> WorkingCalendar:
    # Keyed on the file's modification time, so a running service sees a newly added year.
    del stamp
    return WorkingCalendar(load_override(path), strict=strict)


def calendar_for(settings: Settings) -> WorkingCalendar:
    """The working-day calendar configured by ``settings``."""
    return build_calendar(settings.calendar.override_path, strict=settings.calendar.strict)
