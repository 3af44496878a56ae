"""Use cases of visits: arrive, complete the one-visit connection, depart; one-visit statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth import service as auth_service
from field_api.checklists import service as checklists
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.common.geodesy import Position, distance_m
from field_api.deadlines import service as deadlines
from field_api.deadlines.rules import END_TO_END
from field_api.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from field_api.privacy import mask_name
from field_api.visits import evidence
from field_api.visits.models import Visit, VisitOutcome
from field_api.visits.rules import CompletionPlan, Gap, is_one_visit, plan_completion, rate
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import Stage

# How far from the order's location an arrival still counts as on site (GPS on a phone
# under a roof is often 30-80 m off). Configurable default, not a rule from a standard.
DEFAULT_MAX_ARRIVAL_DISTANCE_M = 200.0


def get_or_raise(session: Session, order_id: int, visit_id: int) -> Visit:
    """The visit of that order; 404 otherwise."""
    visit = session.get(Visit, visit_id)
    if visit is None or visit.order_id != order_id:
        raise NotFound(
            f"visit {visit_id} of work order {order_id} not found",
            code="visit.not_found",
            params={"visit_id": visit_id, "order_id": order_id},
        )
    return visit


def visits_of(session: Session, order_id: int) -> list[Visit]:
    """The order's visits, oldest first."""
    return list(
        session.execute(
            select(Visit).where(Visit.order_id == order_id).order_by(Visit.id)
        ).scalars()
    )


def visits_for_actor(session: Session, order_id: int, actor: Principal) -> list[Visit]:
    """:func:`visits_of` an order the actor may read."""
    orders.get_for_actor(session, order_id, actor, write=False)
    return visits_of(session, order_id)


def arrive(
    session: Session,
    order_id: int,
    *,
    actor: Principal,
    lat: float,
    lon: float,
    accuracy_m: float | None = None,
    device_time: datetime | None = None,
) -> Visit:
    """Open a visit: the crew is at the site (GPS recorded, distance to the order kept)."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    if order.crew_id is None:
        raise InvalidTransition(
            f"order {order_id} is not assigned to a crew",
            code="visit.order_unassigned",
            params={"order_id": order_id},
        )
    if order.stage not in (Stage.accepted, *evidence.FIELD_PATH) or order.stage == Stage.energised:
        raise InvalidTransition(
            f"order {order_id} is {order.stage.value}: there is no site work left",
            code="visit.no_site_work",
            params={"order_id": order_id, "stage": order.stage.value},
        )
    open_visit = session.execute(
        select(Visit).where(Visit.order_id == order_id, Visit.outcome == VisitOutcome.open)
    ).scalar_one_or_none()
    if open_visit is not None:
        raise Conflict(
            f"visit {open_visit.id} of order {order_id} is still open; depart first",
            code="visit.still_open",
            params={"visit_id": open_visit.id, "order_id": order_id},
        )
    visit = Visit(
        order_id=order.id,
        crew_id=order.crew_id,
        opened_by=actor.user_id,
        start_stage=order.stage,
        arrived_at=clock.now(),
        arrival_device_time=device_time,
        arrival_lat=lat,
        arrival_lon=lon,
        arrival_accuracy_m=accuracy_m,
        arrival_distance_m=distance_m(Position(lat, lon), Position(order.lat, order.lon)),
        outcome=VisitOutcome.open,
        stages_done=[],
        missing=[],
    )
    session.add(visit)
    audit.record(session, actor=actor, action="visit.arrive", entity=visit)
    return visit


@dataclass(frozen=True)
class Completion:
    """What a completion attempt did."""

    visit: Visit
    order: WorkOrder
    plan: CompletionPlan


def complete(
    session: Session,
    order_id: int,
    visit_id: int,
    *,
    actor: Principal,
    device_time: datetime | None = None,
    lat: float | None = None,
    lon: float | None = None,
    max_arrival_distance_m: float = DEFAULT_MAX_ARRIVAL_DISTANCE_M,
) -> Completion:
    """Move the order through every stage whose evidence is present; stop at the first gap.

    The gaps of the stage it stopped at are listed precisely and kept on the visit, so the
    crew fixes them and calls again within the same visit.
    """
    order = orders.get_for_actor(session, order_id, actor, write=True)
    visit = get_or_raise(session, order_id, visit_id)
    if visit.outcome != VisitOutcome.open:
        raise Conflict(
            f"visit {visit_id} is closed ({visit.outcome.value})",
            code="visit.closed",
            params={"visit_id": visit_id, "outcome": visit.outcome.value},
        )
    if order.stage not in (Stage.accepted, *evidence.FIELD_PATH):
        raise InvalidTransition(
            f"order {order_id} is {order.stage.value}: not on the one-visit path",
            code="visit.wrong_stage",
            params={"order_id": order_id, "stage": order.stage.value},
        )
    gaps = evidence.gaps_by_stage(
        session, order, visit, max_arrival_distance_m=max_arrival_distance_m
    )
    plan = plan_completion(order.stage, gaps)
    for stage in plan.moves:
        orders.transition(
            session,
            order,
            stage,
            actor=actor,
            device_time=device_time,
            device_lat=lat,
            device_lon=lon,
            data={"visit": visit.id, "one_visit_completion": True},
        )
    visit.missing = [gap.as_dict() for gap in plan.missing]
    if plan.complete:
        visit.outcome = VisitOutcome.completed
        visit.completed_at = clock.now()
    audit.record(session, actor=actor, action="visit.complete_attempt", entity=visit)
    return Completion(visit=visit, order=order, plan=plan)


def depart(
    session: Session,
    order_id: int,
    visit_id: int,
    *,
    actor: Principal,
    lat: float,
    lon: float,
    device_time: datetime | None = None,
) -> Visit:
    """Close the visit with the departure position (a visit left open is left incomplete)."""
    orders.get_for_actor(session, order_id, actor, write=True)
    visit = get_or_raise(session, order_id, visit_id)
    if visit.departed_at is not None:
        raise Conflict(
            f"visit {visit_id} has already departed",
            code="visit.already_departed",
            params={"visit_id": visit_id},
        )
    visit.departed_at = clock.now()
    visit.departure_device_time = device_time
    visit.departure_lat = lat
    visit.departure_lon = lon
    if visit.outcome == VisitOutcome.open:
        visit.outcome = VisitOutcome.left_incomplete
    audit.record(session, actor=actor, action="visit.depart", entity=visit)
    return visit


# ---------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class OneVisitOrder:
    """One energised order in the one-visit statistics (customer masked)."""

    order_id: int
    crew_code: str | None
    crew_name: str | None
    district_code: str | None
    district_name: str | None
    customer: str
    visits: int
    one_visit: bool
    energised_at: datetime


@dataclass(frozen=True)
class OneVisitRow:
    """One-visit completion of one crew or district by its code and name (as in every planner
    report), or of all (code ``all``)."""

    code: str
    name: str
    energised: int
    one_visit: int
    rate: float | None


def one_visit_orders(session: Session, *, date_from: date, date_to: date) -> list[OneVisitOrder]:
    """Orders energised in the range, each with whether one visit connected it."""
    start, end = checklists.day_range(date_from, date_to)
    energised = session.execute(
        select(StageTransition.order_id, func.min(StageTransition.at))
        .where(
            StageTransition.to_stage == Stage.energised,
            StageTransition.at >= start,
            StageTransition.at < end,
        )
        .group_by(StageTransition.order_id)
    ).all()
    if not energised:
        return []
    ids = [order_id for order_id, _ in energised]
    by_order: dict[int, list[Visit]] = {i: [] for i in ids}
    for visit in session.execute(
        select(Visit).where(Visit.order_id.in_(ids)).order_by(Visit.id)
    ).scalars():
        by_order[visit.order_id].append(visit)
    order_rows = {
        o.id: o for o in session.execute(select(WorkOrder).where(WorkOrder.id.in_(ids))).scalars()
    }
    units = auth_service.unit_names(session)
    result = []
    for order_id, at in sorted(energised):
        visits = by_order[order_id]
        order = order_rows[order_id]
        crew_code, crew_name = units.crew(order.crew_id)
        district_code, district_name = units.district(order.district_id)
        result.append(
            OneVisitOrder(
                order_id=order_id,
                crew_code=crew_code,
                crew_name=crew_name,
                district_code=district_code,
                district_name=district_name,
                customer=mask_name(order.customer_name),
                visits=len(visits),
                one_visit=any(
                    is_one_visit(v.start_stage, v.stages_done, visits_of_order=len(visits))
                    for v in visits
                ),
                energised_at=at,
            )
        )
    return result


OneVisitGroup = Literal["crew", "district"]


def one_visit_rate(
    session: Session,
    *,
    date_from: date,
    date_to: date,
    group_by: OneVisitGroup = "crew",
    all_name: str = "全部",
) -> list[OneVisitRow]:
    """One-visit completion rate per crew or per district, and overall (code ``all`` first,
    named ``all_name``)."""
    rows = one_visit_orders(session, date_from=date_from, date_to=date_to)
    groups: dict[tuple[str, str], list[OneVisitOrder]] = {}
    for row in rows:
        code, name = (
            (row.district_code, row.district_name)
            if group_by == "district"
            else (row.crew_code, row.crew_name)
        )
        key = (code or "", name or "")  # orders without a crew: one row with empty cells
        groups.setdefault(key, []).append(row)
    total_one = sum(r.one_visit for r in rows)
    result = [OneVisitRow("all", all_name, len(rows), total_one, rate(total_one, len(rows)))]
    for (code, name), members in sorted(groups.items()):
        done = sum(r.one_visit for r in members)
        result.append(OneVisitRow(code, name, len(members), done, rate(done, len(members))))
    return result


# ---------------------------------------------------------------------------- trend by month

TREND_MONTHS = 36  # three years of months is already more than a chart can show


@dataclass(frozen=True)
class TrendRow:
    """One month of the planners' three rates (all crews; None where nothing counted)."""

    month: str  # YYYY-MM, China time
    checked: int
    passed_first: int
    first_pass_rate: float | None
    energised: int
    one_visit: int
    one_visit_rate: float | None
    finished: int
    met: int
    compliance_rate: float | None


def months_between(date_from: date, date_to: date) -> list[tuple[str, date, date]]:
    """Each month touched by the range: ("YYYY-MM", first day, last day), clipped to it."""
    validate_range(date_from, date_to)
    count = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
    if count > TREND_MONTHS:
        raise ValidationFailed(
            f"the date range is too long (at most {TREND_MONTHS} months)",
            code="request.date_range_too_long",
            params={"months": TREND_MONTHS},
        )
    result = []
    year, month = date_from.year, date_from.month
    for _ in range(count):
        first = date(year, month, 1)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        last = date(year, month, 1) - timedelta(days=1)
        result.append((f"{first:%Y-%m}", max(first, date_from), min(last, date_to)))
    return result


def monthly_trend(
    session: Session, actor: Principal, *, date_from: date, date_to: date
) -> list[TrendRow]:
    """First-pass acceptance, one-visit completion and end-to-end time-limit compliance of
    every month in the range, as the per-month reports count them."""
    rows = []
    for label, first, last in months_between(date_from, date_to):
        checks = checklists.first_pass(session, date_from=first, date_to=last, group_by="district")
        checked = sum(r.checked for r in checks)
        passed = sum(r.passed_first for r in checks)
        energised = one_visit_orders(session, date_from=first, date_to=last)
        done = sum(r.one_visit for r in energised)
        clocks = deadlines.compliance(session, actor, period_from=first, period_to=last)
        e2e = next((c for c in clocks if c.name == END_TO_END), None)
        rows.append(
            TrendRow(
                month=label,
                checked=checked,
                passed_first=passed,
                first_pass_rate=rate(passed, checked),
                energised=len(energised),
                one_visit=done,
                one_visit_rate=rate(done, len(energised)),
                finished=e2e.finished if e2e else 0,
                met=e2e.met if e2e else 0,
                compliance_rate=e2e.rate if e2e else None,
            )
        )
    return rows


def gaps_as_detail(gaps: Sequence[Gap]) -> list[dict[str, Any]]:
    """The missing evidence in the JSON form the terminal shows."""
    return [g.as_dict() for g in gaps]


def validate_range(date_from: date, date_to: date) -> None:
    """Refuse an inverted range (422)."""
    if date_to < date_from:
        raise ValidationFailed(
            "the date range ends before it starts",
            code="request.date_range_reversed",
        )
