"""Deadlines on the database: recomputed on transitions, pauses, views, provisional years."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.audit.models import AuditEvent
from field_api.common.actors import Principal, Role
from field_api.common.calendar import PACKAGE_YEARS, WorkingCalendar, build_calendar
from field_api.deadlines import service
from field_api.deadlines.models import OrderDeadline, PlannedVisit
from field_api.deadlines.rules import ClockStatus
from field_api.errors import Conflict, Forbidden, InvalidTransition, ValidationFailed
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Category, Stage
from tests.builders import make_crew, make_district, make_order
from tests.clocks import ChinaClock

from .conftest import CHINA

CAL = WorkingCalendar()
PLANNER = Principal(user_id=0, name="planner", role=Role.planner)


def _accepted(session: Session, clock: ChinaClock, day: date, **kw: object) -> WorkOrder:
    clock.set_china(day.year, day.month, day.day)
    order = make_order(session, **kw)  # type: ignore[arg-type]
    order.accepted_at = clock.now()
    session.flush()
    return order


def _move(session: Session, clock: ChinaClock, order: WorkOrder, stage: Stage, day: date) -> None:
    clock.set_china(day.year, day.month, day.day)
    orders.transition(session, order, stage, actor=None)


def _row(session: Session, order: WorkOrder, clock_name: str) -> OrderDeadline:
    return session.execute(
        select(OrderDeadline).where(
            OrderDeadline.order_id == order.id, OrderDeadline.clock == clock_name
        )
    ).scalar_one()


def test_transition_stores_residential_deadline_2025_10_13(
    session: Session, clock: ChinaClock
) -> None:
    order = _accepted(session, clock, date(2025, 9, 29))
    _move(session, clock, order, Stage.surveyed, date(2025, 9, 29))
    e2e = _row(session, order, "end_to_end")
    assert e2e.due_on == date(2025, 10, 13)
    assert not e2e.provisional
    assert e2e.governing
    assert _row(session, order, "supply_scheme").due_on == date(2025, 10, 10)


def test_energised_in_time_is_met_and_late_is_missed(session: Session, clock: ChinaClock) -> None:
    on_time = _accepted(session, clock, date(2025, 9, 29))
    late = _accepted(session, clock, date(2025, 9, 29))
    for stage in (Stage.surveyed, Stage.scheme_answered, Stage.contract_signed):
        _move(session, clock, on_time, stage, date(2025, 9, 30))
        _move(session, clock, late, stage, date(2025, 9, 30))
    for stage in (Stage.installed, Stage.inspected, Stage.energised):
        _move(session, clock, on_time, stage, date(2025, 10, 13))
        _move(session, clock, late, stage, date(2025, 10, 14))
    assert _row(session, on_time, "end_to_end").status == ClockStatus.met
    assert _row(session, late, "end_to_end").status == ClockStatus.missed
    rows = service.compliance(
        session,
        PLANNER,
        period_from=date(2025, 10, 1),
        period_to=date(2025, 10, 31),
        district_id=on_time.district_id,
    )
    e2e = next(r for r in rows if r.name == "end_to_end")
    assert (e2e.met, e2e.missed) == (1, 0)
    all_rows = service.compliance(
        session, PLANNER, period_from=date(2025, 10, 1), period_to=date(2025, 10, 31)
    )
    e2e_all = next(r for r in all_rows if r.name == "end_to_end")
    assert e2e_all.met >= 1
    assert e2e_all.missed >= 1


def test_pause_extends_deadline_and_is_audited(session: Session, clock: ChinaClock) -> None:
    order = _accepted(session, clock, date(2025, 9, 29))
    before = session.query(AuditEvent).count()
    clock.set_china(2025, 10, 9)
    pause = service.start_pause(
        session, order, reason="customer_absent", note=None, actor=None, calendar=CAL
    )
    with pytest.raises(Conflict, match="already has a pause"):
        service.start_pause(
            session, order, reason="customer_absent", note=None, actor=None, calendar=CAL
        )
    clock.set_china(2025, 10, 11)
    service.end_pause(session, order, pause.id, actor=None, calendar=CAL)
    assert _row(session, order, "end_to_end").due_on == date(2025, 10, 15)
    assert _row(session, order, "end_to_end").paused_working_days == 2
    actions = [
        e.action
        for e in session.execute(select(AuditEvent).where(AuditEvent.seq > before)).scalars()
    ]
    assert actions == ["clock_pause.start", "clock_pause.end"]
    with pytest.raises(Conflict, match="already ended"):
        service.end_pause(session, order, pause.id, actor=None, calendar=CAL)


def test_unknown_pause_reason_and_finished_order_are_refused(
    session: Session, clock: ChinaClock
) -> None:
    order = _accepted(session, clock, date(2025, 9, 29))
    with pytest.raises(ValidationFailed, match="unknown pause reason"):
        service.start_pause(session, order, reason="weather", note=None, actor=None)
    orders.transition(session, order, Stage.cancelled, actor=None, reason="customer withdrew")
    with pytest.raises(InvalidTransition):
        service.start_pause(session, order, reason="customer_absent", note=None, actor=None)


def test_attention_lists_due_soon_and_overdue_by_crew(session: Session, clock: ChinaClock) -> None:
    district = make_district(session)
    crew_a = make_crew(session, district=district)
    crew_b = make_crew(session, district=district)
    overdue = _accepted(session, clock, date(2025, 9, 22), crew=crew_a)  # due 2025-10-09
    at_risk = _accepted(session, clock, date(2025, 9, 29), crew=crew_a)  # due 2025-10-13
    on_track = _accepted(session, clock, date(2025, 10, 10), crew=crew_b)  # due 2025-10-16
    for order in (overdue, at_risk, on_track):
        service.refresh(session, order, calendar=CAL, as_of=date(2025, 10, 10))
    items = service.attention(
        session, PLANNER, as_of=date(2025, 10, 11), district_id=district.id, calendar=CAL
    )
    governing = {(i.order_id, i.status) for i in items if i.governing}
    assert governing == {(overdue.id, ClockStatus.overdue), (at_risk.id, ClockStatus.at_risk)}
    groups = service.group_attention(items)
    assert [(g.crew_id, g.at_risk, g.overdue) for g in groups] == [(crew_a.id, 1, 1)]
    crew_b_member = Principal(user_id=0, name="b", role=Role.crew, crew_id=crew_b.id)
    assert service.attention(session, crew_b_member, as_of=date(2025, 10, 11), calendar=CAL) == []
    inspector = Principal(user_id=0, name="i", role=Role.inspector)
    with pytest.raises(Forbidden):
        service.attention(session, inspector, as_of=date(2025, 10, 11), calendar=CAL)


def test_open_pause_keeps_order_out_of_overdue(session: Session, clock: ChinaClock) -> None:
    district = make_district(session)
    order = _accepted(session, clock, date(2025, 9, 29), district=district)
    clock.set_china(2025, 10, 9)
    service.start_pause(
        session, order, reason="customer_works", note=None, actor=None, calendar=CAL
    )
    items = service.attention(
        session, PLANNER, as_of=date(2025, 10, 20), district_id=district.id, calendar=CAL
    )
    assert all(i.status is not ClockStatus.overdue for i in items)
    assert _row(session, order, "end_to_end").paused


def test_provisional_deadline_becomes_exact_when_override_gains_the_year(
    session: Session, clock: ChinaClock, tmp_path: Path
) -> None:
    last = PACKAGE_YEARS[1]
    order = _accepted(session, clock, date(last, 12, 28), category=Category.residential)
    service.refresh(session, order, calendar=CAL, as_of=date(last, 12, 28))
    row = _row(session, order, "end_to_end")
    assert row.provisional
    assert row.missing_years == [last + 1]
    provisional_due = row.due_on
    assert provisional_due is not None

    path = tmp_path / "calendar.yaml"
    path.write_text(
        f"{last + 1}:\n  complete: true\n  holidays: [{last + 1}-01-01, {provisional_due}]\n",
        encoding="utf-8",
    )
    calendar = build_calendar(path, strict=True)
    assert service.recompute_provisional(session, calendar=calendar) >= 1
    row = _row(session, order, "end_to_end")
    assert not row.provisional
    assert row.missing_years == []
    assert row.due_on is not None
    assert row.due_on > provisional_due


def test_white_listed_order_stops_the_normal_clock(session: Session, clock: ChinaClock) -> None:
    order = _accepted(session, clock, date(2025, 9, 29))
    clock.set_china(2025, 9, 30)
    orders.transition(
        session,
        order,
        Stage.whitelisted,
        actor=None,
        reason="transformer full",
        expected_on=date(2025, 10, 31),
    )
    assert _row(session, order, "white_list").due_on == date(2025, 10, 31)
    _move(session, clock, order, Stage.accepted, date(2025, 11, 3))
    assert _row(session, order, "end_to_end").due_on == date(2025, 11, 7)
    assert _row(session, order, "white_list").status == ClockStatus.missed


def test_book_visit_validates_window_and_notifies_listeners(
    session: Session, clock: ChinaClock
) -> None:
    order = _accepted(session, clock, date(2025, 9, 29))
    seen: list[int] = []
    service.add_visit_listener(lambda _s, _o, v: seen.append(v.id))
    start = datetime(2025, 9, 30, 9, 0, tzinfo=CHINA)
    with pytest.raises(ValidationFailed, match="end after"):
        service.book_visit(
            session, order, window_start=start, window_end=start, note=None, actor=None
        )
    visit = service.book_visit(
        session,
        order,
        window_start=start,
        window_end=start.replace(hour=11),
        note="call first",
        actor=None,
    )
    assert seen[-1] == visit.id
    assert service.current_visit(session, order.id) == visit
    service.cancel_visit(session, order, visit.id, actor=None)
    assert service.current_visit(session, order.id) is None
    assert session.get(PlannedVisit, visit.id) is not None
