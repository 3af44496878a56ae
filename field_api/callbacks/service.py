"""Use cases of call-backs and of the review flags of off-system processing.

A call-back becomes due when an order is energised. Its result (satisfaction and reported
irregularities) moves the order to ``called_back``. Detectors run when an order is installed
or energised, when a call-back result is recorded, and on demand (``scan``); each kind of flag
is kept once per order, with its latest reason, until someone resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.callbacks import rules
from field_api.callbacks.models import CallBack, ReviewFlag
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.calendar import WorkingCalendar, calendar_for
from field_api.config import settings_of
from field_api.deadlines.rules import ClockStatus, classify
from field_api.errors import Conflict, Forbidden, InvalidTransition, NotFound
from field_api.paging import PageParams
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import Stage

DETECT_ON = frozenset({Stage.installed, Stage.energised})
READERS = (Role.admin, Role.service, Role.planner)


def settings() -> rules.CallbackSettings:
    """The configured call-back settings."""
    return rules.default_callback_settings()


def get_callback(session: Session, order_id: int) -> CallBack | None:
    """The order's call-back, None before energisation."""
    query = select(CallBack).where(CallBack.order_id == order_id)
    return session.execute(query).scalar_one_or_none()


def schedule(
    session: Session, order: WorkOrder, row: StageTransition, *, calendar: WorkingCalendar
) -> CallBack:
    """Make the call-back due N working days after the day of energisation (idempotent)."""
    existing = get_callback(session, order.id)
    if existing is not None:
        return existing
    due = rules.callback_due(calendar, row.at, settings().callback_due_working_days)
    callback = CallBack(
        order_id=order.id,
        energised_on=clock.china_date(row.at),
        due_on=due.due,
        provisional=due.provisional,
        missing_years=list(due.missing_years),
        irregularities=[],
    )
    session.add(callback)
    audit.record(session, actor=None, action="callback.schedule", entity=callback)
    return callback


def on_stage_change(session: Session, order: WorkOrder, row: StageTransition) -> None:
    """Schedule the call-back at energisation; run the detectors at installation and after."""
    if row.to_stage not in DETECT_ON:
        return
    calendar = calendar_for(settings_of(session))
    if row.to_stage == Stage.energised:
        schedule(session, order, row, calendar=calendar)
    scan(session, order, calendar=calendar)


# --------------------------------------------------------------------------------------------
# Call-backs due and their results


@dataclass(frozen=True)
class CallBackDue:
    """A call-back not yet made, with its standing on the day asked."""

    callback: CallBack
    order: WorkOrder
    status: ClockStatus


def due_callbacks(
    session: Session,
    actor: Principal,
    *,
    as_of: date,
    calendar: WorkingCalendar,
    district_id: int | None = None,
) -> list[CallBackDue]:
    """Call-backs not made yet, soonest due first."""
    if actor.role not in READERS:
        raise Forbidden(
            f"{actor.role.value} has no access to call-backs",
            code="callback.forbidden",
            params={"role": actor.role.value},
        )
    query = (
        select(CallBack, WorkOrder)
        .join(WorkOrder, WorkOrder.id == CallBack.order_id)
        .where(CallBack.done_at.is_(None), WorkOrder.stage != Stage.cancelled)
        .order_by(CallBack.due_on, CallBack.id)
    )
    if district_id is not None:
        query = query.where(WorkOrder.district_id == district_id)
    out = []
    for callback, order in session.execute(query):
        if callback.provisional and all(calendar.has_schedule(y) for y in callback.missing_years):
            _reschedule(callback, calendar)
        status = classify(calendar, due=callback.due_on, finished_on=None, as_of=as_of)
        out.append(CallBackDue(callback, order, status))
    return out


def _reschedule(callback: CallBack, calendar: WorkingCalendar) -> None:
    # The override file gained the year: the provisional due date becomes exact.
    due = calendar.add_working_days(callback.energised_on, settings().callback_due_working_days)
    callback.due_on = due.due
    callback.provisional = due.provisional
    callback.missing_years = list(due.missing_years)


def record_result(
    session: Session,
    order: WorkOrder,
    *,
    satisfaction: int,
    irregularities: Sequence[rules.Irregularity],
    notes: str | None,
    actor: Principal,
    complaint: bool = False,
) -> CallBack:
    """Record what the customer said and move the order to ``called_back``.

    An unsatisfied customer (satisfaction at or below the setting, or a complaint) or a reported
    irregularity opens a follow-up flag for the service role; the order cannot close until
    every follow-up is resolved (``resolve_flag``, audited).
    """
    callback = get_callback(session, order.id)
    if callback is None:
        raise InvalidTransition(
            f"order {order.id} has no call-back due (not energised yet)",
            code="callback.not_due",
            params={"order_id": order.id},
        )
    if callback.done_at is not None:
        raise Conflict(
            f"the call-back of order {order.id} was already recorded",
            code="callback.already_recorded",
            params={"order_id": order.id},
        )
    callback.done_at = clock.now()
    callback.satisfaction = satisfaction
    callback.complaint = complaint
    callback.irregularities = sorted({i.value for i in irregularities})
    callback.notes = notes
    callback.recorded_by = actor.user_id
    audit.record(session, actor=actor, action="callback.record", entity=callback)
    if order.stage == Stage.energised:
        orders.transition(session, order, Stage.called_back, actor=actor)
    scan(session, order, calendar=calendar_for(settings_of(session)))
    return callback


# --------------------------------------------------------------------------------------------
# Detectors and flags


def _evidence(session: Session, order_id: int) -> list[rules.Evidence]:
    # Evidence capture times come from the media slice; without it there is nothing to read.
    try:
        from field_api.media.models import MediaItem
    except ImportError:  # pragma: no cover - the media slice is part of the service
        return []
    query = select(MediaItem.id, MediaItem.kind, MediaItem.captured_at).where(
        MediaItem.order_id == order_id, MediaItem.captured_at.is_not(None)
    )
    return [
        rules.Evidence(f"{kind} #{media_id}", captured)  # codes: read alike in any language
        for media_id, kind, captured in session.execute(query)
        if captured is not None
    ]


def facts_of(session: Session, order: WorkOrder) -> rules.OrderFacts:
    """The plain facts the detectors look at."""
    installed_at = next(
        (t.at for t in orders.transitions_of(session, order.id) if t.to_stage == Stage.installed),
        None,
    )
    callback = get_callback(session, order.id)
    reported = [rules.Irregularity(i) for i in callback.irregularities] if callback else []
    return rules.OrderFacts(
        applied_on=order.applied_on,
        accepted_at=order.accepted_at,
        installed_at=installed_at,
        evidence=_evidence(session, order.id),
        irregularities=reported,
        satisfaction=callback.satisfaction if callback else None,
        complaint=bool(callback.complaint) if callback else False,
    )


def open_follow_ups(session: Session, order_id: int) -> list[ReviewFlag]:
    """The order's unresolved follow-ups (an unsatisfied call-back, a reported irregularity)."""
    return [
        f
        for f in flags_of(session, order_id)
        if f.resolved_at is None and f.kind in {k.value for k in rules.FOLLOW_UP_KINDS}
    ]


def ensure_no_open_follow_up(session: Session, order: WorkOrder) -> None:
    """409 while a follow-up of the order is open: closing waits for the service role.

    Installed as a transition guard: it runs before the order is changed.
    """
    scan(session, order)  # a call-back recorded before this check still opens its follow-up
    pending = open_follow_ups(session, order.id)
    if pending:
        kinds = sorted({f.kind for f in pending})
        raise Conflict(
            f"order {order.id} cannot close while a call-back follow-up is open "
            f"({', '.join(kinds)}: flag(s) {', '.join(str(f.id) for f in pending)}); "
            "resolve it first (POST /review-flags/{flag_id}/resolve)",
            code="callback.follow_up_open",
            params={"order_id": order.id, "flag_ids": [f.id for f in pending], "kinds": kinds},
        )


def guard_closing(session: Session, order: WorkOrder, target: Stage) -> None:
    """Transition guard: an order with an open follow-up cannot close."""
    if target == Stage.closed:
        ensure_no_open_follow_up(session, order)


def scan(
    session: Session, order: WorkOrder, *, calendar: WorkingCalendar | None = None
) -> list[ReviewFlag]:
    """Run the detectors on one order; new or changed flags are stored and audited."""
    calendar = calendar or calendar_for(settings_of(session))
    found = rules.detect(calendar, facts_of(session, order), settings().detectors)
    reasons: dict[str, list[rules.Flag]] = {}
    for flag in found:
        reasons.setdefault(flag.kind.value, []).append(flag)
    existing = {f.kind: f for f in flags_of(session, order.id)}
    changed = []
    for kind, kind_flags in reasons.items():
        reason = "; ".join(f.reason for f in kind_flags)
        params = {"messages": [f.message.as_dict() for f in kind_flags]}
        row = existing.get(kind)
        if row is None:
            row = ReviewFlag(
                order_id=order.id, kind=kind, reason=reason, params=params,
                detected_at=clock.now(),
            )
            session.add(row)
        elif row.reason == reason:
            continue
        else:
            row.reason = reason
            row.params = params
            row.detected_at = clock.now()
            row.resolved_at = None  # new evidence reopens a resolved flag
            row.resolved_by = None
            row.resolution = None
        audit.record(session, actor=None, action="review_flag.raise", entity=row)
        changed.append(row)
    return changed


def scan_all(session: Session, *, calendar: WorkingCalendar | None = None) -> int:
    """Run the detectors over every installed-or-later order; returns the flags raised."""
    calendar = calendar or calendar_for(settings_of(session))
    later = [Stage.installed, Stage.inspected, Stage.energised, Stage.called_back, Stage.closed]
    query = select(WorkOrder).where(WorkOrder.stage.in_(later)).order_by(WorkOrder.id)
    return sum(len(scan(session, o, calendar=calendar)) for o in session.execute(query).scalars())


def flags_of(session: Session, order_id: int) -> list[ReviewFlag]:
    """The order's flags."""
    query = select(ReviewFlag).where(ReviewFlag.order_id == order_id).order_by(ReviewFlag.id)
    return list(session.execute(query).scalars())


def list_flags(
    session: Session,
    actor: Principal,
    *,
    district_id: int | None = None,
    kind: rules.FlagKind | None = None,
    include_resolved: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[ReviewFlag, WorkOrder]]:
    """Flags with their orders, newest first."""
    query = flags_query(
        actor, district_id=district_id, kind=kind, include_resolved=include_resolved
    )
    rows = session.execute(query.limit(limit).offset(offset))
    return [(flag, order) for flag, order in rows]


def flags_query(
    actor: Principal,
    *,
    district_id: int | None = None,
    kind: rules.FlagKind | None = None,
    include_resolved: bool = False,
) -> Select[ReviewFlag, WorkOrder]:
    """The flags ``actor`` may read with their orders, newest first (a total order)."""
    if actor.role not in READERS:
        raise Forbidden(
            f"{actor.role.value} has no access to review flags",
            code="callback.flags_forbidden",
            params={"role": actor.role.value},
        )
    query = (
        select(ReviewFlag, WorkOrder)
        .join(WorkOrder, WorkOrder.id == ReviewFlag.order_id)
        .order_by(ReviewFlag.detected_at.desc(), ReviewFlag.id.desc())
    )
    if district_id is not None:
        query = query.where(WorkOrder.district_id == district_id)
    if kind is not None:
        query = query.where(ReviewFlag.kind == kind.value)
    if not include_resolved:
        query = query.where(ReviewFlag.resolved_at.is_(None))
    return query


def resolve_flag(
    session: Session, flag_id: int, *, resolution: str, actor: Principal
) -> ReviewFlag:
    """Close a flag after review, saying what was found."""
    flag = session.get(ReviewFlag, flag_id)
    if flag is None:
        raise NotFound(
            f"review flag {flag_id} not found",
            code="callback.flag_not_found",
            params={"flag_id": flag_id},
        )
    if flag.resolved_at is not None:
        raise Conflict(
            f"review flag {flag_id} is already resolved",
            code="callback.flag_already_resolved",
            params={"flag_id": flag_id},
        )
    flag.resolved_at = clock.now()
    flag.resolved_by = actor.user_id
    flag.resolution = resolution
    audit.record(session, actor=actor, action="review_flag.resolve", entity=flag)
    return flag


# --------------------------------------------------------------------------------------------
# The API's use cases: the access decision first, then the work.


def phones_masked_for(actor: Principal) -> bool:
    """Whether the customers' phones are masked in the call-back list for ``actor``."""
    return actor.role == Role.planner


def callback_for_actor(session: Session, order_id: int, actor: Principal) -> CallBack:
    """The call-back of an order the actor may read (404 while the order is not energised)."""
    orders.get_for_actor(session, order_id, actor, write=False)
    callback = get_callback(session, order_id)
    if callback is None:
        raise NotFound(
            f"order {order_id} has no call-back (not energised yet)",
            code="callback.not_due",
            params={"order_id": order_id},
        )
    return callback


def record_result_for_actor(
    session: Session,
    order_id: int,
    *,
    satisfaction: int,
    irregularities: Sequence[rules.Irregularity],
    notes: str | None,
    actor: Principal,
    complaint: bool = False,
) -> CallBack:
    """:func:`record_result` on an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return record_result(
        session,
        order,
        satisfaction=satisfaction,
        irregularities=irregularities,
        notes=notes,
        actor=actor,
        complaint=complaint,
    )


def flags_page(
    session: Session,
    actor: Principal,
    page: PageParams,
    *,
    district_id: int | None = None,
    kind: rules.FlagKind | None = None,
    include_resolved: bool = False,
) -> list[tuple[ReviewFlag, WorkOrder]]:
    """One page of the flags the actor may read, with their orders, newest first."""
    query = flags_query(
        actor, district_id=district_id, kind=kind, include_resolved=include_resolved
    )
    return [(flag, order) for flag, order in page.rows(session, query)]


def resolve_flag_of_order(
    session: Session, flag_id: int, *, resolution: str, actor: Principal
) -> tuple[ReviewFlag, WorkOrder]:
    """:func:`resolve_flag`, with the flag's order (for the answer)."""
    flag = resolve_flag(session, flag_id, resolution=resolution, actor=actor)
    return flag, orders.get_or_raise(session, flag.order_id)
