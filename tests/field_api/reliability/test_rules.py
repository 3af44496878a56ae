"""The reliability indices against cases computed by hand (in the comments), both definitions."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from field_api.reliability import rules
from field_api.reliability.rules import Area, Cause, Interruption, Variant

JAN = 31 * 24.0  # hours of January


def at(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    """A UTC moment in 2026 (China time is 8 h later: 02:00 UTC is 10:00 in Shenzhen)."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def out(start: datetime, minutes: float, customers: int, points: int,
        cause: Cause = Cause.fault) -> Interruption:
    return Interruption(start, start + timedelta(minutes=minutes), customers, points, cause)


# January, 100 customers on 40 supply points:
THREE = out(at(5, 2), 3, 10, 4)  # exactly 3 minutes: short under DL/T, momentary under IEEE
FIVE = out(at(6, 2), 5, 20, 8)  # exactly 5 minutes: sustained under DL/T, momentary under IEEE
# a step restoration: 30 customers (10 points) back after 30 min, 20 (5 points) after 90 min
STEP = [out(at(7, 2), 30, 30, 10), out(at(7, 2), 90, 20, 5)]
JANUARY = [THREE, FIVE, *STEP]


def test_exactly_three_and_five_minutes_are_not_sustained() -> None:
    assert not rules.is_sustained(3.0, 3.0)
    assert rules.is_sustained(3.0001, 3.0)
    assert not rules.is_sustained(5.0, 5.0)
    assert rules.is_sustained(5.0, 3.0)


def test_ieee_1366_by_hand() -> None:
    # sustained (> 5 min): the step only: 30 x 0.5 h + 20 x 1.5 h = 45 customer-hours,
    # 50 customers interrupted; momentary: 10 (3 min) + 20 (5 min) = 30
    got = rules.compute(JANUARY, served=100, period_hours=JAN, rule=rules.ieee_rule(5))
    assert got.customer_hours == pytest.approx(45.0)
    assert got.customer_interruptions == 50
    assert got.saidi_h == pytest.approx(0.45)
    assert got.saifi == pytest.approx(0.5)
    assert got.caidi_h == pytest.approx(0.9)
    assert got.asai == pytest.approx(1 - 0.45 / 744)
    assert got.short_frequency == pytest.approx(0.3)  # MAIFI


def test_dlt_836_counts_supply_points_and_short_outages_in_the_all_variant() -> None:
    # points x hours: 4 x 3/60 = 0.2; 8 x 5/60 = 0.6667; 10 x 0.5 + 5 x 1.5 = 12.5
    # all: 13.3667 point-hours / 40 = 0.334167 h; 4 + 8 + 15 = 27 interruptions / 40 = 0.675
    got = rules.compute(JANUARY, served=40, period_hours=JAN, rule=rules.dlt_rule(Variant.all, 3))
    assert got.customer_hours == pytest.approx(0.2 + 8 * 5 / 60 + 12.5)
    assert got.saidi_h == pytest.approx(13.366667 / 40, rel=1e-6)
    assert got.saifi == pytest.approx(0.675)
    assert got.caidi_h == pytest.approx((13.366667 / 40) / 0.675, rel=1e-6)
    assert got.short_frequency == pytest.approx(4 / 40)
    # without short outages the 3-minute one drops out: 13.1667 / 40, 23 / 40
    sustained = rules.compute(
        JANUARY, served=40, period_hours=JAN, rule=rules.dlt_rule(Variant.no_short, 3)
    )
    assert sustained.saidi_h == pytest.approx(13.166667 / 40, rel=1e-6)
    assert sustained.saifi == pytest.approx(23 / 40)
    assert sustained.short_frequency == pytest.approx(4 / 40)


def test_dlt_variants_leave_out_external_causes_and_supply_shortage() -> None:
    external = out(at(9, 2), 60, 10, 2, Cause.external)  # 2 point-hours
    shortage = out(at(10, 2), 120, 10, 3, Cause.supply_shortage)  # 6 point-hours
    items = [*STEP, external, shortage]  # the step: 12.5 point-hours, 15 points
    def saidi(variant: Variant) -> float:
        rule = rules.dlt_rule(variant, 3)
        return rules.compute(items, served=40, period_hours=JAN, rule=rule).saidi_h
    assert saidi(Variant.all) == pytest.approx((12.5 + 2 + 6) / 40)
    assert saidi(Variant.no_external) == pytest.approx((12.5 + 6) / 40)
    assert saidi(Variant.no_shortage) == pytest.approx((12.5 + 2) / 40)


def test_a_month_in_which_customers_were_added() -> None:
    # January 100 customers, February 200; in February 100 customers out for an hour.
    feb = out(at(10, 2, month=2), 60, 100, 40)
    rule = rules.ieee_rule(5)
    month = rules.compute([feb], served=200, period_hours=28 * 24, rule=rule)
    assert month.saidi_h == pytest.approx(0.5)  # 100 customer-hours / 200
    ytd_served = rules.average_served([100, 200])
    assert ytd_served == 150
    ytd = rules.compute([feb], served=ytd_served, period_hours=59 * 24, rule=rule)
    assert ytd.saidi_h == pytest.approx(100 / 150)  # not 100 / 200, not 100 / 100


def test_a_major_event_day_under_a_planner_threshold() -> None:
    # day 12: 50 of 100 customers out for an hour: 3000 customer-minutes / 100 = 30 min;
    # day 13: 10 customers for 30 min: 3 min. The planner's threshold is 10 min.
    storm = out(at(12, 2), 60, 50, 20)
    small = out(at(13, 2), 30, 10, 4)
    served = {date(2026, 1, 12): 100.0, date(2026, 1, 13): 100.0}
    daily = rules.daily_saidi_min([storm, small], served, 5)
    assert daily == {date(2026, 1, 12): pytest.approx(30.0), date(2026, 1, 13): pytest.approx(3.0)}
    threshold = rules.med_threshold(daily, history_years=1.0, planner_threshold_min=10.0)
    assert threshold.method is rules.MedMethod.planner and threshold.threshold_min == 10.0
    meds = rules.major_event_days(daily, threshold)
    assert meds == [date(2026, 1, 12)]
    got = rules.compute([storm, small], served=100, period_hours=JAN,
                        rule=rules.ieee_rule(5, meds))
    assert got.saidi_h == pytest.approx(5 / 100)  # the storm left out: 10 x 0.5 h / 100
    assert got.saifi == pytest.approx(0.1)
    # DL/T keeps every day
    dlt = rules.compute([storm, small], served=24, period_hours=JAN,
                        rule=rules.dlt_rule(Variant.all, 3))
    assert dlt.saidi_h == pytest.approx((20 + 2) / 24)


def test_the_two_and_a_half_beta_method_with_five_years_of_history() -> None:
    # daily SAIDI e^0, e^1, e^2 minutes: ln = 0, 1, 2; alpha = 1, beta (sample) = 1;
    # T_MED = e^(1 + 2.5) = 33.115 min
    daily = {date(2021, 1, 1): 1.0, date(2022, 1, 1): math.e, date(2023, 1, 1): math.e ** 2,
             date(2024, 1, 1): 0.0}
    threshold = rules.med_threshold(daily, history_years=5.0, planner_threshold_min=10.0)
    assert threshold.method is rules.MedMethod.beta
    assert threshold.alpha == pytest.approx(1.0) and threshold.beta == pytest.approx(1.0)
    assert threshold.threshold_min == pytest.approx(math.exp(3.5))
    assert rules.major_event_days({**daily, date(2026, 1, 1): 34.0}, threshold) == [
        date(2026, 1, 1)
    ]
    assert rules.major_event_days({date(2026, 1, 1): 33.0}, threshold) == []
    # under five years the planner's threshold is used, and without one there are none
    assert rules.med_threshold(daily, history_years=4.9, planner_threshold_min=None).method is (
        rules.MedMethod.none
    )


def test_the_year_end_projection_names_its_method() -> None:
    # end of June (181 of 365 days): pro rata 1.0 h x 365 / 181 = 2.0166 h
    pro_rata = rules.project_year_end(
        1.0, elapsed_fraction=181 / 365, last_year_remainder_h=None, target_h=2.38
    )
    assert pro_rata.method is rules.ProjectionMethod.pro_rata
    assert pro_rata.saidi_h == pytest.approx(365 / 181)
    assert pro_rata.on_track is True
    with_last_year = rules.project_year_end(
        1.0, elapsed_fraction=181 / 365, last_year_remainder_h=1.5, target_h=2.38
    )
    assert with_last_year.method is rules.ProjectionMethod.last_year
    assert with_last_year.saidi_h == pytest.approx(2.5)
    assert with_last_year.on_track is False
    assert rules.target_of(Area.rural, urban_h=2.38, rural_h=8.52) == 8.52


def test_no_customers_served_gives_zeros_not_a_division_error() -> None:
    got = rules.compute(STEP, served=0, period_hours=JAN, rule=rules.ieee_rule(5))
    assert got.saidi_h == 0.0 and got.caidi_h is None


def test_month_of_is_the_china_month() -> None:
    # 2026-01-31 17:00 UTC is 2026-02-01 01:00 in China
    assert rules.month_of(datetime(2026, 1, 31, 17, tzinfo=UTC)) == date(2026, 2, 1)
    assert rules.month_hours(date(2026, 2, 1)) == 28 * 24


def test_a_customer_file_with_bad_rows_lists_each_row() -> None:
    data = (
        "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
        "connected_on\n"
        "A1,张三,13800138000,SP1,lv,T1,S1,urban,2026-01-01\n"
        "A1,李四,123,SP1,hv,T1,S1,city,2026-13-01\n"
    ).encode()
    parsed = rules.parse_customers(data)
    assert [r.account_no for r in parsed.rows] == ["A1"]
    assert len(parsed.errors) == 1 and parsed.errors[0].row == 3
    assert set(parsed.errors[0].errors) == {
        "supply_kind is lv or mv", "area is urban or rural", "phone has fewer than 7 digits",
        "connected_on is not a date (YYYY-MM-DD)", "account A1 is already in row 2",
    }
    with pytest.raises(rules.ReliabilityFileError):
        rules.parse_customers(b"account_no,name\nA1,x\n")
