"""The webhook events of pauses, appointments and due dates: written in the transaction of the
change, numbered in sequence per order, without personal data."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common.calendar import WorkingCalendar
from field_api.deadlines import service as deadlines
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery
from field_api.tracking.rules import EventType
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import RecordingNotifier

CAL = WorkingCalendar()


def _events(session: Session) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    return list(session.execute(query).scalars())


def test_pauses_appointments_and_due_dates_are_told_in_sequence(
    session: Session, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    clock.set_china(2025, 9, 29)
    order = make_order(session)
    order.accepted_at = clock.now()
    session.flush()
    deadlines.refresh(session, order, calendar=CAL)  # first computation: no event
    tracking.create_subscription(
        session, name="crm", url="https://crm.example.test/hook", events=list(EventType),
        actor=None, allow_http=False,
    )  # fmt: skip
    assert _events(session) == []

    clock.set_china(2025, 10, 9)
    pause = deadlines.start_pause(
        session, order, reason="customer_absent", note="客户电话 13812345678", actor=None,
        calendar=CAL,
    )  # fmt: skip
    clock.set_china(2025, 10, 11)
    deadlines.end_pause(session, order, pause.id, actor=None, calendar=CAL)
    start = clock.now() + timedelta(days=1)
    first = deadlines.book_visit(
        session, order, window_start=start, window_end=start + timedelta(hours=2), note=None,
        actor=None,
    )  # fmt: skip
    later = start + timedelta(days=1)
    second = deadlines.book_visit(
        session, order, window_start=later, window_end=later + timedelta(hours=2), note=None,
        actor=None,
    )  # fmt: skip
    deadlines.cancel_visit(session, order, second.id, actor=None)

    rows = _events(session)
    kinds = [r.event_type for r in rows]
    assert kinds[:2] == ["pause_started", "pause_ended"]
    assert "due_date_changed" in kinds[1:kinds.index("visit_planned")]
    assert kinds[-4:] == [
        "visit_planned", "visit_planned", "appointment_changed", "appointment_cancelled"
    ]  # fmt: skip
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    assert all(r.payload["sequence"] == r.sequence for r in rows)

    moved = next(r.payload for r in reversed(rows) if r.event_type == "due_date_changed")
    assert moved["new_due_on"] == date(2025, 10, 15).isoformat()
    assert moved["old_due_on"] != moved["new_due_on"] and moved["clock"] == "end_to_end"
    pause_body = rows[1].payload["pause"]
    assert pause_body["id"] == pause.id and pause_body["ended_at"] is not None
    changed = rows[-2].payload
    assert changed["visit"]["id"] == second.id and changed["previous_visit"]["id"] == first.id
    assert rows[-1].payload["visit"]["cancelled_at"] is not None
    text = json.dumps([r.payload for r in rows], ensure_ascii=False)
    for private in (order.customer_name, order.customer_phone, "13812345678"):
        assert private not in text


def test_subscribers_get_only_the_event_types_they_chose(
    session: Session, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    order = make_order(session)
    tracking.create_subscription(
        session, name="crm", url="https://crm.example.test/hook",
        events=[EventType.appointment_cancelled], actor=None, allow_http=False,
    )  # fmt: skip
    start = clock.now() + timedelta(days=1)
    visit = deadlines.book_visit(
        session, order, window_start=start, window_end=start + timedelta(hours=2), note=None,
        actor=None,
    )  # fmt: skip
    deadlines.cancel_visit(session, order, visit.id, actor=None)
    (row,) = _events(session)
    # numbers go to events someone subscribes to (no row, no number for the visit_planned)
    assert (row.event_type, row.sequence) == ("appointment_cancelled", 1)
