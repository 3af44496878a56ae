"""Tracking tokens, the progress view, the outbox and the customer SMS on the database."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common.calendar import PACKAGE_YEARS
from field_api.config import get_settings
from field_api.deadlines import service as deadlines
from field_api.errors import Conflict, NotFound, ValidationFailed
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery
from field_api.tracking.rules import EventType
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import CHINA, RecordingNotifier


def _order(session: Session, clock: ChinaClock, day: date = date(2025, 9, 29)) -> WorkOrder:
    clock.set_china(day.year, day.month, day.day)
    order = make_order(session)
    order.accepted_at = clock.now()
    session.flush()
    return order


def _subscribe(session: Session, *events: EventType) -> int:
    sub = tracking.create_subscription(
        session,
        name="crm",
        url="https://crm.example.test/hook",
        events=list(events),
        actor=None,
        allow_http=False,
    )
    return sub.id


def test_token_is_created_once_and_unknown_token_is_404(session: Session, clock: ChinaClock) -> None:
    order = _order(session, clock)
    first = tracking.token_for(session, order).token
    assert tracking.token_for(session, order).token == first
    assert len(first) >= 32
    with pytest.raises(NotFound):
        tracking.progress(session, "x" * 32)
    with pytest.raises(NotFound):
        tracking.progress(session, "short")


def test_progress_shows_stages_deadline_visit_with_personal_data_masked(
    session: Session, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    order = _order(session, clock)
    clock.set_china(2025, 9, 30)
    orders.transition(session, order, Stage.surveyed, actor=None)
    start = datetime(2025, 10, 9, 9, 0, tzinfo=CHINA)
    deadlines.book_visit(
        session,
        order,
        window_start=start,
        window_end=start.replace(hour=11),
        note=None,
        actor=None,
    )
    view = tracking.progress(
        session, tracking.token_for(session, order).token, as_of=date(2025, 9, 30)
    )
    assert view.customer_name == "张*"
    assert view.customer_phone == "*******8000"
    assert [s.stage for s in view.steps if s.done] == [Stage.accepted, Stage.surveyed]
    assert [s.stage for s in view.steps if s.current] == [Stage.surveyed]
    assert view.deadline is not None
    assert view.deadline.due_on == date(2025, 10, 13)
    assert not view.deadline.provisional
    assert view.planned_visit is not None
    assert view.planned_visit.window_start == start


def test_progress_marks_a_provisional_deadline(session: Session, clock: ChinaClock) -> None:
    order = _order(session, clock, date(PACKAGE_YEARS[1], 12, 28))
    view = tracking.progress(
        session, tracking.token_for(session, order).token, as_of=date(PACKAGE_YEARS[1], 12, 28)
    )
    assert view.deadline is not None
    assert view.deadline.provisional
    assert view.deadline.missing_years == (PACKAGE_YEARS[1] + 1,)


def test_stage_change_queues_webhooks_for_subscribers_without_personal_data(
    session: Session, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    stage_sub = _subscribe(session, EventType.stage_changed)
    visit_sub = _subscribe(session, EventType.visit_planned)
    order = _order(session, clock)
    clock.set_china(2025, 9, 30)
    orders.transition(session, order, Stage.surveyed, actor=None)
    rows = list(
        session.execute(
            select(WebhookDelivery).where(WebhookDelivery.order_id == order.id)
        ).scalars()
    )
    assert [(r.subscription_id, r.event_type, r.status) for r in rows] == [
        (stage_sub, "stage_changed", "pending")
    ]
    payload = rows[0].payload
    assert payload["to_stage"] == "surveyed"
    assert payload["deadline"] == {
        "due_on": "2025-10-13",
        "provisional": False,
        "missing_years": [],
    }
    text = json.dumps(payload, ensure_ascii=False)
    assert "张三" not in text
    assert "13800138000" not in text
    assert order.customer_id_number not in text
    start = datetime(2025, 10, 9, 9, 0, tzinfo=CHINA)
    deadlines.book_visit(
        session,
        order,
        window_start=start,
        window_end=start.replace(hour=11),
        note=None,
        actor=None,
    )
    visit_rows = session.execute(
        select(WebhookDelivery).where(WebhookDelivery.event_type == "visit_planned")
    ).scalars()
    assert [r.subscription_id for r in visit_rows if r.order_id == order.id] == [visit_sub]


def test_customer_sms_on_chosen_stages_and_a_failing_gateway_does_not_block(
    session: Session, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    order = _order(session, clock)
    orders.transition(session, order, Stage.surveyed, actor=None)
    assert sms.sent == []
    orders.transition(session, order, Stage.scheme_answered, actor=None)
    assert len(sms.sent) == 1
    phone, text = sms.sent[0]
    assert phone == "13800138000"
    assert "供电方案已答复" in text
    # One sender name for every customer text (the contract's signing codes use it too).
    sender = get_settings().contracts.sms_sender
    assert text.startswith(sender) and sender == "【国网示例市供电公司】"
    assert f"/t/{tracking.token_for(session, order).token}" in text
    sms.fail = True
    orders.transition(session, order, Stage.contract_signed, actor=None)
    orders.transition(session, order, Stage.cancelled, actor=None, reason="customer withdrew")
    assert order.stage == Stage.cancelled


def test_subscription_rules(session: Session) -> None:
    with pytest.raises(ValidationFailed, match="https"):
        tracking.create_subscription(
            session,
            name="x",
            url="http://example.test/hook",
            events=[EventType.stage_changed],
            actor=None,
            allow_http=False,
        )
    sub_id = _subscribe(session, EventType.stage_changed)
    tracking.deactivate_subscription(session, sub_id, actor=None)
    with pytest.raises(Conflict, match="already inactive"):
        tracking.deactivate_subscription(session, sub_id, actor=None)
