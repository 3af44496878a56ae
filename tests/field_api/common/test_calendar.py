"""The working-day calendar: Civil Code counting, unknown years, the override file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from field_api.common.calendar import (
    PACKAGE_YEARS,
    CalendarDataMissingError,
    CalendarError,
    Interval,
    WorkingCalendar,
    build_calendar,
    load_override,
)

FIRST_UNCOVERED = PACKAGE_YEARS[1] + 1


def _monday_in(year: int, month: int = 3) -> date:
    day = date(year, month, 1)
    while day.weekday() != 0:
        day = day.replace(day=day.day + 1)
    return day


def test_residential_accepted_2025_09_29_is_due_2025_10_13_counting_makeup_saturday() -> None:
    due = WorkingCalendar().add_working_days(date(2025, 9, 29), 5)
    assert due.due == date(2025, 10, 13)
    assert not due.provisional
    assert due.missing_years == ()


def test_makeup_saturday_2025_10_11_is_a_working_day() -> None:
    cal = WorkingCalendar()
    assert cal.is_working_day(date(2025, 10, 11))
    assert not cal.is_working_day(date(2025, 10, 3))


def test_count_from_a_saturday_does_not_count_the_start_day() -> None:
    # find_workday would answer 2025-10-11 here; the Civil Code answer is 10-10.
    due = WorkingCalendar().add_working_days(date(2025, 9, 27), 5)
    assert due.due == date(2025, 10, 10)


def test_new_year_2026_holiday_is_skipped_and_sunday_makeup_counts() -> None:
    cal = WorkingCalendar()
    assert not cal.is_working_day(date(2026, 1, 1))
    assert not cal.is_working_day(date(2026, 1, 2))
    due = cal.add_working_days(date(2025, 12, 30), 5)
    # 12-31, then 01-04 (make-up Sunday), 01-05, 01-06, 01-07.
    assert due.due == date(2026, 1, 7)


def test_zero_days_is_the_start_day_and_negative_is_refused() -> None:
    cal = WorkingCalendar()
    assert cal.add_working_days(date(2025, 9, 29), 0).due == date(2025, 9, 29)
    with pytest.raises(CalendarError, match="negative"):
        cal.add_working_days(date(2025, 9, 29), -1)


def test_supported_range_is_read_from_the_package() -> None:
    import chinese_calendar

    last = PACKAGE_YEARS[1]
    chinese_calendar.is_workday(date(last, 6, 1))
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(last + 1, 6, 1))


def test_year_past_package_is_provisional_by_default_naming_the_year() -> None:
    start = _monday_in(FIRST_UNCOVERED)
    due = WorkingCalendar().add_working_days(start, 5)
    assert due.provisional
    assert due.missing_years == (FIRST_UNCOVERED,)
    # Weekends alone: five working days after a Monday is the next Monday.
    assert due.due == date.fromordinal(start.toordinal() + 7)


def test_count_crossing_into_an_uncovered_year_names_only_that_year() -> None:
    due = WorkingCalendar().add_working_days(date(PACKAGE_YEARS[1], 12, 28), 10)
    assert due.provisional
    assert due.missing_years == (FIRST_UNCOVERED,)


def test_year_past_package_is_an_error_in_strict_mode() -> None:
    with pytest.raises(CalendarDataMissingError, match=str(FIRST_UNCOVERED)) as info:
        WorkingCalendar(strict=True).add_working_days(_monday_in(FIRST_UNCOVERED), 5)
    assert info.value.years == (FIRST_UNCOVERED,)


def test_override_with_complete_year_makes_it_exact(tmp_path: Path) -> None:
    start = _monday_in(FIRST_UNCOVERED)
    holiday = date.fromordinal(start.toordinal() + 2)  # the Wednesday
    path = tmp_path / "calendar.yaml"
    path.write_text(
        f"{FIRST_UNCOVERED}:\n  complete: true\n  holidays: [{holiday.isoformat()}]\n",
        encoding="utf-8",
    )
    cal = WorkingCalendar(load_override(path), strict=True)
    due = cal.add_working_days(start, 5)
    assert not due.provisional
    assert due.missing_years == ()
    assert due.due == date.fromordinal(start.toordinal() + 8)  # pushed by the holiday


def test_incomplete_override_year_stays_provisional(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(f"{FIRST_UNCOVERED}:\n  local_non_working_days: []\n", encoding="utf-8")
    due = WorkingCalendar(load_override(path)).add_working_days(_monday_in(FIRST_UNCOVERED), 1)
    assert due.provisional


def test_local_non_working_day_and_makeup_workday_apply_in_covered_years(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(
        "2025:\n  local_non_working_days: [2025-09-30]\n  makeup_workdays: [2025-10-04]\n",
        encoding="utf-8",
    )
    cal = WorkingCalendar(load_override(path))
    assert not cal.is_working_day(date(2025, 9, 30))
    assert cal.is_working_day(date(2025, 10, 4))
    # 10-04 (override make-up), 10-09, 10-10, 10-11 (package make-up), 10-13.
    assert cal.add_working_days(date(2025, 9, 29), 5).due == date(2025, 10, 13)
    assert cal.add_working_days(date(2025, 9, 29), 1).due == date(2025, 10, 4)


def test_build_calendar_rereads_a_changed_override(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text("{}\n", encoding="utf-8")
    start = _monday_in(FIRST_UNCOVERED)
    assert build_calendar(path, strict=False).add_working_days(start, 1).provisional
    path.write_text(f"{FIRST_UNCOVERED}:\n  complete: true\n", encoding="utf-8")
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not build_calendar(path, strict=False).add_working_days(start, 1).provisional


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027: [not, a, mapping]\n", "invalid"),
        ("2027:\n  holidays: [2028-01-01]\n", "listed under year 2027"),
        ("2027:\n  holidays: [2027-01-01]\n  makeup_workdays: [2027-01-01]\n", "both"),
        ("2027:\n  unknown_key: 1\n", "unknown_key"),
        ("- 1\n- 2\n", "must map years"),
        ("2027: {holidays: [\n", "not valid YAML"),
    ],
)
def test_bad_override_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=message):
        load_override(path)


def test_missing_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read"):
        build_calendar(tmp_path / "absent.yaml", strict=False)


def test_working_days_between_subtracts_pauses() -> None:
    cal = WorkingCalendar()
    assert cal.working_days_between(date(2025, 9, 29), date(2025, 10, 13)).days == 5
    paused = Interval(date(2025, 10, 9), date(2025, 10, 11))  # 10-10 and 10-11 paused
    assert (
        cal.working_days_between(date(2025, 9, 29), date(2025, 10, 13), pauses=[paused]).days == 3
    )
    assert cal.working_days_between(date(2025, 10, 13), date(2025, 9, 29)).days == -5


def test_pause_extends_the_due_date_by_its_working_days() -> None:
    cal = WorkingCalendar()
    paused = Interval(date(2025, 10, 9), date(2025, 10, 11))
    assert cal.add_working_days(date(2025, 9, 29), 5, pauses=[paused]).due == date(2025, 10, 15)


def test_pause_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(CalendarError, match="before it starts"):
        Interval(date(2025, 10, 9), date(2025, 10, 8))


@pytest.mark.parametrize("year", [2020, 2025, PACKAGE_YEARS[1]])
def test_working_days_agree_with_chinese_calendar_for_every_day_of_covered_years(
    year: int,
) -> None:
    import chinese_calendar

    cal = WorkingCalendar()
    day = date(year, 1, 1)
    while day.year == year:
        assert cal.is_working_day(day) == chinese_calendar.is_workday(day), day
        day = date.fromordinal(day.toordinal() + 1)
