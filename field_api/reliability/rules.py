"""Supply reliability indices (SAIDI, SAIFI, CAIDI, ASAI, short interruptions), pure.

Two definitions, each with its thresholds passed in (``settings.reliability``):

- **DL/T 836.1** (the Chinese standard): an interruption lasting more than ``threshold_min``
  (3 min) is sustained, one of at most that long is short. The unit counted is the *user*: a
  medium-voltage user, or a public transformer's low-voltage supply point, counts once
  (``supply_points``). Variants: ``all`` (every interruption, short ones included),
  ``no_external`` (without external causes), ``no_shortage`` (without supply shortage),
  ``no_short`` (sustained interruptions only).
- **IEEE 1366**: sustained above ``threshold_min`` (5 min); the unit is the customer account;
  SAIDI/SAIFI/CAIDI/ASAI count sustained interruptions only and leave out the major event days
  (days whose SAIDI is above T_MED = exp(α + 2.5β) of the daily SAIDI history, or a
  planner-set threshold while under five years of history); MAIFI counts the momentary ones.

An :class:`Interruption` is one group of customers that lost supply together and got it back
together: an outage restored in steps is several interruptions with one start. Durations are
in hours (SAIDI, CAIDI) and the MED threshold in minutes of daily SAIDI.
"""

from __future__ import annotations

import csv
import enum
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Generic, TypeVar

T = TypeVar("T")

CHINA = timezone(timedelta(hours=8), "CST")


class Cause(enum.StrEnum):
    planned_maintenance = "planned_maintenance"
    fault = "fault"
    external = "external"
    supply_shortage = "supply_shortage"
    customer_caused = "customer_caused"


class OutageKind(enum.StrEnum):
    planned = "planned"
    fault = "fault"


class Area(enum.StrEnum):
    urban = "urban"
    rural = "rural"


class Definition(enum.StrEnum):
    dlt836 = "dlt836"
    ieee1366 = "ieee1366"


class Variant(enum.StrEnum):
    all = "all"
    no_external = "no_external"
    no_shortage = "no_shortage"
    no_short = "no_short"


class Unit(enum.StrEnum):
    customers = "customers"
    supply_points = "supply_points"


@dataclass(frozen=True, slots=True)
class Interruption:
    """Customers (and supply points) out from ``start`` to ``end`` together."""

    start: datetime
    end: datetime
    customers: int
    supply_points: int
    cause: Cause = Cause.fault
    district: str = ""
    area: Area = Area.urban

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0

    @property
    def day(self) -> date:
        """The China date it began on (major event days are China days)."""
        return self.start.astimezone(CHINA).date()

    def units(self, unit: Unit) -> int:
        return self.customers if unit is Unit.customers else self.supply_points


@dataclass(frozen=True, slots=True)
class Rule:
    """How one definition (and variant) counts interruptions."""

    definition: Definition
    variant: Variant
    threshold_min: float
    unit: Unit
    count_short: bool
    excluded_causes: frozenset[Cause] = frozenset()
    excluded_days: frozenset[date] = frozenset()


def dlt_rule(variant: Variant, threshold_min: float) -> Rule:
    """DL/T 836.1 and one of its variants (users = supply points)."""
    excluded = {
        Variant.no_external: frozenset({Cause.external}),
        Variant.no_shortage: frozenset({Cause.supply_shortage}),
    }.get(variant, frozenset())
    return Rule(
        Definition.dlt836, variant, threshold_min, Unit.supply_points,
        count_short=variant is not Variant.no_short, excluded_causes=excluded,
    )


def ieee_rule(threshold_min: float, major_event_days: Iterable[date] = ()) -> Rule:
    """IEEE 1366: sustained interruptions of customers, the major event days left out."""
    return Rule(
        Definition.ieee1366, Variant.all, threshold_min, Unit.customers, count_short=False,
        excluded_days=frozenset(major_event_days),
    )


def is_sustained(minutes: float, threshold_min: float) -> bool:
    """Sustained means *longer* than the threshold: exactly 3 (or 5) minutes is short."""
    return minutes > threshold_min


@dataclass(frozen=True, slots=True)
class Indices:
    """The indices of one scope and period. ``served`` is the average count of the rule's unit.

    ``short_frequency`` is the short-interruption frequency (MAIFI under IEEE 1366)."""

    served: float
    hours: float
    customer_interruptions: int
    customer_hours: float
    short_interruptions: int
    saidi_h: float
    saifi: float
    caidi_h: float | None
    asai: float
    short_frequency: float


def compute(
    interruptions: Iterable[Interruption], *, served: float, period_hours: float, rule: Rule
) -> Indices:
    """The indices of ``interruptions`` over ``served`` units for a period of ``period_hours``."""
    counted = 0
    customer_hours = 0.0
    short = 0
    for item in interruptions:
        if item.cause in rule.excluded_causes or item.day in rule.excluded_days:
            continue
        units = item.units(rule.unit)
        if not is_sustained(item.minutes, rule.threshold_min):
            short += units
            if not rule.count_short:
                continue
        counted += units
        customer_hours += units * item.minutes / 60.0
    if served <= 0:
        return Indices(served, period_hours, counted, customer_hours, short, 0.0, 0.0, None,
                       1.0, 0.0)
    saidi = customer_hours / served
    saifi = counted / served
    return Indices(
        served=served,
        hours=period_hours,
        customer_interruptions=counted,
        customer_hours=customer_hours,
        short_interruptions=short,
        saidi_h=saidi,
        saifi=saifi,
        caidi_h=saidi / saifi if saifi > 0 else None,
        asai=1.0 - saidi / period_hours if period_hours > 0 else 1.0,
        short_frequency=short / served,
    )


# --- periods -----------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def month_hours(month: date) -> float:
    return (next_month(month) - month).days * 24.0


def year_hours(year: int) -> float:
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days * 24.0


def month_of(moment: datetime) -> date:
    """The China month an interruption belongs to (the month it began in)."""
    return month_start(moment.astimezone(CHINA).date())


def average_served(counts: Sequence[float]) -> float:
    """A period's denominator: the mean of its monthly register snapshots, so customers
    added during the year count for the months they were served."""
    return sum(counts) / len(counts) if counts else 0.0


# --- major event days (IEEE 1366, 2.5 beta) ----------------------------------------------------


class MedMethod(enum.StrEnum):
    beta = "2.5beta"
    planner = "planner"
    none = "none"


@dataclass(frozen=True, slots=True)
class MedThreshold:
    """T_MED in minutes of daily SAIDI and how it was found."""

    threshold_min: float | None
    method: MedMethod
    history_days: int
    alpha: float | None = None
    beta: float | None = None


MIN_HISTORY_YEARS = 5


def daily_saidi_min(
    interruptions: Iterable[Interruption], served_on: Mapping[date, float], threshold_min: float
) -> dict[date, float]:
    """Customer-minutes of sustained interruptions per China day over that day's customers."""
    minutes: dict[date, float] = {}
    for item in interruptions:
        if is_sustained(item.minutes, threshold_min):
            minutes[item.day] = minutes.get(item.day, 0.0) + item.customers * item.minutes
    return {
        day: total / served_on[day] for day, total in minutes.items() if served_on.get(day, 0) > 0
    }


def med_threshold(
    daily: Mapping[date, float], *, history_years: float, planner_threshold_min: float | None
) -> MedThreshold:
    """T_MED = exp(α + 2.5β) over the log of the non-zero daily SAIDI values of five years of
    history; with less history, the planner's threshold (or none at all)."""
    values = [v for v in daily.values() if v > 0]
    if history_years >= MIN_HISTORY_YEARS and len(values) >= 2:
        logs = [math.log(v) for v in values]
        alpha = statistics.fmean(logs)
        beta = statistics.stdev(logs)
        return MedThreshold(math.exp(alpha + 2.5 * beta), MedMethod.beta, len(values), alpha, beta)
    if planner_threshold_min is not None:
        return MedThreshold(planner_threshold_min, MedMethod.planner, len(values))
    return MedThreshold(None, MedMethod.none, len(values))


def major_event_days(daily: Mapping[date, float], threshold: MedThreshold) -> list[date]:
    """Days whose SAIDI exceeds T_MED."""
    if threshold.threshold_min is None:
        return []
    return sorted(day for day, value in daily.items() if value > threshold.threshold_min)


# --- year-end projection -----------------------------------------------------------------------


class ProjectionMethod(enum.StrEnum):
    last_year = "ytd_plus_last_year_remainder"
    pro_rata = "pro_rata"


@dataclass(frozen=True, slots=True)
class Projection:
    saidi_h: float
    method: ProjectionMethod
    target_h: float | None
    on_track: bool | None


def project_year_end(
    ytd_saidi_h: float, *, elapsed_fraction: float, last_year_remainder_h: float | None,
    target_h: float | None,
) -> Projection:
    """Year-end SAIDI: year to date plus last year's SAIDI of the months still to come where
    last year has them; otherwise year to date scaled by the elapsed share of the year."""
    if last_year_remainder_h is not None:
        value, method = ytd_saidi_h + last_year_remainder_h, ProjectionMethod.last_year
    else:
        share = min(max(elapsed_fraction, 1e-9), 1.0)
        value, method = ytd_saidi_h / share, ProjectionMethod.pro_rata
    on_track = None if target_h is None else value <= target_h
    return Projection(value, method, target_h, on_track)


def target_of(area: Area | None, *, urban_h: float, rural_h: float) -> float | None:
    if area is None:
        return None
    return urban_h if area is Area.urban else rural_h


# --- CSV files of the register and of outages ---------------------------------------------------


class ReliabilityFileError(ValueError):
    """A file that cannot be read at all (not UTF-8, no header, columns missing)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SectionRow:
    row: int
    switch_code: str
    feeder: str
    district: str
    transformer_code: str


@dataclass(frozen=True, slots=True)
class CustomerRow:
    row: int
    account_no: str
    name: str
    phone: str
    supply_point: str
    supply_kind: str
    transformer_code: str
    switch_code: str
    area: Area
    connected_on: date
    removed_on: date | None = None


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    rows: list[T] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


SECTION_COLUMNS = ("switch_code", "feeder", "district", "transformer_code")
CUSTOMER_COLUMNS = (
    "account_no", "name", "phone", "supply_point", "supply_kind", "transformer_code",
    "switch_code", "area", "connected_on",
)
SUPPLY_KINDS = ("lv", "mv")


def read_csv(data: bytes, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV (a BOM allowed) that names every column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReliabilityFileError("the file is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ReliabilityFileError("missing columns: " + ", ".join(missing))
    return [
        (i, {k: (v or "").strip() for k, v in row.items() if k is not None})
        for i, row in enumerate(reader, start=2)
    ]


def parse_sections(data: bytes) -> Parsed[SectionRow]:
    """Feeder sections: one row per (switch, transformer downstream of it)."""
    out: Parsed[SectionRow] = Parsed()
    seen: dict[str, int] = {}
    for line, row in read_csv(data, SECTION_COLUMNS):
        errors = [f"{c} is empty" for c in SECTION_COLUMNS if not row[c]]
        errors += [f"{c} is longer than 64 characters" for c in SECTION_COLUMNS
                   if len(row[c]) > 64]
        code = row["transformer_code"]
        if code and code in seen:
            errors.append(f"transformer {code} is already in row {seen[code]}")
        seen.setdefault(code, line)
        if errors:
            out.errors.append(RowError(line, tuple(errors)))
        else:
            out.rows.append(SectionRow(line, *(row[c] for c in SECTION_COLUMNS)))
    return out


def _customer_errors(row: Mapping[str, str]) -> list[str]:
    required = ("account_no", "name", "phone", "supply_point", "supply_kind",
                "transformer_code", "area", "connected_on")
    errors = [f"{c} is empty" for c in required if not row[c]]
    if row["supply_kind"] and row["supply_kind"] not in SUPPLY_KINDS:
        errors.append("supply_kind is lv or mv")
    if row["area"] and row["area"] not in Area.__members__:
        errors.append("area is urban or rural")
    phone = row["phone"]
    if phone and not sum(ch.isdigit() for ch in phone) >= 7:
        errors.append("phone has fewer than 7 digits")
    for name in ("connected_on", "removed_on"):
        if row.get(name):
            try:
                date.fromisoformat(row[name])
            except ValueError:
                errors.append(f"{name} is not a date (YYYY-MM-DD)")
    if not errors and row.get("removed_on") and row["removed_on"] <= row["connected_on"]:
        errors.append("removed_on is not after connected_on")
    errors += [f"{c} is longer than 64 characters" for c in CUSTOMER_COLUMNS
               if c != "name" and len(row[c]) > 64]
    if len(row["name"]) > 200:
        errors.append("name is longer than 200 characters")
    return errors


def parse_customers(data: bytes) -> Parsed[CustomerRow]:
    """Customer accounts, all rows checked (a duplicate account number is an error); an
    optional ``removed_on`` column closes accounts (they stop counting from that day)."""
    out: Parsed[CustomerRow] = Parsed()
    seen: dict[str, int] = {}
    for line, row in read_csv(data, CUSTOMER_COLUMNS):
        errors = _customer_errors(row)
        account = row["account_no"]
        if account and account in seen:
            errors.append(f"account {account} is already in row {seen[account]}")
        seen.setdefault(account, line)
        if errors:
            out.errors.append(RowError(line, tuple(errors)))
            continue
        out.rows.append(CustomerRow(
            line, account, row["name"], row["phone"], row["supply_point"], row["supply_kind"],
            row["transformer_code"], row["switch_code"], Area(row["area"]),
            date.fromisoformat(row["connected_on"]),
            date.fromisoformat(row["removed_on"]) if row.get("removed_on") else None,
        ))
    return out
