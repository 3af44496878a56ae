"""Use cases of time limits: recompute an order's clocks, pause and resume them, book visits,
and the views of what is due soon or overdue and of compliance over a period.

Clocks are recomputed whenever one of their inputs changes (a stage transition, a pause, a
newly published holiday schedule); the stored rows are derived data, so they are not audited,
while the pauses and visits that drive them are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth.models import Crew, District
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.calendar import WorkingCalendar, calendar_for
from field_api.config import settings_of
from field_api.deadlines import rules
from field_api.deadlines.models import ClockPause, OrderDeadline, PlannedVisit
from field_api.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import TERMINAL, Stage

CHINA_TZ = clock.CHINA_TZ  # working days are China's calendar days (field_api.common.clock)
MAX_VISIT_WINDOW = timedelta(hours=12)

VisitListener = Callable[[Session, WorkOrder, PlannedVisit], None]
_visit_listeners: list[VisitListener] = []


@dataclass(frozen=True)
class DeadlineEvent:
    """A change another slice may tell the outside about (webhooks): a pause started or ended,
    a visit cancelled, or the governing clock's stored due date moved (``old_due_on`` to
    ``new_due_on``)."""

    kind: Literal["pause_started", "pause_ended", "visit_cancelled", "due_date_changed"]
    pause: ClockPause | None = None
    visit: PlannedVisit | None = None
    clock: str | None = None
    old_due_on: date | None = None
    new_due_on: date | None = None
    provisional: bool = False


DeadlineListener = Callable[[Session, WorkOrder, DeadlineEvent], None]
_deadline_listeners: list[DeadlineListener] = []


def add_visit_listener(listener: VisitListener) -> None:
    """Let another slice react to a booked visit (webhooks, SMS)."""
    if listener not in _visit_listeners:
        _visit_listeners.append(listener)


def add_deadline_listener(listener: DeadlineListener) -> None:
    """Let another slice react to pauses, cancelled visits and moved due dates (webhooks)."""
    if listener not in _deadline_listeners:
        _deadline_listeners.append(listener)


def _tell(session: Session, order: WorkOrder, event: DeadlineEvent) -> None:
    for listener in list(_deadline_listeners):
        listener(session, order, event)


def time_limits() -> rules.TimeLimits:
    """The configured time limits."""
    return rules.default_time_limits()


# --------------------------------------------------------------------------------------------
# Computing an order's clocks


@dataclass(frozen=True)
class _Inputs:
    entered: dict[str, date]
    pauses: list[rules.Pause]
    white_list: list[rules.WhiteListPeriod]


def _inputs(session: Session, order: WorkOrder) -> _Inputs:
    transitions = orders.transitions_of(session, order.id)
    entered: dict[str, date] = {Stage.accepted.value: clock.china_date(order.accepted_at)}
    periods: list[rules.WhiteListPeriod] = []
    parked: date | None = None
    for row in transitions:
        day = clock.china_date(row.at)
        entered.setdefault(row.to_stage.value, day)
        if row.to_stage == Stage.whitelisted:
            parked = day
        elif row.from_stage == Stage.whitelisted and parked is not None:
            periods.append(rules.WhiteListPeriod(parked, day))
            parked = None
    if parked is not None:
        periods.append(rules.WhiteListPeriod(parked, None))
    if periods:
        # The order keeps the expected date of its latest white-listing only.
        last = periods[-1]
        periods[-1] = rules.WhiteListPeriod(last.start, last.end, order.whitelist_expected_on)
    pauses = [
        rules.Pause(
            clock.china_date(p.started_at),
            clock.china_date(p.ended_at) if p.ended_at is not None else None,
            p.reason,
        )
        for p in pauses_of(session, order.id)
    ]
    return _Inputs(entered, pauses, periods)


def evaluate(
    session: Session, order: WorkOrder, *, calendar: WorkingCalendar, as_of: date
) -> rules.OrderDeadlines:
    """The order's clocks as of ``as_of``, without writing anything."""
    limits = time_limits()
    inputs = _inputs(session, order)
    return rules.evaluate_order(
        calendar,
        limits.for_order(order.category.value, _district_code(session, order)),
        entered=inputs.entered,
        pauses=inputs.pauses,
        white_list=inputs.white_list,
        white_list_days=limits.white_list.days,
        as_of=as_of,
        at_risk_within=limits.at_risk_within_working_days,
    )


def _district_code(session: Session, order: WorkOrder) -> str | None:
    from field_api.auth.models import District

    district = session.get(District, order.district_id)
    return district.code if district is not None else None


def refresh(
    session: Session,
    order: WorkOrder,
    *,
    calendar: WorkingCalendar | None = None,
    as_of: date | None = None,
) -> rules.OrderDeadlines:
    """Recompute and store the order's clocks."""
    calendar = calendar or calendar_for(settings_of(session))
    result = evaluate(session, order, calendar=calendar, as_of=as_of or clock.china_today())
    existing = {
        row.clock: row
        for row in session.execute(
            select(OrderDeadline).where(OrderDeadline.order_id == order.id)
        ).scalars()
    }
    before = next((r.due_on for r in existing.values() if r.governing), None)
    now = clock.now()
    for computed in result.clocks:
        row = existing.pop(computed.name, None)
        if row is None:
            row = OrderDeadline(order_id=order.id, clock=computed.name)
            session.add(row)
        row.kind = computed.kind.value
        row.governing = computed.governing
        row.started_on = computed.started_on
        row.limit_days = computed.limit_days
        row.due_on = computed.due.due if computed.due else None
        row.provisional = bool(computed.due and computed.due.provisional)
        row.missing_years = list(computed.due.missing_years) if computed.due else []
        row.capped_by_end_to_end = computed.capped_by_end_to_end
        row.finished_on = computed.finished_on
        row.status = computed.status.value if computed.status else None
        row.paused = computed.paused
        row.paused_working_days = computed.paused_working_days
        row.computed_at = now
    for stale in existing.values():
        session.delete(stale)
    session.flush()
    governing = next((c for c in result.clocks if c.governing and c.due), None)
    due = governing.due if governing is not None else None
    if governing is not None and due is not None and before is not None and due.due != before:
        # The first computation (no stored date before) is no move.
        _tell(
            session,
            order,
            DeadlineEvent(
                "due_date_changed",
                clock=governing.name,
                old_due_on=before,
                new_due_on=due.due,
                provisional=due.provisional,
            ),
        )
    return result


def on_transition(session: Session, order: WorkOrder, to_stage: Stage, at: datetime) -> None:
    """Recompute the order's deadlines after it moved to ``to_stage`` at ``at``.

    Called for every stage change (registered by ``field_api.deadlines.hooks``).
    """
    del to_stage  # every transition may start or stop a clock; recompute them all
    refresh(session, order, as_of=clock.china_date(at))


def transition_listener(session: Session, order: WorkOrder, row: StageTransition) -> None:
    """Adapter for ``work_orders.service.add_transition_listener``."""
    on_transition(session, order, row.to_stage, row.at)


def stored_clocks(session: Session, order_id: int) -> list[OrderDeadline]:
    """The stored clocks of an order, governing first."""
    query = (
        select(OrderDeadline)
        .where(OrderDeadline.order_id == order_id)
        .order_by(OrderDeadline.governing.desc(), OrderDeadline.clock)
    )
    return list(session.execute(query).scalars())


def _now_exact(calendar: WorkingCalendar, rows: Iterable[OrderDeadline]) -> bool:
    # A provisional row whose missing years the calendar now knows must be recomputed.
    return any(
        r.provisional and all(calendar.has_schedule(y) for y in r.missing_years) for r in rows
    )


def deadlines_of(
    session: Session,
    order: WorkOrder,
    *,
    calendar: WorkingCalendar | None = None,
    as_of: date | None = None,
) -> rules.OrderDeadlines:
    """The order's clocks as of ``as_of`` (today by default), computed without writing: the
    stored copies are brought up to date by the writes that move them (stage changes, pauses)
    and by ``recompute_provisional``."""
    as_of = as_of or clock.china_today()
    calendar = calendar or calendar_for(settings_of(session))
    return evaluate(session, order, calendar=calendar, as_of=as_of)


def recompute_provisional(session: Session, *, calendar: WorkingCalendar | None = None) -> int:
    """Recompute every order with a provisional deadline; returns how many orders."""
    calendar = calendar or calendar_for(settings_of(session))
    ids = sorted(
        set(
            session.execute(
                select(OrderDeadline.order_id).where(OrderDeadline.provisional.is_(True))
            ).scalars()
        )
    )
    for order_id in ids:
        refresh(session, orders.get_or_raise(session, order_id), calendar=calendar)
    return len(ids)


# --------------------------------------------------------------------------------------------
# Pauses


def pauses_of(session: Session, order_id: int) -> list[ClockPause]:
    """The order's pauses, oldest first."""
    query = select(ClockPause).where(ClockPause.order_id == order_id).order_by(ClockPause.id)
    return list(session.execute(query).scalars())


def _open_pause(session: Session, order_id: int) -> ClockPause | None:
    query = select(ClockPause).where(
        and_(ClockPause.order_id == order_id, ClockPause.ended_at.is_(None))
    )
    return session.execute(query).scalars().first()


def start_pause(
    session: Session,
    order: WorkOrder,
    *,
    reason: str,
    note: str | None,
    actor: Principal | None,
    calendar: WorkingCalendar | None = None,
) -> ClockPause:
    """Stop the order's clocks for a customer-caused wait."""
    time_limits().check_pause_reason(reason)
    if order.stage in TERMINAL or order.stage in (Stage.energised, Stage.called_back):
        raise InvalidTransition(
            f"order {order.id} is {order.stage.value}: no clock runs",
            code="deadline.no_clock_running",
            params={"order_id": order.id, "stage": order.stage.value},
        )
    if _open_pause(session, order.id) is not None:
        raise Conflict(
            f"order {order.id} already has a pause running; end it first",
            code="deadline.pause_running",
            params={"order_id": order.id},
        )
    pause = ClockPause(
        order_id=order.id,
        reason=reason,
        note=note,
        started_at=clock.now(),
        started_by=actor.user_id if actor else None,
    )
    session.add(pause)
    audit.record(session, actor=actor, action="clock_pause.start", entity=pause)
    _tell(session, order, DeadlineEvent("pause_started", pause=pause))
    refresh(session, order, calendar=calendar)
    return pause


def end_pause(
    session: Session,
    order: WorkOrder,
    pause_id: int,
    *,
    actor: Principal | None,
    calendar: WorkingCalendar | None = None,
) -> ClockPause:
    """Restart the order's clocks."""
    pause = session.get(ClockPause, pause_id)
    if pause is None or pause.order_id != order.id:
        raise NotFound(
            f"pause {pause_id} of order {order.id} not found",
            code="deadline.pause_not_found",
            params={"pause_id": pause_id, "order_id": order.id},
        )
    if pause.ended_at is not None:
        raise Conflict(
            f"pause {pause_id} already ended",
            code="deadline.pause_already_ended",
            params={"pause_id": pause_id},
        )
    pause.ended_at = clock.now()
    pause.ended_by = actor.user_id if actor else None
    audit.record(session, actor=actor, action="clock_pause.end", entity=pause)
    _tell(session, order, DeadlineEvent("pause_ended", pause=pause))
    refresh(session, order, calendar=calendar)
    return pause


# --------------------------------------------------------------------------------------------
# Planned visits


def book_visit(
    session: Session,
    order: WorkOrder,
    *,
    window_start: datetime,
    window_end: datetime,
    note: str | None,
    actor: Principal | None,
) -> PlannedVisit:
    """Book a visit window with the customer."""
    if order.stage in TERMINAL:
        raise InvalidTransition(
            f"order {order.id} is {order.stage.value}",
            code="deadline.visit_wrong_stage",
            params={"order_id": order.id, "stage": order.stage.value},
        )
    if window_end <= window_start:
        raise ValidationFailed(
            "the visit window must end after it starts",
            code="deadline.visit_window_reversed",
        )
    if window_end - window_start > MAX_VISIT_WINDOW:
        raise ValidationFailed(
            "a visit window is at most 12 hours long",
            code="deadline.visit_window_too_long",
            params={"max_hours": 12},
        )
    visit = PlannedVisit(
        order_id=order.id,
        crew_id=order.crew_id,
        window_start=window_start,
        window_end=window_end,
        note=note,
        booked_by=actor.user_id if actor else None,
        booked_at=clock.now(),
    )
    session.add(visit)
    audit.record(session, actor=actor, action="planned_visit.book", entity=visit)
    for listener in list(_visit_listeners):
        listener(session, order, visit)
    return visit


def cancel_visit(
    session: Session, order: WorkOrder, visit_id: int, *, actor: Principal | None
) -> PlannedVisit:
    """Cancel a booked visit."""
    visit = session.get(PlannedVisit, visit_id)
    if visit is None or visit.order_id != order.id:
        raise NotFound(
            f"visit {visit_id} of order {order.id} not found",
            code="deadline.visit_not_found",
            params={"visit_id": visit_id, "order_id": order.id},
        )
    if visit.cancelled_at is not None:
        raise Conflict(
            f"visit {visit_id} is already cancelled",
            code="deadline.visit_already_cancelled",
            params={"visit_id": visit_id},
        )
    visit.cancelled_at = clock.now()
    audit.record(session, actor=actor, action="planned_visit.cancel", entity=visit)
    _tell(session, order, DeadlineEvent("visit_cancelled", visit=visit))
    return visit


def visits_of(session: Session, order_id: int) -> list[PlannedVisit]:
    """The order's visits, oldest first."""
    query = select(PlannedVisit).where(PlannedVisit.order_id == order_id)
    return list(session.execute(query.order_by(PlannedVisit.id)).scalars())


def current_visit(session: Session, order_id: int) -> PlannedVisit | None:
    """The latest booked visit that was not cancelled."""
    query = (
        select(PlannedVisit)
        .where(PlannedVisit.order_id == order_id, PlannedVisit.cancelled_at.is_(None))
        .order_by(PlannedVisit.id.desc())
    )
    return session.execute(query).scalars().first()


# --------------------------------------------------------------------------------------------
# Views


@dataclass(frozen=True)
class AttentionItem:
    """A running clock due within the at-risk horizon or already overdue."""

    order_id: int
    crew_id: int | None
    district_id: int
    stage: Stage
    clock: str
    governing: bool
    due_on: date
    provisional: bool
    missing_years: tuple[int, ...]
    status: rules.ClockStatus
    paused: bool


def _scoped(
    query: Select[OrderDeadline, WorkOrder], actor: Principal
) -> Select[OrderDeadline, WorkOrder]:
    if actor.role == Role.crew:
        return query.where(WorkOrder.crew_id == actor.crew_id)
    if actor.role not in (Role.admin, Role.service, Role.planner):
        raise Forbidden(
            f"{actor.role.value} has no access to connection deadlines",
            code="deadline.forbidden",
            params={"role": actor.role.value},
        )
    return query


def attention(
    session: Session,
    actor: Principal,
    *,
    as_of: date,
    crew_id: int | None = None,
    district_id: int | None = None,
    calendar: WorkingCalendar | None = None,
) -> list[AttentionItem]:
    """Running clocks due within the at-risk horizon or overdue on ``as_of``, soonest first."""
    calendar = calendar or calendar_for(settings_of(session))
    limits = time_limits()
    horizon = calendar.add_working_days(as_of, limits.at_risk_within_working_days).due
    query = _attention_query(actor, horizon, crew_id=crew_id, district_id=district_id)
    by_order: dict[int, tuple[WorkOrder, list[OrderDeadline]]] = {}
    for row, order in session.execute(query):
        by_order.setdefault(order.id, (order, []))[1].append(row)
    items: list[AttentionItem] = []
    for order, rows in by_order.values():
        for name, governing, due_on, provisional, missing, paused in _running_clocks(
            session, order, rows, calendar=calendar, as_of=as_of
        ):
            if due_on > horizon:
                continue
            status = rules.classify(
                calendar,
                due=due_on,
                finished_on=None,
                as_of=as_of,
                at_risk_within=limits.at_risk_within_working_days,
            )
            items.append(
                AttentionItem(
                    order_id=order.id,
                    crew_id=order.crew_id,
                    district_id=order.district_id,
                    stage=order.stage,
                    clock=name,
                    governing=governing,
                    due_on=due_on,
                    provisional=provisional,
                    missing_years=tuple(missing),
                    status=status,
                    paused=paused,
                )
            )
    items.sort(key=lambda i: (i.due_on, i.order_id, not i.governing, i.clock))
    return items


def _attention_query(
    actor: Principal, horizon: date, *, crew_id: int | None, district_id: int | None
) -> Select[OrderDeadline, WorkOrder]:
    """Running clocks (with their orders) the actor may see that may need attention."""
    query = (
        select(OrderDeadline, WorkOrder)
        .join(WorkOrder, WorkOrder.id == OrderDeadline.order_id)
        .where(
            OrderDeadline.finished_on.is_(None),
            OrderDeadline.due_on.is_not(None),
            OrderDeadline.kind != rules.ClockKind.white_list.value,
            WorkOrder.stage.not_in([Stage.cancelled, Stage.closed, Stage.whitelisted]),
        )
    )
    query = _scoped(query, actor)
    if crew_id is not None:
        query = query.where(WorkOrder.crew_id == crew_id)
    if district_id is not None:
        query = query.where(WorkOrder.district_id == district_id)
    # Paused clocks move on every day the pause lasts and a newly published schedule may move
    # provisional ones: both are re-evaluated below instead of trusting the stored due date.
    return query.where(
        (OrderDeadline.due_on <= horizon)
        | OrderDeadline.paused.is_(True)
        | OrderDeadline.provisional.is_(True)
    )


# a running clock: name, governing, due on, provisional, missing years, paused
_RunningClock = tuple[str, bool, date, bool, tuple[int, ...], bool]


def _running_clocks(
    session: Session,
    order: WorkOrder,
    rows: Sequence[OrderDeadline],
    *,
    calendar: WorkingCalendar,
    as_of: date,
) -> list[_RunningClock]:
    """The order's running clocks: as stored, or computed when paused or provisional."""
    if any(r.paused for r in rows) or _now_exact(calendar, rows):
        # computed, not stored: a GET never waits for the write lock
        fresh = evaluate(session, order, calendar=calendar, as_of=as_of)
        return [
            (c.name, c.governing, c.due.due, c.due.provisional, c.due.missing_years, c.paused)
            for c in fresh.clocks
            if c.kind is not rules.ClockKind.white_list
            and c.finished_on is None
            and c.due is not None
        ]
    return [
        (
            r.clock,
            r.governing,
            r.due_on,
            r.provisional,
            tuple(r.missing_years),
            r.paused,
        )
        for r in rows
        if r.due_on is not None
    ]


@dataclass(frozen=True)
class AttentionGroup:
    """Counts of governing clocks needing attention for one crew in one district."""

    district_id: int
    crew_id: int | None
    at_risk: int
    overdue: int
    stage_warnings: int


def group_attention(items: Sequence[AttentionItem]) -> list[AttentionGroup]:
    """Counts by district and crew (end-to-end clocks; stage clocks as early warnings)."""
    counts: dict[tuple[int, int | None], list[int]] = defaultdict(lambda: [0, 0, 0])
    for item in items:
        bucket = counts[(item.district_id, item.crew_id)]
        if not item.governing:
            bucket[2] += 1
        elif item.status is rules.ClockStatus.overdue:
            bucket[1] += 1
        else:
            bucket[0] += 1
    return [
        AttentionGroup(d, c, v[0], v[1], v[2])
        for (d, c), v in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    ]


def _compliance_query(
    actor: Principal,
    *,
    period_from: date,
    period_to: date,
    crew_id: int | None = None,
    district_id: int | None = None,
) -> Select[OrderDeadline, WorkOrder]:
    """Clocks (with their orders) finished within the period that the actor may see."""
    if period_to < period_from:
        raise ValidationFailed(
            "the period ends before it starts",
            code="request.date_range_reversed",
        )
    query = (
        select(OrderDeadline, WorkOrder)
        .join(WorkOrder, WorkOrder.id == OrderDeadline.order_id)
        .where(
            OrderDeadline.finished_on >= period_from,
            OrderDeadline.finished_on <= period_to,
            OrderDeadline.kind != rules.ClockKind.white_list.value,
            WorkOrder.stage != Stage.cancelled,
        )
    )
    query = _scoped(query, actor)
    if crew_id is not None:
        query = query.where(WorkOrder.crew_id == crew_id)
    if district_id is not None:
        query = query.where(WorkOrder.district_id == district_id)
    return query


def _finished_clock(row: OrderDeadline) -> rules.Clock:
    return rules.Clock(
        name=row.clock,
        kind=rules.ClockKind(row.kind),
        started_on=row.started_on,
        limit_days=row.limit_days,
        due=None,
        finished_on=row.finished_on,
        status=rules.ClockStatus(row.status) if row.status else None,
        governing=row.governing,
    )


def compliance(
    session: Session,
    actor: Principal,
    *,
    period_from: date,
    period_to: date,
    crew_id: int | None = None,
    district_id: int | None = None,
) -> list[rules.Compliance]:
    """Met / missed per clock for clocks that finished within the period."""
    query = _compliance_query(
        actor,
        period_from=period_from,
        period_to=period_to,
        crew_id=crew_id,
        district_id=district_id,
    )
    rows = session.execute(query)
    return rules.summarise_compliance(_finished_clock(row) for row, _order in rows)


ComplianceGroup = Literal["all", "crew", "district"]


@dataclass(frozen=True)
class GroupCompliance:
    """Met / missed of one clock for one crew or district (by code and name, as in every
    planner report), or for all orders (code ``all``)."""

    code: str
    name: str
    clock: str
    met: int
    missed: int
    finished: int
    rate: float | None


def compliance_by(
    session: Session,
    actor: Principal,
    *,
    period_from: date,
    period_to: date,
    group_by: ComplianceGroup,
    all_name: str = "全部",
) -> list[GroupCompliance]:
    """:func:`compliance` per crew or district (ordered by code), or of all orders."""
    query = _compliance_query(actor, period_from=period_from, period_to=period_to)
    clocks: dict[int | None, list[rules.Clock]] = defaultdict(list)
    for row, order in session.execute(query):
        group: int | None = None
        if group_by != "all":
            group = order.crew_id if group_by == "crew" else order.district_id
        clocks[group].append(_finished_clock(row))
    # Every order has a district; one without a crew is listed under "-".
    names: dict[int | None, tuple[str, str]] = {
        None: ("all", all_name) if group_by == "all" else ("-", "-")
    }
    ids = [i for i in clocks if i is not None]
    if group_by == "crew" and ids:
        for crew in session.execute(select(Crew).where(Crew.id.in_(ids))).scalars():
            names[crew.id] = (crew.code, crew.name)
    elif group_by == "district" and ids:
        for unit in session.execute(select(District).where(District.id.in_(ids))).scalars():
            names[unit.id] = (unit.code, unit.name)
    result = [
        GroupCompliance(*names[group], c.name, c.met, c.missed, c.finished, c.rate)
        for group, members in clocks.items()
        for c in rules.summarise_compliance(members)
    ]
    return sorted(result, key=lambda r: r.code)


# --------------------------------------------------------------------------------------------
# The API's use cases on one order: the access decision (404, 403) first, then the work.


def deadlines_for_actor(
    session: Session,
    order_id: int,
    actor: Principal,
    *,
    calendar: WorkingCalendar | None = None,
    as_of: date | None = None,
) -> rules.OrderDeadlines:
    """:func:`deadlines_of` an order the actor may read."""
    order = orders.get_for_actor(session, order_id, actor, write=False)
    return deadlines_of(session, order, calendar=calendar, as_of=as_of)


def pauses_for_actor(session: Session, order_id: int, actor: Principal) -> list[ClockPause]:
    """:func:`pauses_of` an order the actor may read."""
    orders.get_for_actor(session, order_id, actor, write=False)
    return pauses_of(session, order_id)


def start_pause_for_actor(
    session: Session,
    order_id: int,
    *,
    reason: str,
    note: str | None,
    actor: Principal,
    calendar: WorkingCalendar | None = None,
) -> ClockPause:
    """:func:`start_pause` on an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return start_pause(session, order, reason=reason, note=note, actor=actor, calendar=calendar)


def end_pause_for_actor(
    session: Session,
    order_id: int,
    pause_id: int,
    *,
    actor: Principal,
    calendar: WorkingCalendar | None = None,
) -> ClockPause:
    """:func:`end_pause` on an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return end_pause(session, order, pause_id, actor=actor, calendar=calendar)


def visits_for_actor(session: Session, order_id: int, actor: Principal) -> list[PlannedVisit]:
    """:func:`visits_of` an order the actor may read."""
    orders.get_for_actor(session, order_id, actor, write=False)
    return visits_of(session, order_id)


def book_visit_for_actor(
    session: Session,
    order_id: int,
    *,
    window_start: datetime,
    window_end: datetime,
    note: str | None,
    actor: Principal,
) -> PlannedVisit:
    """:func:`book_visit` on an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return book_visit(
        session, order, window_start=window_start, window_end=window_end, note=note, actor=actor
    )


def cancel_visit_for_actor(
    session: Session, order_id: int, visit_id: int, *, actor: Principal
) -> PlannedVisit:
    """:func:`cancel_visit` on an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return cancel_visit(session, order, visit_id, actor=actor)
