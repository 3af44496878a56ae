"""Pure time-limit rules: limits as data, clocks, pauses, white list, classification."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from field_api.common.calendar import WorkingCalendar
from field_api.deadlines.rules import (
    END_TO_END,
    Category,
    ClockKind,
    ClockStatus,
    Confidence,
    Pause,
    TimeLimitsError,
    WhiteListPeriod,
    classify,
    default_time_limits,
    evaluate_order,
    load_time_limits,
    parse_time_limits,
    summarise_compliance,
)
from field_api.errors import ValidationFailed

CAL = WorkingCalendar()
ACCEPTED = date(2025, 9, 29)


def _raw_limits() -> dict[str, object]:
    raw = yaml.safe_load(Path("field_api/deadlines/time_limits.yaml").read_text("utf-8"))
    assert isinstance(raw, dict)
    return raw


def test_bundled_limits_follow_domain_md() -> None:
    limits = default_time_limits()
    residential = limits.for_order(Category.residential, None)
    assert residential.end_to_end.days == 5
    assert residential.end_to_end.confidence is Confidence.C
    assert residential.stages["supply_scheme"].days == 3
    assert residential.stages["supply_scheme"].confidence is Confidence.S
    for cat in (Category.small_micro_enterprise, Category.other_low_voltage):
        spec = limits.for_order(cat, None)
        assert spec.end_to_end.days == 6
        assert spec.stages["completion_inspection"].days == 5


def test_district_override_replaces_only_the_named_limits() -> None:
    raw = _raw_limits()
    raw["districts"] = {
        "PD01": {
            "residential": {"end_to_end": {"days": 4}, "stages": {"supply_scheme": {"days": 2}}}
        }
    }
    limits = parse_time_limits(raw)
    pd01 = limits.for_order("residential", "PD01")
    assert pd01.end_to_end.days == 4
    assert pd01.end_to_end.starts_at == "accepted"
    assert pd01.stages["supply_scheme"].days == 2
    assert pd01.stages["metering_energisation"].days == 3
    assert limits.for_order("residential", "OTHER").end_to_end.days == 5
    due = evaluate_order(CAL, pd01, entered={"accepted": ACCEPTED}, as_of=ACCEPTED).end_to_end
    assert due is not None
    assert due.due is not None
    assert due.due.due == date(2025, 10, 11)  # 4th working day: the make-up Saturday


def test_district_override_of_an_unknown_stage_is_refused() -> None:
    raw = _raw_limits()
    raw["districts"] = {"PD01": {"residential": {"stages": {"no_such_stage": {"days": 2}}}}}
    with pytest.raises(TimeLimitsError, match="no_such_stage"):
        parse_time_limits(raw)


def test_limits_missing_a_category_are_refused(tmp_path: Path) -> None:
    raw = _raw_limits()
    cats = raw["categories"]
    assert isinstance(cats, dict)
    del cats["other_low_voltage"]
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(TimeLimitsError, match="other_low_voltage"):
        load_time_limits(path)


def test_unknown_category_and_pause_reason_are_clear_errors() -> None:
    limits = default_time_limits()
    with pytest.raises(TimeLimitsError, match="high_voltage"):
        limits.for_order("high_voltage", None)
    with pytest.raises(ValidationFailed, match="customer_works"):
        limits.check_pause_reason("weather")
    limits.check_pause_reason("customer_works")


def test_residential_end_to_end_due_2025_10_13() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    result = evaluate_order(CAL, spec, entered={"accepted": ACCEPTED}, as_of=date(2025, 9, 30))
    e2e = result.end_to_end
    assert e2e is not None
    assert e2e.due is not None
    assert e2e.due.due == date(2025, 10, 13)
    assert e2e.status is ClockStatus.on_track
    assert e2e.governing
    # Only the clocks whose start stage was entered exist.
    assert {c.name for c in result.clocks} == {END_TO_END, "supply_scheme"}


def test_end_to_end_governs_a_longer_stage_limit() -> None:
    spec = default_time_limits().for_order(Category.small_micro_enterprise, None)
    result = evaluate_order(CAL, spec, entered={"accepted": ACCEPTED}, as_of=ACCEPTED)
    stage = next(c for c in result.clocks if c.name == "supply_scheme")
    e2e = result.end_to_end
    assert e2e is not None
    assert e2e.due is not None
    assert stage.due is not None
    # Seven working days would end on 10-15; the six-day end-to-end limit ends on 10-14.
    assert e2e.due.due == date(2025, 10, 14)
    assert stage.due.due == date(2025, 10, 14)
    assert stage.capped_by_end_to_end
    assert not stage.governing


def test_stage_limits_warn_early_while_end_to_end_runs() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    # Supply scheme (3 days) due 10-10; on 10-11 it is overdue, end to end still at risk.
    result = evaluate_order(CAL, spec, entered={"accepted": ACCEPTED}, as_of=date(2025, 10, 11))
    e2e = result.end_to_end
    assert e2e is not None
    assert e2e.status is ClockStatus.at_risk
    assert result.warnings == ("stage supply_scheme passed its limit on 2025-10-10",)
    [notice] = result.notices
    assert (notice.code, notice.params) == (
        "deadline.stage_passed", {"clock": "supply_scheme", "due_on": "2025-10-10"}
    )
    assert notice.render("zh-CN") == "环节 supply_scheme 已于 2025-10-10 超过时限"


def test_pause_extends_deadline_by_paused_working_days() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    pause = Pause(date(2025, 10, 9), date(2025, 10, 11), "customer_absent")
    result = evaluate_order(
        CAL, spec, entered={"accepted": ACCEPTED}, pauses=[pause], as_of=date(2025, 10, 14)
    )
    e2e = result.end_to_end
    assert e2e is not None
    assert e2e.due is not None
    assert e2e.due.due == date(2025, 10, 15)
    assert e2e.paused_working_days == 2
    assert e2e.status is ClockStatus.at_risk
    assert not e2e.paused


def test_open_pause_keeps_the_order_from_going_overdue() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    pause = Pause(date(2025, 10, 9), None, "customer_works")
    result = evaluate_order(
        CAL, spec, entered={"accepted": ACCEPTED}, pauses=[pause], as_of=date(2025, 10, 20)
    )
    e2e = result.end_to_end
    assert e2e is not None
    assert e2e.due is not None
    assert e2e.paused
    assert e2e.due.due > date(2025, 10, 20)
    assert e2e.status is not ClockStatus.overdue


def test_white_listed_order_runs_its_own_clock() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    period = WhiteListPeriod(date(2025, 9, 30), date(2025, 11, 3), expected_on=date(2025, 10, 31))
    result = evaluate_order(
        CAL, spec, entered={"accepted": ACCEPTED}, white_list=[period], as_of=date(2025, 11, 4)
    )
    e2e = result.end_to_end
    wl = next(c for c in result.clocks if c.kind is ClockKind.white_list)
    assert e2e is not None
    assert e2e.due is not None
    assert wl.due is not None
    # 09-30 counted (the parking day), then resumed after 11-03: 11-04, 05, 06, 07.
    assert e2e.due.due == date(2025, 11, 7)
    assert e2e.status is ClockStatus.on_track
    assert wl.due.due == date(2025, 10, 31)
    assert wl.status is ClockStatus.missed


def test_white_list_without_expected_date_uses_configured_days_or_none() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    period = WhiteListPeriod(date(2025, 9, 30), None)
    with_days = evaluate_order(
        CAL,
        spec,
        entered={"accepted": ACCEPTED},
        white_list=[period],
        white_list_days=5,
        as_of=date(2025, 10, 13),
    )
    wl = next(c for c in with_days.clocks if c.kind is ClockKind.white_list)
    # 10-09, 10-10, 10-11 (make-up Saturday), 10-13, 10-14.
    assert wl.due is not None
    assert wl.due.due == date(2025, 10, 14)
    assert wl.status is ClockStatus.at_risk
    without = evaluate_order(
        CAL, spec, entered={"accepted": ACCEPTED}, white_list=[period], as_of=date(2025, 10, 9)
    )
    wl_none = next(c for c in without.clocks if c.kind is ClockKind.white_list)
    assert wl_none.due is None
    assert wl_none.status is None


@pytest.mark.parametrize(
    ("finished", "as_of", "expected"),
    [
        (date(2025, 10, 13), date(2025, 10, 20), ClockStatus.met),
        (date(2025, 10, 14), date(2025, 10, 20), ClockStatus.missed),
        (None, date(2025, 10, 14), ClockStatus.overdue),
        (None, date(2025, 10, 13), ClockStatus.at_risk),
        (None, date(2025, 10, 11), ClockStatus.at_risk),  # the make-up Saturday: 1 day left
        (None, date(2025, 10, 10), ClockStatus.on_track),
    ],
)
def test_classification(finished: date | None, as_of: date, expected: ClockStatus) -> None:
    got = classify(CAL, due=date(2025, 10, 13), finished_on=finished, as_of=as_of)
    assert got is expected


def test_finished_order_is_met_and_compliance_counts_it() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    entered = {
        "accepted": ACCEPTED,
        "scheme_answered": date(2025, 10, 9),
        "contract_signed": date(2025, 10, 9),
        "energised": date(2025, 10, 13),
    }
    result = evaluate_order(CAL, spec, entered=entered, as_of=date(2025, 10, 20))
    by_name = {c.name: c.status for c in result.clocks}
    assert by_name == {
        END_TO_END: ClockStatus.met,
        "supply_scheme": ClockStatus.met,
        "metering_energisation": ClockStatus.met,
    }
    late = evaluate_order(
        CAL, spec, entered={**entered, "energised": date(2025, 10, 14)}, as_of=date(2025, 10, 20)
    )
    rows = summarise_compliance([*result.clocks, *late.clocks])
    e2e = rows[0]
    assert (e2e.name, e2e.met, e2e.missed, e2e.rate) == (END_TO_END, 1, 1, 0.5)


def test_provisional_due_dates_propagate_to_the_order() -> None:
    spec = default_time_limits().for_order(Category.residential, None)
    result = evaluate_order(
        CAL, spec, entered={"accepted": date(2026, 12, 28)}, as_of=date(2026, 12, 28)
    )
    assert result.provisional
    assert result.missing_years == (2027,)
