"""Compensation for service interruptions, pure: the policy and what each supply point is owed.

The policy is a TOML text (``FIELDOPS_RELIABILITY_COMPENSATION_PATH`` names its file), one
table per customer category the register knows (``supply_kind``: ``lv`` for a low-voltage
supply point, ``mv`` for a medium-voltage user), each with one or both rules::

    counts_above_min = 3        # an interruption counts when it lasts longer than this

    [category.lv]
    long_hours = 8              # each interruption longer than 8 h ...
    long_credit = "20.00"       # ... is credited 20.00 yuan
    yearly_count = 4            # each interruption beyond the 4th of a calendar year ...
    beyond_credit = "10.00"     # ... is credited 10.00 yuan

Amounts are yuan with at most two decimals (fen), read as :class:`~decimal.Decimal` (never a
float). A category without a table is owed nothing and is *said* to have no rule.

Each supply point's interruptions are its own: an outage restored in steps gives every supply
point the duration of its own transformer's segment. The count rule numbers a supply point's
counted interruptions within each China calendar year, so a period that starts in the middle of
the year needs the interruptions since the 1st of January (the caller passes them all; only
those that began in the period are credited). Open interruptions are not passed in (their
duration is not final).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

CHINA = timezone(timedelta(hours=8), "CST")
CATEGORIES = ("lv", "mv")
FEN = Decimal("0.01")
ZERO = Decimal("0.00")
RULE_KEYS = frozenset({"long_hours", "long_credit", "yearly_count", "beyond_credit"})


class PolicyError(ValueError):
    """The policy text is not a valid compensation policy (the message says why)."""


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """One category's credits: per interruption longer than ``long_hours`` and per
    interruption beyond ``yearly_count`` in a calendar year (either pair may be absent)."""

    long_hours: Decimal | None = None
    long_credit: Decimal = ZERO
    yearly_count: int | None = None
    beyond_credit: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Policy:
    counts_above_min: Decimal
    categories: Mapping[str, CategoryRule]


@dataclass(frozen=True, slots=True)
class PointInterruption:
    """One closed interruption of one supply point (its own restoration time)."""

    outage_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SupplyPoint:
    id: str
    category: str
    district: str
    area: str
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Owed:
    """What one supply point is owed for the period."""

    point: SupplyPoint
    covered: bool
    interruptions: int = 0
    long_interruptions: int = 0
    beyond_interruptions: int = 0
    long_credit: Decimal = ZERO
    beyond_credit: Decimal = ZERO
    outage_ids: tuple[int, ...] = field(default=())

    @property
    def total(self) -> Decimal:
        return self.long_credit + self.beyond_credit


# --- the policy ---------------------------------------------------------------------------------


def _money(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise PolicyError(f'{where} is an amount in yuan, such as "20.00"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise PolicyError(f"{where} is not an amount: {value!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise PolicyError(f"{where} must be zero or more")
    if amount != amount.quantize(FEN):
        raise PolicyError(f"{where} has more than two decimals (fen)")
    return amount.quantize(FEN)


def _positive(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise PolicyError(f"{where} is a number")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise PolicyError(f"{where} must be zero or more")
    return number


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{where} is a whole number of interruptions, zero or more")
    return value


def _category(name: str, table: Any) -> CategoryRule:
    where = f"category.{name}"
    if not isinstance(table, dict):
        raise PolicyError(f"{where} is a table")
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        raise PolicyError(f"{where} has unknown keys: {', '.join(unknown)}")
    for first, second in (("long_hours", "long_credit"), ("yearly_count", "beyond_credit")):
        if (first in table) != (second in table):
            raise PolicyError(f"{where} needs {first} and {second} together")
    if not table:
        raise PolicyError(f"{where} has no rule")
    return CategoryRule(
        long_hours=_positive(table["long_hours"], f"{where}.long_hours")
        if "long_hours" in table
        else None,
        long_credit=_money(table.get("long_credit", 0), f"{where}.long_credit"),
        yearly_count=_count(table["yearly_count"], f"{where}.yearly_count")
        if "yearly_count" in table
        else None,
        beyond_credit=_money(table.get("beyond_credit", 0), f"{where}.beyond_credit"),
    )


def parse_policy(text: str) -> Policy:
    """The policy of a TOML text (numbers with a fraction read as Decimal); PolicyError if not."""
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not TOML: {exc}") from exc
    unknown = sorted(set(raw) - {"counts_above_min", "category"})
    if unknown:
        raise PolicyError(f"unknown keys: {', '.join(unknown)}")
    tables = raw.get("category")
    if not isinstance(tables, dict) or not tables:
        raise PolicyError(
            "no [category.<kind>] table: name at least one of " + ", ".join(CATEGORIES)
        )
    wrong = sorted(set(tables) - set(CATEGORIES))
    if wrong:
        raise PolicyError(
            f"unknown categories: {', '.join(wrong)} (the register knows "
            + ", ".join(CATEGORIES)
            + ")"
        )
    return Policy(
        counts_above_min=_positive(raw.get("counts_above_min", 3), "counts_above_min"),
        categories={name: _category(name, tables[name]) for name in sorted(tables)},
    )


# --- what is owed -------------------------------------------------------------------------------


def _longer_than(span: timedelta, minutes: Decimal) -> bool:
    micros = span // timedelta(microseconds=1)
    return Decimal(micros) > minutes * 60 * 1_000_000


def owed(
    point: SupplyPoint,
    interruptions: Iterable[PointInterruption],
    policy: Policy,
    *,
    start: datetime,
    end: datetime,
) -> Owed:
    """What ``point`` is owed for the interruptions that began in [start, end).

    ``interruptions`` holds the point's closed interruptions since the 1st of January (China
    time) of ``start``'s year, so the count rule can number them within each calendar year.
    """
    rule = policy.categories.get(point.category)
    counted = sorted(
        (i for i in interruptions if _longer_than(i.end - i.start, policy.counts_above_min)),
        key=lambda i: (i.start, i.outage_id),
    )
    ordinal: dict[int, int] = {}
    numbered: list[tuple[int, PointInterruption]] = []
    for item in counted:
        year = item.start.astimezone(CHINA).year
        ordinal[year] = ordinal.get(year, 0) + 1
        numbered.append((ordinal[year], item))
    in_period = [(n, i) for n, i in numbered if start <= i.start < end]
    if rule is None:
        return Owed(
            point,
            covered=False,
            interruptions=len(in_period),
            outage_ids=tuple(i.outage_id for _, i in in_period),
        )
    long_n = (
        0
        if rule.long_hours is None
        else sum(1 for _, i in in_period if _longer_than(i.end - i.start, rule.long_hours * 60))
    )
    beyond_n = (
        0 if rule.yearly_count is None else sum(1 for n, _ in in_period if n > rule.yearly_count)
    )
    return Owed(
        point,
        covered=True,
        interruptions=len(in_period),
        long_interruptions=long_n,
        beyond_interruptions=beyond_n,
        long_credit=(rule.long_credit * long_n).quantize(FEN),
        beyond_credit=(rule.beyond_credit * beyond_n).quantize(FEN),
        outage_ids=tuple(i.outage_id for _, i in in_period),
    )


@dataclass(slots=True)
class Total:
    """Sums of one district and category (or of everything)."""

    supply_points: int = 0
    owed_supply_points: int = 0
    interruptions: int = 0
    long_interruptions: int = 0
    beyond_interruptions: int = 0
    long_credit: Decimal = ZERO
    beyond_credit: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.long_credit + self.beyond_credit

    def add(self, item: Owed) -> None:
        self.supply_points += 1
        self.owed_supply_points += 1 if item.total > 0 else 0
        self.interruptions += item.interruptions
        self.long_interruptions += item.long_interruptions
        self.beyond_interruptions += item.beyond_interruptions
        self.long_credit += item.long_credit
        self.beyond_credit += item.beyond_credit


def totals(items: Sequence[Owed]) -> dict[tuple[str, str], Total]:
    """Sums per (district, category) of the supply points interrupted in the period."""
    out: dict[tuple[str, str], Total] = {}
    for item in items:
        if item.interruptions:
            out.setdefault((item.point.district, item.point.category), Total()).add(item)
    return dict(sorted(out.items()))
