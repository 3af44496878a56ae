"""The planned-outage budget, merge proposals and notice timing, hand-computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from field_api.reliability import planning_rules as pr
from field_api.reliability.rules import Area, Cause, Interruption


def _at(day: int, hour: int, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_the_budget_is_the_targets_times_customers_less_last_years_fault_share() -> None:
    # 3 urban and 2 rural customers: 3 x 2.38 + 2 x 8.52 = 24.18 customer-hours a year
    customers = {Area.urban: 3, Area.rural: 2}
    found = pr.propose_budget(customers, urban_h=2.38, rural_h=8.52, last_fault_share=0.75)
    assert found.allowance_h == pytest.approx(24.18)
    assert found.customer_hours == pytest.approx(24.18 * 0.25)
    assert found.method is pr.BudgetMethod.last_year
    # no last year: half of the allowance, and the method says so
    none = pr.propose_budget(customers, urban_h=2.38, rural_h=8.52, last_fault_share=None)
    assert none.customer_hours == pytest.approx(12.09)
    assert none.method is pr.BudgetMethod.default_share and none.fault_share == 0.5


def test_the_fault_share_weighs_customer_hours() -> None:
    planned = Interruption(_at(1, 0), _at(1, 2), customers=10, supply_points=5,
                           cause=Cause.planned_maintenance)  # 20 customer-hours
    fault = Interruption(_at(2, 0), _at(2, 1), customers=60, supply_points=5,
                         cause=Cause.fault)  # 60 customer-hours
    assert pr.fault_share([planned, fault]) == pytest.approx(0.75)
    assert pr.fault_share([]) is None


def test_a_merge_proposal_saves_the_hand_computed_customer_hours() -> None:
    # SW-1 has 3 customers: a 4 h work on the 4th and a 6 h work on the 10th cost 12 + 18 = 30
    # customer-hours apart; done together in one 6 h outage 18: 12 saved. The work on June 20th
    # is beyond the 14-day window; SW-2 has a single request.
    windows = [
        pr.Window(1, "SW-1", _at(4, 0), _at(4, 4), 3),
        pr.Window(2, "SW-1", _at(10, 1), _at(10, 7), 3),
        pr.Window(3, "SW-1", _at(20, 0, month=6), _at(20, 2, month=6), 3),
        pr.Window(4, "SW-2", _at(5, 0), _at(5, 3), 2),
    ]
    [proposal] = pr.merge_proposals(windows, window_days=14)
    assert proposal.request_ids == (1, 2)
    assert proposal.separate_customer_hours == 30.0
    assert proposal.merged_customer_hours == 18.0
    assert proposal.saved_customer_hours == 12.0
    assert (proposal.start, proposal.end) == (_at(4, 0), _at(4, 6))
    # a wider window takes June's work too: 30 + 6 apart, 18 merged
    [wide] = pr.merge_proposals(windows, window_days=60)
    assert wide.request_ids == (1, 2, 3) and wide.saved_customer_hours == 18.0
    assert pr.merge_proposals(windows, window_days=1) == []


def test_a_notice_goes_days_before_or_now() -> None:
    start = _at(20, 0)
    assert pr.notice_due(start, days_before=7, now=_at(1, 0)) == start - timedelta(days=7)
    assert pr.notice_due(start, days_before=7, now=_at(18, 0)) == _at(18, 0)


def test_the_burn_down_is_cumulative_by_month() -> None:
    months = pr.burn_down(100.0, {2: 30.0, 5: 80.0})
    assert [m.cumulative for m in months[:6]] == [0, 30, 30, 30, 110, 110]
    assert months[-1].left == -10.0 and len(months) == 12
