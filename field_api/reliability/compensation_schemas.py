"""Answers of the compensation report (amounts are Decimal yuan, written as strings in JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel


class CategoryRuleRead(BaseModel):
    """One category's rules as the policy states them (absent rule: null)."""

    category: str
    long_hours: Decimal | None
    long_credit: Decimal
    yearly_count: int | None
    beyond_credit: Decimal


class PolicyRead(BaseModel):
    """The policy used: from the operator's file, or the development default (never in
    production or tests)."""

    source: Literal["file", "development_default"]
    counts_above_min: Decimal
    categories: list[CategoryRuleRead]


class CompensationTotalRead(BaseModel):
    """Sums of one district and category (``district`` and ``category`` null: everything)."""

    district: str | None
    category: str | None
    covered: bool
    supply_points: int
    owed_supply_points: int
    interruptions: int
    long_interruptions: int
    beyond_interruptions: int
    long_credit: Decimal
    beyond_credit: Decimal
    total: Decimal


class CompensationRead(BaseModel):
    """What the supply points interrupted in [start, end] (China dates) are owed, per district
    and category; categories without a rule are named in ``uncovered_categories``; open
    interruptions (duration not final) and those of overrides (no supply point known) are
    counted apart, never credited silently."""

    start: date
    end: date
    as_of: datetime
    currency: Literal["CNY"] = "CNY"
    policy: PolicyRead
    totals: list[CompensationTotalRead]
    overall: CompensationTotalRead
    uncovered_categories: list[str]
    open_interruptions: int
    unattributed_interruptions: int
