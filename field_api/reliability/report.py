"""The indices report: per month, year to date, area and district's area, against targets.

Reads outages (their segments) and the register's monthly denominators, then hands plain
values to :mod:`field_api.reliability.rules`. A period's denominator is the mean of its
months' snapshots (the register at the month's end where no snapshot was taken). IEEE 1366
leaves out major event days, found over the service's daily SAIDI history of the five years
before the reported year (2.5β) or, with less history, by the planner's threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.errors import ValidationFailed
from field_api.reliability import rules
from field_api.reliability.models import (
    MedThresholdSetting,
    Outage,
    OutageSegment,
    RegisterSnapshot,
)
from field_api.reliability.register import Served, require, served_by_month, stored_snapshots
from field_api.reliability.rules import Area, Definition, Interruption, Rule, Unit, Variant
from field_api.reliability.schemas import (
    FiguresRead,
    IndicesRead,
    MedRead,
    MedThresholdRead,
    MedThresholdSet,
    ProjectionRead,
    ScopeRead,
)

REPORT_ROLES = (Role.planner, Role.admin, Role.dispatcher)
MED_ROLES = (Role.planner, Role.admin)


@dataclass(frozen=True, slots=True)
class Scope:
    name: str
    district: str | None
    area: Area | None

    def matches(self, district: str, area: Area) -> bool:
        return (self.district in (None, district)) and (self.area in (None, area))


def _china_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=clock.CHINA_TZ).astimezone(UTC)


def interruptions(session: Session, start: date, end: date, as_of: datetime) -> list[Interruption]:
    """Segments of outages that began in [start, end) China time (open ones end at ``as_of``)."""
    rows = session.execute(
        select(Outage.start_at, Outage.cause, OutageSegment)
        .join(OutageSegment, OutageSegment.outage_id == Outage.id)
        .where(Outage.start_at >= _china_midnight(start), Outage.start_at < _china_midnight(end))
        .where(Outage.start_at <= as_of)
    )
    return [
        Interruption(
            start=begin, end=min(segment.restored_at or as_of, as_of), customers=segment.customers,
            supply_points=segment.supply_points, cause=rules.Cause(cause),
            district=segment.district, area=Area(segment.area),
        )
        for begin, cause, segment in rows
    ]


def planner_threshold(session: Session, settings: Settings) -> float | None:
    latest = session.execute(
        select(MedThresholdSetting).order_by(MedThresholdSetting.id.desc()).limit(1)
    ).scalar_one_or_none()
    return latest.threshold_min if latest else settings.reliability.med_threshold_min


def _history_start(session: Session) -> date | None:
    first_snapshot = session.scalar(select(func.min(RegisterSnapshot.month)))
    first_outage = session.scalar(select(func.min(Outage.start_at)))
    found = [d for d in (first_snapshot, first_outage and clock.china_date(first_outage)) if d]
    return min(found) if found else None


def _daily_served(served: dict[date, Served], days: Sequence[date]) -> dict[date, float]:
    return {
        day: float(sum(c for c, _ in served.get(rules.month_start(day), {}).values()))
        for day in days
    }


def major_events(
    session: Session, settings: Settings, year: int, current: Sequence[Interruption],
    served: dict[date, Served], as_of: datetime,
) -> tuple[rules.MedThreshold, list[date]]:
    """T_MED from the five years before ``year`` and the major event days of ``year``."""
    year_start = date(year, 1, 1)
    begun = _history_start(session)
    history_years = (year_start - begun).days / 365.25 if begun else 0.0
    threshold_min = settings.reliability.ieee_momentary_max_min
    history_from = date(year - 5, 1, 1)
    past = interruptions(session, history_from, year_start, as_of)
    months = sorted({rules.month_start(i.day) for i in past})
    past_served = stored_snapshots(session, months)
    past_daily = rules.daily_saidi_min(
        past, _daily_served(past_served, sorted({i.day for i in past})), threshold_min
    )
    threshold = rules.med_threshold(
        past_daily, history_years=history_years,
        planner_threshold_min=planner_threshold(session, settings),
    )
    daily = rules.daily_saidi_min(
        current, _daily_served(served, sorted({i.day for i in current})), threshold_min
    )
    return threshold, rules.major_event_days(daily, threshold)


def _units(served: Served, scope: Scope, unit: Unit) -> float:
    index = 0 if unit is Unit.customers else 1
    return float(sum(v[index] for (d, a), v in served.items() if scope.matches(d, a)))


def _figures(period: str, got: rules.Indices, ytd_saidi_h: float) -> FiguresRead:
    return FiguresRead(
        period=period, served=got.served, ytd_saidi_h=ytd_saidi_h,
        customer_interruptions=got.customer_interruptions,
        customer_hours=got.customer_hours, short_interruptions=got.short_interruptions,
        saidi_h=got.saidi_h, saifi=got.saifi, caidi_h=got.caidi_h, asai=got.asai,
        short_frequency=got.short_frequency,
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """What every scope of one report shares."""

    rule: Rule
    months: list[date]
    hours: dict[date, float]
    served: dict[date, Served]
    items: list[Interruption]
    year_hours: float
    last_year: dict[date, tuple[Served, list[Interruption]]] | None
    urban_h: float
    rural_h: float


def _last_year_remainder(frame: Frame, scope: Scope) -> float | None:
    """Last year's SAIDI of the months still to come (None where last year lacks them)."""
    if frame.last_year is None:
        return None
    remainder = 0.0
    for month_served, past in frame.last_year.values():
        units = _units(month_served, scope, frame.rule.unit)
        matching = [i for i in past if scope.matches(i.district, i.area)]
        remainder += rules.compute(matching, served=units, period_hours=1.0,
                                   rule=frame.rule).saidi_h
    return remainder


def _scope(frame: Frame, scope: Scope) -> ScopeRead:
    items = [i for i in frame.items if scope.matches(i.district, i.area)]
    monthly: list[FiguresRead] = []
    so_far: list[Interruption] = []
    for n, month in enumerate(frame.months, start=1):
        in_month = [i for i in items if rules.month_of(i.start) == month]
        so_far += in_month
        served = _units(frame.served[month], scope, frame.rule.unit)
        got = rules.compute(in_month, served=served, period_hours=frame.hours[month],
                            rule=frame.rule)
        through = rules.compute(
            so_far, served=rules.average_served([f.served for f in monthly] + [served]),
            period_hours=sum(frame.hours[m] for m in frame.months[:n]), rule=frame.rule,
        )
        monthly.append(_figures(month.strftime("%Y-%m"), got, through.saidi_h))
    ytd_hours = sum(frame.hours.values())
    ytd = rules.compute(
        items, served=rules.average_served([f.served for f in monthly]),
        period_hours=ytd_hours, rule=frame.rule,
    )
    remainder = _last_year_remainder(frame, scope)
    target = rules.target_of(scope.area, urban_h=frame.urban_h, rural_h=frame.rural_h)
    projection = rules.project_year_end(
        ytd.saidi_h, elapsed_fraction=ytd_hours / frame.year_hours,
        last_year_remainder_h=remainder, target_h=target,
    )
    return ScopeRead(
        scope=scope.name, district=scope.district, area=scope.area, target_h=target,
        months=monthly, ytd=_figures("ytd", ytd, ytd.saidi_h),
        projection=ProjectionRead(saidi_h=projection.saidi_h, method=projection.method.value,
                                  target_h=target, on_track=projection.on_track),
    )


def _months(year: int, as_of: datetime) -> tuple[list[date], dict[date, float]]:
    """The reported months (to ``as_of``'s month) and their hours (the current one so far)."""
    today = clock.to_china(as_of)
    last = 12 if year < today.year else today.month
    months = [date(year, m, 1) for m in range(1, last + 1)]
    hours = {m: rules.month_hours(m) for m in months}
    if year == today.year:
        current = months[-1]
        hours[current] = (as_of - _china_midnight(current)).total_seconds() / 3600.0
    return months, hours


def _last_year(
    session: Session, year: int, months: list[date], as_of: datetime
) -> dict[date, tuple[Served, list[Interruption]]] | None:
    """Last year's months after the reported ones, if last year has a snapshot of each."""
    rest = [date(year - 1, m, 1) for m in range(len(months) + 1, 13)]
    if not rest:
        return None
    stored = stored_snapshots(session, rest)
    if any(m not in stored for m in rest):
        return None
    past = interruptions(session, rest[0], date(year, 1, 1), as_of)
    return {m: (stored[m], [i for i in past if rules.month_of(i.start) == m]) for m in rest}


def _rule(settings: Settings, definition: Definition, variant: Variant) -> Rule:
    if definition is Definition.dlt836:
        return rules.dlt_rule(variant, settings.reliability.dlt_short_max_min)
    return rules.ieee_rule(settings.reliability.ieee_momentary_max_min)


def indices(
    session: Session, settings: Settings, actor: Principal, *, year: int | None = None,
    definition: Definition = Definition.dlt836, variant: Variant = Variant.all,
) -> IndicesRead:
    """The indices of ``year`` (default: this year) under one definition and variant."""
    require(actor, REPORT_ROLES, "read reliability indices")
    as_of = clock.now()
    this_year = clock.to_china(as_of).year
    year = year or this_year
    if year > this_year:
        raise ValidationFailed(
            f"{year} has not begun", code="reliability.year_in_future", params={"year": year}
        )
    if definition is Definition.ieee1366:
        variant = Variant.all
    months, hours = _months(year, as_of)
    served = served_by_month(session, months)
    items = interruptions(session, date(year, 1, 1), date(year + 1, 1, 1), as_of)
    rule, med = _rule(settings, definition, variant), None
    if definition is Definition.ieee1366:
        threshold, days = major_events(session, settings, year, items, served, as_of)
        rule = rules.ieee_rule(rule.threshold_min, days)
        med = MedRead(method=threshold.method.value, threshold_min=threshold.threshold_min,
                      history_days=threshold.history_days, days=days)
    frame = Frame(
        rule=rule, months=months, hours=hours, served=served, items=items,
        year_hours=rules.year_hours(year), last_year=_last_year(session, year, months, as_of),
        urban_h=settings.reliability.target_urban_h, rural_h=settings.reliability.target_rural_h,
    )
    districts = sorted({d for s in served.values() for d, _ in s} | {i.district for i in items})
    scopes = [Scope("all", None, None), Scope("area", None, Area.urban),
              Scope("area", None, Area.rural)]
    scopes += [Scope("district", d, a) for d in districts for a in Area]
    return IndicesRead(
        year=year, definition=definition, variant=variant, unit=rule.unit.value,
        sustained_above_min=rule.threshold_min, as_of=as_of, med=med,
        scopes=[_scope(frame, s) for s in scopes],
    )


def set_med_threshold(
    session: Session, body: MedThresholdSet, actor: Principal
) -> MedThresholdRead:
    """A planner sets the major-event-day threshold used under five years of history."""
    require(actor, MED_ROLES, "set the major-event-day threshold")
    row = MedThresholdSetting(threshold_min=body.threshold_min, reason=body.reason,
                              set_by=actor.user_id, set_at=clock.now())
    session.add(row)
    audit.record(session, actor=actor, action="reliability.med_threshold_set", entity=row)
    return MedThresholdRead(threshold_min=row.threshold_min, reason=row.reason,
                            set_at=row.set_at)


CSV_COLUMNS = (
    "scope", "district", "area", "period", "served", "saidi_h", "ytd_saidi_h", "saifi",
    "caidi_h", "asai", "short_frequency", "target_h", "projection_h", "projection_method",
)


def csv_rows(report: IndicesRead) -> list[dict[str, object]]:
    """One CSV row per scope and period (months, then the year to date with its projection)."""
    out: list[dict[str, object]] = []
    for scope in report.scopes:
        for fig in [*scope.months, scope.ytd]:
            is_ytd = fig.period == "ytd"
            out.append({
                "scope": scope.scope, "district": scope.district,
                "area": scope.area.value if scope.area else None, "period": fig.period,
                "served": fig.served, "saidi_h": fig.saidi_h, "ytd_saidi_h": fig.ytd_saidi_h,
                "saifi": fig.saifi,
                "caidi_h": fig.caidi_h, "asai": fig.asai, "short_frequency": fig.short_frequency,
                "target_h": scope.target_h,
                "projection_h": scope.projection.saidi_h if is_ytd else None,
                "projection_method": scope.projection.method if is_ytd else None,
            })
    return out

