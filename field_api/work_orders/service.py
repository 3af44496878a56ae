"""Use cases of work orders: create, assign, list, and move through the stages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.auth import service as auth_service
from field_api.auth.rules import may_touch_crew_work
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from field_api.paging import PageParams
from field_api.work_orders import rules
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import Stage
from field_api.work_orders.schemas import WorkOrderCreate

TransitionListener = Callable[[Session, WorkOrder, StageTransition], None]
_listeners: list[TransitionListener] = []


def add_transition_listener(listener: TransitionListener) -> None:
    """Let another slice react to every stage change (deadlines, notifications, ...)."""
    if listener not in _listeners:
        _listeners.append(listener)


TransitionGuard = Callable[[Session, WorkOrder, Stage], None]
_guards: list[TransitionGuard] = []


def add_transition_guard(guard: TransitionGuard) -> None:
    """Let another slice refuse a stage change before anything is written (it raises a
    DomainError); e.g. call-backs keep an order with an open follow-up from closing."""
    if guard not in _guards:
        _guards.append(guard)


def get(session: Session, order_id: int) -> WorkOrder | None:
    return session.get(WorkOrder, order_id)


def get_many(session: Session, order_ids: Iterable[int]) -> dict[int, WorkOrder]:
    """The orders of ``order_ids`` by id, read in one query."""
    wanted = set(order_ids)
    if not wanted:
        return {}
    rows = session.execute(select(WorkOrder).where(WorkOrder.id.in_(wanted))).scalars()
    return {o.id: o for o in rows}


def get_or_raise(session: Session, order_id: int) -> WorkOrder:
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise NotFound(
            f"work order {order_id} not found",
            code="work_order.not_found",
            params={"order_id": order_id},
        )
    return order


def get_for_actor(session: Session, order_id: int, actor: Principal, *, write: bool) -> WorkOrder:
    """Load an order the actor may read (or change); 403 for another crew's order."""
    order = get_or_raise(session, order_id)
    ensure_access(order, actor, write=write)
    return order


def ensure_access(order: WorkOrder, actor: Principal, *, write: bool) -> None:
    if not may_touch_crew_work(actor, order.crew_id, write=write):
        raise Forbidden(
            f"{actor.role.value} may not {'change' if write else 'read'} order {order.id}",
            code="work_order.forbidden",
            params={"role": actor.role.value, "order_id": order.id},
        )


def create(session: Session, data: WorkOrderCreate, *, actor: Principal | None) -> WorkOrder:
    district = auth_service.get_district_by_code(session, data.district_code)
    if district is None:
        raise ValidationFailed(
            f"unknown district {data.district_code}",
            code="district.unknown",
            params={"district_code": data.district_code},
        )
    problem = rules.capacity_problem(data.capacity_kw, ceiling_kw=district.lv_ceiling_kw)
    if problem:
        raise ValidationFailed(
            problem,
            code="work_order.capacity_exceeded",
            params={"capacity_kw": data.capacity_kw, "ceiling_kw": district.lv_ceiling_kw},
        )
    crew_id = None
    if data.crew_code:
        crew = auth_service.get_crew_by_code(session, data.crew_code)
        if crew is None:
            raise ValidationFailed(
                f"unknown crew {data.crew_code}",
                code="crew.unknown",
                params={"crew_code": data.crew_code},
            )
        crew_id = crew.id
    order = WorkOrder(
        customer_name=data.customer_name,
        customer_phone=data.customer_phone,
        customer_id_number=data.customer_id_number,
        category=data.category,
        capacity_kw=data.capacity_kw,
        phases=data.phases,
        address=data.address,
        lon=data.lon,
        lat=data.lat,
        district_id=district.id,
        crew_id=crew_id,
        area=data.area,
        channel=data.channel,
        applied_on=data.applied_on,
        stage=Stage.accepted,
    )
    session.add(order)
    audit.record(session, actor=actor, action="work_order.create", entity=order)
    return order


def assign(session: Session, order_id: int, *, crew_code: str, actor: Principal) -> WorkOrder:
    order = get_or_raise(session, order_id)
    if order.stage in rules.TERMINAL:
        raise InvalidTransition(
            f"order {order_id} is {order.stage.value}",
            code="work_order.assign_wrong_stage",
            params={"order_id": order_id, "stage": order.stage.value},
        )
    crew = auth_service.get_crew_by_code(session, crew_code)
    if crew is None:
        raise ValidationFailed(
            f"unknown crew {crew_code}",
            code="crew.unknown",
            params={"crew_code": crew_code},
        )
    order.crew_id = crew.id
    audit.record(session, actor=actor, action="work_order.assign", entity=order)
    return order


def page_for_actor(
    session: Session,
    actor: Principal,
    page: PageParams,
    *,
    stage: Stage | None = None,
    crew_id: int | None = None,
    district_id: int | None = None,
) -> list[WorkOrder]:
    """One page of the work orders ``actor`` may see (counted and cut in the database)."""
    query = query_for_actor(actor, stage=stage, crew_id=crew_id, district_id=district_id)
    return page.select(session, query)


def read_for_actor(session: Session, order_id: int, actor: Principal) -> tuple[WorkOrder, bool]:
    """An order the actor may read, and whether its personal data is masked for them."""
    return get_for_actor(session, order_id, actor, write=False), masked_for(actor)


def masked_for(actor: Principal) -> bool:
    """Whether the customer's personal data is masked for ``actor`` on one order."""
    return actor.role not in (Role.crew, Role.service, Role.admin)


def query_for_actor(
    actor: Principal,
    *,
    stage: Stage | None = None,
    crew_id: int | None = None,
    district_id: int | None = None,
) -> Select[WorkOrder]:
    """The work orders ``actor`` may see, by id (a total order, for paging)."""
    query = select(WorkOrder).order_by(WorkOrder.id)
    if actor.role == Role.crew:
        query = query.where(WorkOrder.crew_id == actor.crew_id)
    elif actor.role not in (Role.admin, Role.service, Role.planner, Role.storekeeper):
        raise Forbidden(
            f"{actor.role.value} has no access to connection orders",
            code="work_order.list_forbidden",
            params={"role": actor.role.value},
        )
    if stage is not None:
        query = query.where(WorkOrder.stage == stage)
    if crew_id is not None:
        query = query.where(WorkOrder.crew_id == crew_id)
    if district_id is not None:
        query = query.where(WorkOrder.district_id == district_id)
    return query


def transition(
    session: Session,
    order: WorkOrder,
    target: Stage,
    *,
    actor: Principal | None,
    reason: str | None = None,
    expected_on: date | None = None,
    device_time: datetime | None = None,
    device_lat: float | None = None,
    device_lon: float | None = None,
    data: dict[str, Any] | None = None,
) -> StageTransition:
    """Move ``order`` to ``target`` if the stage machine allows it, recording who and when."""
    _check_transition(session, order, target, actor=actor, reason=reason, expected_on=expected_on)
    source = order.stage
    now = clock.now()
    if target == Stage.whitelisted:
        order.parked_from = source
        order.whitelist_reason = reason
        order.whitelist_expected_on = expected_on
    elif source == Stage.whitelisted:
        order.parked_from = None
    if target == Stage.cancelled:
        order.cancel_reason = reason
    order.stage = target
    order.stage_changed_at = now
    row = StageTransition(
        order_id=order.id,
        from_stage=source,
        to_stage=target,
        actor_id=actor.user_id if actor else None,
        at=now,
        device_time=device_time,
        device_lat=device_lat,
        device_lon=device_lon,
        reason=reason,
        data=data,
    )
    session.add(row)
    audit.record(session, actor=actor, action=f"work_order.to_{target.value}", entity=order)
    audit.record(session, actor=actor, action="stage_transition.create", entity=row)
    for listener in list(_listeners):
        listener(session, order, row)
    return row


def _check_transition(
    session: Session,
    order: WorkOrder,
    target: Stage,
    *,
    actor: Principal | None,
    reason: str | None,
    expected_on: date | None,
) -> None:
    """Refuse a stage change the actor, the stage machine, the stage's required fields or
    another slice's guard does not allow (nothing is written before this passes)."""
    if actor is not None and actor.role not in rules.roles_for_target(target):
        raise Forbidden(
            f"{actor.role.value} may not move an order to {target.value}",
            code="work_order.transition_forbidden",
            params={"role": actor.role.value, "target": target.value},
        )
    if actor is not None:
        ensure_access(order, actor, write=True)
    problem = rules.transition_problem(order.stage, target, parked_from=order.parked_from)
    if problem:
        raise InvalidTransition(
            problem,
            code="work_order.transition_refused",
            params={
                "order_id": order.id,
                "stage": order.stage.value,
                "target": target.value,
                "allowed": [
                    s.value
                    for s in rules.allowed_targets(order.stage, parked_from=order.parked_from)
                ],
            },
        )
    if target in (Stage.whitelisted, Stage.cancelled) and not reason:
        raise ValidationFailed(
            f"moving to {target.value} needs a reason",
            code="work_order.reason_required",
            params={"target": target.value},
        )
    if target == Stage.whitelisted and expected_on is None:
        raise ValidationFailed(
            "white-listing needs the expected date of the grid reinforcement",
            code="work_order.whitelist_date_required",
        )
    for guard in list(_guards):
        guard(session, order, target)


def transition_for_actor(
    session: Session,
    order_id: int,
    target: Stage,
    *,
    actor: Principal,
    reason: str | None = None,
    expected_on: date | None = None,
    device_time: datetime | None = None,
    device_lat: float | None = None,
    device_lon: float | None = None,
    data: dict[str, Any] | None = None,
) -> StageTransition:
    """The stage change of the API: the order as the actor may change it (404, 403), then
    :func:`transition`."""
    order = get_for_actor(session, order_id, actor, write=True)
    return transition(
        session,
        order,
        target,
        actor=actor,
        reason=reason,
        expected_on=expected_on,
        device_time=device_time,
        device_lat=device_lat,
        device_lon=device_lon,
        data=data,
    )


def transitions_for_actor(
    session: Session, order_id: int, actor: Principal
) -> list[StageTransition]:
    """The order's recorded stage changes, oldest first, if the actor may read the order."""
    get_for_actor(session, order_id, actor, write=False)
    return transitions_of(session, order_id)


def transitions_of(session: Session, order_id: int) -> list[StageTransition]:
    return list(
        session.execute(
            select(StageTransition)
            .where(StageTransition.order_id == order_id)
            .order_by(StageTransition.id)
        ).scalars()
    )
