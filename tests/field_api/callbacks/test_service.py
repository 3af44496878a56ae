"""Call-backs and off-system-processing flags on the database, on fixed dates."""

from __future__ import annotations

import secrets
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit.models import AuditEvent
from field_api.callbacks import service
from field_api.callbacks.rules import FlagKind, Irregularity
from field_api.common.actors import Principal, Role
from field_api.common.calendar import PACKAGE_YEARS, WorkingCalendar
from field_api.config import Settings
from field_api.deadlines.rules import ClockStatus
from field_api.errors import Conflict, Forbidden, InvalidTransition
from field_api.media.analysis import MediaType
from field_api.media.models import MediaItem
from field_api.media.rules import MediaKind
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import FLOW, Stage
from tests.builders import make_order, make_user
from tests.clocks import ChinaClock

from .conftest import CHINA

PLANNER = Principal(user_id=0, name="pl", role=Role.planner)
CAL = WorkingCalendar()


def _order(
    session: Session, clock: ChinaClock, *, applied_on: date = date(2025, 9, 29)
) -> WorkOrder:
    clock.set_china(2025, 9, 29, 9)
    order = make_order(session, applied_on=applied_on.isoformat())
    order.accepted_at = clock.now()
    session.flush()
    return order


def _advance(session: Session, clock: ChinaClock, order: WorkOrder, until: Stage, day: date) -> None:
    clock.set_china(day.year, day.month, day.day, 15)
    for stage in FLOW[FLOW.index(order.stage) + 1 : FLOW.index(until) + 1]:
        orders.transition(session, order, stage, actor=None)


@pytest.fixture
def staff(session: Session, settings: Settings) -> Principal:
    user, _ = make_user(session, settings, role=Role.service)
    return Principal(user_id=user.id, name=user.name, role=Role.service)


def _kinds(session: Session, order: WorkOrder) -> set[str]:
    return {f.kind for f in service.flags_of(session, order.id)}


def test_energisation_schedules_callback_in_working_days(
    session: Session, clock: ChinaClock, staff: Principal
) -> None:
    order = _order(session, clock)
    _advance(session, clock, order, Stage.energised, date(2025, 9, 30))
    callback = service.get_callback(session, order.id)
    assert callback is not None
    # 3 working days after 09-30: 10-09, 10-10, 10-11 (make-up Saturday).
    assert callback.due_on == date(2025, 10, 11)
    assert not callback.provisional
    due = service.due_callbacks(session, staff, as_of=date(2025, 10, 10), calendar=CAL)
    assert [(d.order.id, d.status) for d in due if d.order.id == order.id] == [
        (order.id, ClockStatus.at_risk)
    ]
    with pytest.raises(Forbidden):
        service.due_callbacks(
            session,
            Principal(user_id=0, name="c", role=Role.crew),
            as_of=date(2025, 10, 10),
            calendar=CAL,
        )


def test_callback_in_an_unpublished_year_is_provisional(session: Session, clock: ChinaClock) -> None:
    order = _order(session, clock)
    last = PACKAGE_YEARS[1]
    _advance(session, clock, order, Stage.energised, date(last, 12, 30))
    callback = service.get_callback(session, order.id)
    assert callback is not None
    assert callback.provisional
    assert callback.missing_years == [last + 1]


def test_result_moves_order_to_called_back_and_flags_irregularities(
    session: Session, clock: ChinaClock, staff: Principal
) -> None:
    order = _order(session, clock)
    with pytest.raises(InvalidTransition, match="not energised"):
        service.record_result(
            session, order, satisfaction=5, irregularities=[], notes=None, actor=staff
        )
    _advance(session, clock, order, Stage.energised, date(2025, 9, 30))
    assert _kinds(session, order) == set()
    clock.set_china(2025, 10, 9)
    callback = service.record_result(
        session,
        order,
        satisfaction=3,
        irregularities=[Irregularity.asked_to_pay, Irregularity.asked_to_apply_offline],
        notes="customer paid 200 yuan to a 'helper'",
        actor=staff,
    )
    assert callback.irregularities == ["asked_to_apply_offline", "asked_to_pay"]
    assert order.stage == Stage.called_back
    (flag,) = service.flags_of(session, order.id)
    assert flag.kind == FlagKind.callback_irregularity
    assert "asked to pay" in flag.reason
    assert "apply off the system" in flag.reason
    with pytest.raises(Conflict, match="already recorded"):
        service.record_result(
            session, order, satisfaction=5, irregularities=[], notes=None, actor=staff
        )


def test_installation_minutes_after_acceptance_is_flagged(
    session: Session, clock: ChinaClock
) -> None:
    order = _order(session, clock)
    clock.set_china(2025, 9, 29, 9, 20)
    for stage in FLOW[1 : FLOW.index(Stage.installed) + 1]:
        orders.transition(session, order, stage, actor=None)
    assert _kinds(session, order) == {FlagKind.installed_too_soon}


def test_application_recorded_long_after_customer_date_is_flagged(
    session: Session, clock: ChinaClock
) -> None:
    order = _order(session, clock, applied_on=date(2025, 9, 22))
    _advance(session, clock, order, Stage.installed, date(2025, 9, 30))
    (flag,) = service.flags_of(session, order.id)
    assert flag.kind == FlagKind.late_recorded_application
    assert "2025-09-22" in flag.reason


def test_evidence_captured_before_the_application_is_flagged(
    session: Session, clock: ChinaClock
) -> None:
    order = _order(session, clock)
    session.add(
        MediaItem(
            client_id=secrets.token_hex(8),
            order_id=order.id,
            stage=Stage.installed,
            kind=MediaKind.meter_after,
            media_type=MediaType.jpeg,
            sha256="0" * 64,
            size_bytes=1000,
            captured_at=datetime(2025, 9, 25, 14, 0, tzinfo=CHINA),
            captured_offset_known=True,
        )
    )
    session.flush()
    _advance(session, clock, order, Stage.installed, date(2025, 9, 30))
    (flag,) = service.flags_of(session, order.id)
    assert flag.kind == FlagKind.evidence_before_application
    assert "2025-09-25 14:00" in flag.reason


def test_planners_list_flags_and_service_resolves_them(
    session: Session, clock: ChinaClock, staff: Principal
) -> None:
    order = _order(session, clock, applied_on=date(2025, 9, 22))
    _advance(session, clock, order, Stage.installed, date(2025, 9, 30))
    listed = service.list_flags(session, PLANNER, district_id=order.district_id)
    assert [(f.kind, o.id) for f, o in listed] == [(FlagKind.late_recorded_application, order.id)]
    flag = listed[0][0]
    service.resolve_flag(session, flag.id, resolution="counter was closed", actor=staff)
    assert service.list_flags(session, PLANNER, district_id=order.district_id) == []
    # The same evidence again does not reopen a reviewed flag.
    assert service.scan(session, order) == []
    assert (
        len(
            service.list_flags(
                session, PLANNER, district_id=order.district_id, include_resolved=True
            )
        )
        == 1
    )
    with pytest.raises(Conflict):
        service.resolve_flag(session, flag.id, resolution="again", actor=staff)
    with pytest.raises(Forbidden):
        service.list_flags(session, Principal(user_id=0, name="c", role=Role.crew))


@pytest.mark.parametrize(("satisfaction", "complaint"), [(1, True), (2, False), (4, True)])
def test_an_unsatisfied_callback_opens_a_follow_up_that_blocks_closing(
    session: Session, clock: ChinaClock, staff: Principal, satisfaction: int, complaint: bool
) -> None:
    order = _order(session, clock)
    _advance(session, clock, order, Stage.energised, date(2025, 9, 30))
    clock.set_china(2025, 10, 9)
    service.record_result(
        session, order, satisfaction=satisfaction, irregularities=[], notes=None, actor=staff,
        complaint=complaint,
    )
    assert order.stage == Stage.called_back
    (follow_up,) = service.open_follow_ups(session, order.id)
    assert follow_up.kind == FlagKind.callback_unsatisfied
    assert ("the customer complained" in follow_up.reason) is complaint
    with pytest.raises(Conflict, match="cannot close while a call-back follow-up is open"):
        orders.transition(session, order, Stage.closed, actor=staff)

    service.resolve_flag(session, follow_up.id, resolution="called again, fixed", actor=staff)
    assert service.open_follow_ups(session, order.id) == []
    assert session.execute(
        select(AuditEvent.action).where(
            AuditEvent.action == "review_flag.resolve",
            AuditEvent.entity_id == str(follow_up.id),
        )
    ).scalars().all() == ["review_flag.resolve"]
    orders.transition(session, order, Stage.closed, actor=staff)
    assert order.stage == Stage.closed


def test_an_open_irregularity_flag_blocks_closing_and_a_satisfied_callback_does_not(
    session: Session, clock: ChinaClock, staff: Principal
) -> None:
    order = _order(session, clock)
    _advance(session, clock, order, Stage.energised, date(2025, 9, 30))
    clock.set_china(2025, 10, 9)
    service.record_result(
        session, order, satisfaction=5, irregularities=[Irregularity.asked_to_pay], notes=None,
        actor=staff,
    )
    (flag,) = service.open_follow_ups(session, order.id)
    assert flag.kind == FlagKind.callback_irregularity
    with pytest.raises(Conflict, match="callback_irregularity"):
        orders.transition(session, order, Stage.closed, actor=staff)

    happy = _order(session, clock)
    _advance(session, clock, happy, Stage.energised, date(2025, 9, 30))
    clock.set_china(2025, 10, 9)
    service.record_result(
        session, happy, satisfaction=3, irregularities=[], notes=None, actor=staff
    )
    assert service.open_follow_ups(session, happy.id) == []
    orders.transition(session, happy, Stage.closed, actor=staff)
    assert happy.stage == Stage.closed
