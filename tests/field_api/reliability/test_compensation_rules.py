"""The compensation policy and what a supply point is owed, worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from field_api.reliability import compensation_rules as comp

CHINA = timezone(timedelta(hours=8))
POLICY = """
counts_above_min = 3
[category.lv]
long_hours = 4
long_credit = "20.00"
yearly_count = 2
beyond_credit = 7.5
"""


def _at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA)


def _out(n: int, start: datetime, minutes: float) -> comp.PointInterruption:
    return comp.PointInterruption(n, start, start + timedelta(minutes=minutes))


def test_the_policy_reads_amounts_as_decimal_and_says_what_is_wrong() -> None:
    policy = comp.parse_policy(POLICY)
    lv = policy.categories["lv"]
    assert lv == comp.CategoryRule(Decimal(4), Decimal("20.00"), 2, Decimal("7.50"))
    assert isinstance(lv.beyond_credit, Decimal) and str(lv.beyond_credit) == "7.50"
    assert policy.counts_above_min == 3 and "mv" not in policy.categories
    bad = {
        "": "no [category.<kind>] table",
        "[category.residential]\nlong_hours = 4\nlong_credit = 1": "unknown categories",
        "[category.lv]\nlong_hours = 4": "long_hours and long_credit together",
        '[category.lv]\nlong_hours = 4\nlong_credit = "1.005"': "more than two decimals",
        "[category.lv]\nlong_hours = 4\nlong_credit = -1": "zero or more",
        "[category.lv]\nyearly_count = 2.5\nbeyond_credit = 1": "whole number",
        "[category.lv]\nlong_hour = 4": "unknown keys: long_hour",
        "[category.lv]": "has no rule",
        "currency = 'CNY'\n[category.lv]\nlong_hours = 1\nlong_credit = 1": "unknown keys",
        "[category.lv\n": "not TOML",
        '[category.lv]\nlong_hours = 4\nlong_credit = "twenty"': "not an amount",
    }
    for text, reason in bad.items():
        with pytest.raises(comp.PolicyError, match=reason.replace("[", r"\[")):
            comp.parse_policy(text)


def test_long_interruptions_and_the_yearly_count_by_hand() -> None:
    """A low-voltage point, period April to June, the count numbered from the 1st of January:

    1. 10 Feb, 60 min      – counted (1st of the year), before the period: nothing
    2.  5 Mar, 2 min       – short (not above 3 min): not counted at all
    3. 10 Apr, 5 h         – 2nd of the year, longer than 4 h: 20.00
    4. 20 May, exactly 4 h – 3rd (beyond 2): 7.50; exactly 4 h is not longer than 4 h
    5. 15 Jun, 30 min      – 4th: 7.50
    6.  1 Jul, 6 h         – after the period: nothing
    Owed: 20.00 + 2 x 7.50 = 35.00 for 3 interruptions in the period."""
    policy = comp.parse_policy(POLICY)
    point = comp.SupplyPoint("SP-1", "lv", "D-NS", "urban", ("A-1",))
    items = [
        _out(1, _at(2, 10, 10), 60),
        _out(2, _at(3, 5, 10), 2),
        _out(3, _at(4, 10, 8), 300),
        _out(4, _at(5, 20, 9), 240),
        _out(5, _at(6, 15, 9), 30),
        _out(6, _at(7, 1, 9), 360),
    ]
    got = comp.owed(point, reversed(items), policy, start=_at(4, 1, 0), end=_at(7, 1, 0))
    assert (got.interruptions, got.long_interruptions, got.beyond_interruptions) == (3, 1, 2)
    assert got.long_credit == Decimal("20.00") and got.beyond_credit == Decimal("15.00")
    assert got.total == Decimal("35.00") and got.outage_ids == (3, 4, 5)
    # the whole half year: the same credits, one more interruption counted
    half = comp.owed(point, items, policy, start=_at(1, 1, 0), end=_at(7, 1, 0))
    assert (half.interruptions, half.total) == (4, Decimal("35.00"))
    # a new year starts the count again: the 1st of 2027 is not beyond 2
    next_year = [*items, _out(7, _at(1, 5, 9, year=2027), 30)]
    got = comp.owed(
        point, next_year, policy, start=_at(1, 1, 0, year=2027), end=_at(2, 1, 0, year=2027)
    )
    assert (got.interruptions, got.total) == (1, Decimal("0.00"))


def test_a_category_without_a_rule_is_owed_nothing_and_said() -> None:
    policy = comp.parse_policy(POLICY)
    mv = comp.SupplyPoint("SP-3", "mv", "D-NS", "rural")
    got = comp.owed(mv, [_out(1, _at(4, 10, 8), 600)], policy, start=_at(4, 1, 0), end=_at(7, 1, 0))
    assert not got.covered and got.interruptions == 1 and got.total == Decimal("0.00")


def test_totals_per_district_and_category() -> None:
    policy = comp.parse_policy(POLICY)
    start, end = _at(4, 1, 0), _at(7, 1, 0)
    long_one = [_out(1, _at(4, 10, 8), 241)]
    items = [
        comp.owed(
            comp.SupplyPoint("A", "lv", "D-NS", "urban"), long_one, policy, start=start, end=end
        ),
        comp.owed(
            comp.SupplyPoint("B", "lv", "D-NS", "urban"),
            [_out(1, _at(4, 10, 8), 10)],
            policy,
            start=start,
            end=end,
        ),
        comp.owed(
            comp.SupplyPoint("C", "mv", "D-NS", "rural"), long_one, policy, start=start, end=end
        ),
        comp.owed(comp.SupplyPoint("D", "lv", "D-FT", "urban"), [], policy, start=start, end=end),
    ]
    sums = comp.totals(items)
    assert list(sums) == [("D-NS", "lv"), ("D-NS", "mv")]  # D was not interrupted
    lv = sums[("D-NS", "lv")]
    assert (lv.supply_points, lv.owed_supply_points, lv.interruptions) == (2, 1, 2)
    assert lv.total == Decimal("20.00") and sums[("D-NS", "mv")].total == Decimal("0.00")
