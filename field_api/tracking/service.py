"""Use cases of customer progress: tracking tokens, the public progress view, webhook
subscriptions and the outbox they are fed from, and the customer SMS.

Events are written to the outbox in the same transaction as the change that caused them, so a
committed stage change always has its webhook rows, and a rolled-back one never has any.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit import service as audit
from field_api.auth.models import District
from field_api.common import clock, i18n
from field_api.common.actors import Principal
from field_api.common.calendar import CalendarError, WorkingCalendar, calendar_for
from field_api.config import Settings, settings_of
from field_api.deadlines import service as deadlines
from field_api.deadlines.models import PlannedVisit
from field_api.errors import Conflict, NotFound, ValidationFailed
from field_api.jobs import service as jobs
from field_api.paging import PageParams
from field_api.privacy import mask_name, mask_phone
from field_api.sms import service as sms
from field_api.sms.rules import SmsTemplate
from field_api.tracking import rules, targets
from field_api.tracking.models import TrackingToken, WebhookDelivery, WebhookSubscription
from field_api.work_orders import service as orders
from field_api.work_orders.models import StageTransition, WorkOrder
from field_api.work_orders.rules import FLOW, Stage

logger = logging.getLogger(__name__)

# The one catalogue of stage names (field_api.common.i18n ``stage.*``): the crew app, the planner,
# the tracking page and the SMS all say the same words.
STAGE_LABELS_ZH: dict[Stage, str] = {stage: i18n.text(f"stage.{stage.value}") for stage in Stage}
# The customer hears about the steps that change what they wait for, not every internal one.
SMS_STAGES = frozenset({Stage.scheme_answered, Stage.energised, Stage.whitelisted, Stage.cancelled})
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
WEBHOOK_JOB = "webhooks.send"  # the periodic job that drains the outbox (field_api.wiring)



# --------------------------------------------------------------------------------------------
# Tracking tokens and the public view


def token_for(session: Session, order: WorkOrder) -> TrackingToken:
    """The order's tracking token, created on first use."""
    row = session.execute(
        select(TrackingToken).where(TrackingToken.order_id == order.id)
    ).scalar_one_or_none()
    if row is None:
        row = TrackingToken(order_id=order.id, token=rules.new_tracking_token())
        session.add(row)
        session.flush()
    return row


def ensure_token(
    session: Session, factory: sessionmaker[Session], order: WorkOrder
) -> TrackingToken:
    """The order's token read in ``session``; when it does not exist yet, created in a short
    write transaction of its own, so reading an existing link never waits for the write lock."""
    row = session.execute(
        select(TrackingToken).where(TrackingToken.order_id == order.id)
    ).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with factory.begin() as writer:
            created = token_for(writer, writer.get_one(WorkOrder, order.id))
            writer.expunge(created)
            return created
    except IntegrityError:  # another request created it first
        with factory() as reader:
            found = reader.execute(
                select(TrackingToken).where(TrackingToken.order_id == order.id)
            ).scalar_one()
            reader.expunge(found)
            return found


tracking_path = rules.tracking_path


def public_url(token: str, settings: Settings) -> str:
    """The full link sent to the customer: ``public_base_url`` (``FIELDOPS_PUBLIC_BASE_URL``;
    ``fieldops serve`` sets its own address when unset) + ``/t/<token>``."""
    base = settings.public_base_url or DEFAULT_PUBLIC_BASE_URL
    return base.rstrip("/") + tracking_path(token)


@dataclass(frozen=True)
class StageStep:
    """One stage of the flow as the customer sees it."""

    stage: Stage
    label: str
    done: bool
    current: bool
    at: datetime | None


@dataclass(frozen=True)
class DeadlineView:
    """The governing deadline, provisional when counted on weekends alone."""

    due_on: date
    provisional: bool
    missing_years: tuple[int, ...]
    status: str | None


@dataclass(frozen=True)
class ProgressView:
    """What the public tracking page shows; personal data masked."""

    order_id: int
    customer_name: str
    customer_phone: str
    district: str
    category: str
    stage: Stage
    stage_label: str
    steps: tuple[StageStep, ...]
    planned_visit: PlannedVisit | None
    deadline: DeadlineView | None
    whitelist_expected_on: date | None
    updated_at: datetime


def order_by_token(session: Session, token: str) -> WorkOrder:
    """The order behind a tracking token (404 for an unknown one)."""
    # Length check first: obviously malformed tokens never reach the database.
    if not (16 <= len(token) <= 64):
        raise NotFound("unknown tracking token", code="tracking.unknown_token")
    row = session.execute(
        select(TrackingToken).where(TrackingToken.token == token)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("unknown tracking token", code="tracking.unknown_token")
    order = orders.get_or_raise(session, row.order_id)
    if link_expired(order, days=settings_of(session).tracking.link_days_after_close):
        raise NotFound("this tracking link has expired", code="tracking.link_expired")
    return order


def link_expired(order: WorkOrder, *, days: float) -> bool:
    """Whether the order's tracking link no longer works: ``days`` after the order was closed or
    cancelled (the setting FIELDOPS_TRACKING_LINK_DAYS_AFTER_CLOSE, default 30)."""
    if order.stage not in (Stage.closed, Stage.cancelled):
        return False
    keep = days
    ended = order.stage_changed_at
    if ended.tzinfo is None:  # SQLite hands back naive UTC
        ended = ended.replace(tzinfo=UTC)
    return clock.now() >= ended + timedelta(days=keep)


def revoke_link(session: Session, order: WorkOrder, *, actor: Principal) -> bool:
    """Revoke the order's tracking link at once (service, admin); audited.

    The token row is deleted: the old link answers 404 like an unknown one. A later request
    for the order's link (or the next progress SMS) makes a new, different token. Returns
    whether a link existed.
    """
    row = session.execute(
        select(TrackingToken).where(TrackingToken.order_id == order.id)
    ).scalar_one_or_none()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    audit.record(session, actor=actor, action="tracking_token.revoke", entity=row, deleted=True)
    return True


def progress(
    session: Session,
    token: str,
    *,
    as_of: date | None = None,
    calendar: WorkingCalendar | None = None,
) -> ProgressView:
    """The customer's view of their order's progress."""
    order = order_by_token(session, token)
    reached: dict[Stage, datetime] = {Stage.accepted: order.accepted_at}
    for row in orders.transitions_of(session, order.id):
        reached.setdefault(row.to_stage, row.at)
    current_index = FLOW.index(order.stage) if order.stage in FLOW else None
    if order.stage == Stage.whitelisted and order.parked_from in FLOW:
        current_index = FLOW.index(order.parked_from) if order.parked_from else None
    steps = tuple(
        StageStep(
            stage=stage,
            label=STAGE_LABELS_ZH[stage],
            done=current_index is not None and i <= current_index,
            current=stage == order.stage,
            at=reached.get(stage) if current_index is not None and i <= current_index else None,
        )
        for i, stage in enumerate(FLOW)
    )
    try:
        # Evaluated, not stored: a public page view never writes to the database.
        result = deadlines.evaluate(
            session,
            order,
            calendar=calendar or calendar_for(settings_of(session)),
            as_of=as_of or clock.china_today(),
        )
        e2e = result.end_to_end
    except CalendarError:
        # Strict calendar and an unpublished year: the customer still sees their progress.
        e2e = None
    deadline = (
        DeadlineView(
            due_on=e2e.due.due,
            provisional=e2e.due.provisional,
            missing_years=e2e.due.missing_years,
            status=e2e.status.value if e2e.status else None,
        )
        if e2e is not None and e2e.due is not None
        else None
    )
    district = session.get(District, order.district_id)
    return ProgressView(
        order_id=order.id,
        customer_name=mask_name(order.customer_name),
        customer_phone=mask_phone(order.customer_phone),
        district=district.name if district is not None else "",
        category=order.category.value,
        stage=order.stage,
        stage_label=STAGE_LABELS_ZH[order.stage],
        steps=steps,
        planned_visit=deadlines.current_visit(session, order.id),
        deadline=deadline,
        whitelist_expected_on=(
            order.whitelist_expected_on if order.stage == Stage.whitelisted else None
        ),
        updated_at=order.stage_changed_at,
    )


# --------------------------------------------------------------------------------------------
# Webhook subscriptions


def create_subscription(
    session: Session,
    *,
    name: str,
    url: str,
    events: list[rules.EventType],
    actor: Principal | None,
    allow_http: bool,
    allow_loopback: bool | None = None,
    include_tracking_path: bool = False,
) -> WebhookSubscription:
    """Register a subscriber; its signing secret is generated here and shown once.

    The target must be a public address (:mod:`field_api.tracking.targets`): checked here and
    again at every delivery. Loopback is allowed only where ``allow_loopback`` (default: as
    ``allow_http``, i.e. outside production) says so.
    """
    policy = targets.TargetPolicy(
        https_only=not allow_http,
        allow_loopback=allow_http if allow_loopback is None else allow_loopback,
    )
    refused = targets.registration_problem(url, policy)
    if refused:
        raise ValidationFailed(
            str(refused), code="webhook.url_invalid", params={"reason": refused.message}
        )
    if not events:
        raise ValidationFailed("subscribe to at least one event", code="webhook.no_events")
    sub = WebhookSubscription(
        name=name,
        url=url,
        secret=rules.new_webhook_secret(),
        events=sorted({e.value for e in events}),
        active=True,
        include_tracking_path=include_tracking_path,
        created_by=actor.user_id if actor else None,
    )
    session.add(sub)
    audit.record(session, actor=actor, action="webhook_subscription.create", entity=sub)
    return sub


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    """Every subscriber, oldest first."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    return list(session.execute(query).scalars())


def deactivate_subscription(
    session: Session, subscription_id: int, *, actor: Principal | None
) -> WebhookSubscription:
    """Stop sending to a subscriber (its pending deliveries are dropped as dead)."""
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(
            f"webhook subscription {subscription_id} not found",
            code="webhook.not_found",
            params={"subscription_id": subscription_id},
        )
    if not sub.active:
        raise Conflict(
            f"webhook subscription {subscription_id} is already inactive",
            code="webhook.already_inactive",
            params={"subscription_id": subscription_id},
        )
    sub.active = False
    audit.record(session, actor=actor, action="webhook_subscription.deactivate", entity=sub)
    return sub


def list_deliveries(
    session: Session, *, status: rules.DeliveryStatus | None = None, limit: int = 100
) -> list[WebhookDelivery]:
    """Outbox rows, newest first."""
    return list(session.execute(deliveries_query(status=status).limit(limit)).scalars())


def deliveries_query(*, status: rules.DeliveryStatus | None = None) -> Select[WebhookDelivery]:
    """Outbox rows, newest first (a total order)."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc())
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    return query


def enqueue(
    session: Session, event_type: rules.EventType, payload: dict[str, Any], *, order_id: int
) -> list[WebhookDelivery]:
    """Write one outbox row per active subscriber of ``event_type``."""
    event_id = str(uuid.uuid4())
    now = clock.now()
    body = {
        "event": event_type.value,
        "event_id": event_id,
        "occurred_at": now.isoformat(),
        **payload,
    }
    rows = []
    for sub in list_subscriptions(session):
        if not sub.active or event_type.value not in sub.events:
            continue
        row = WebhookDelivery(
            subscription_id=sub.id,
            event_id=event_id,
            event_type=event_type.value,
            order_id=order_id,
            payload=body,
            status=rules.DeliveryStatus.pending.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    if rows:  # the job that drains the outbox runs now rather than at its next period
        jobs.wake(session, WEBHOOK_JOB)
    return rows


def _order_payload(session: Session, order: WorkOrder) -> dict[str, Any]:
    # No personal data leaves in webhooks: subscribers get the order and its progress only.
    district = session.get(District, order.district_id)
    return {
        "id": order.id,
        "stage": order.stage.value,
        "category": order.category.value,
        "district": district.code if district is not None else None,
        # The page's path is added by the sender when it posts (``sender.with_tracking_path``):
        # the outbox keeps no copy of the customer's token.
        "tracking_path": None,
    }


def _deadline_payload(session: Session, order: WorkOrder) -> dict[str, Any] | None:
    clocks = deadlines.stored_clocks(session, order.id)
    e2e = next((c for c in clocks if c.governing), None)
    if e2e is None or e2e.due_on is None:
        return None
    return {
        "due_on": e2e.due_on.isoformat(),
        "provisional": e2e.provisional,
        "missing_years": list(e2e.missing_years),
    }


def _send_sms(session: Session, phone: str, template: SmsTemplate, params: dict[str, str]) -> None:
    # Queued in the transaction of the change (the SMS outbox): the job workers send it and
    # retry a failing gateway; a rollback sends nothing.
    sms.enqueue_sms(session, phone, template, params, settings=settings_of(session))


def on_stage_change(session: Session, order: WorkOrder, row: StageTransition) -> None:
    """Queue ``stage_changed`` webhooks and text the customer for the steps they care about."""
    deadlines.refresh(session, order, as_of=clock.china_date(row.at))
    enqueue(
        session,
        rules.EventType.stage_changed,
        {
            "order": _order_payload(session, order),
            "from_stage": row.from_stage.value,
            "to_stage": row.to_stage.value,
            "at": row.at.isoformat(),
            "deadline": _deadline_payload(session, order),
        },
        order_id=order.id,
    )
    if row.to_stage in SMS_STAGES:
        settings = settings_of(session)
        link = public_url(token_for(session, order).token, settings)
        _send_sms(
            session,
            order.customer_phone,
            SmsTemplate.progress,
            {"order_id": str(order.id), "stage": STAGE_LABELS_ZH[row.to_stage], "link": link},
        )


def on_visit_planned(session: Session, order: WorkOrder, visit: PlannedVisit) -> None:
    """Queue ``visit_planned`` webhooks and tell the customer the window."""
    enqueue(
        session,
        rules.EventType.visit_planned,
        {
            "order": _order_payload(session, order),
            "visit": {
                "id": visit.id,
                "window_start": visit.window_start.isoformat(),
                "window_end": visit.window_end.isoformat(),
            },
        },
        order_id=order.id,
    )
    start = clock.to_china(visit.window_start)
    end = clock.to_china(visit.window_end)
    _send_sms(
        session,
        order.customer_phone,
        SmsTemplate.visit,
        {"order_id": str(order.id), "start": f"{start:%Y-%m-%d %H:%M}", "end": f"{end:%H:%M}"},
    )


# --------------------------------------------------------------------------------------------
# The API's use cases: the access decision first, then the work.


def token_for_actor(
    session: Session, factory: sessionmaker[Session], order_id: int, actor: Principal
) -> str:
    """The tracking token of an order the actor may read (created on first use)."""
    order = orders.get_for_actor(session, order_id, actor, write=False)
    return ensure_token(session, factory, order).token


def revoke_link_for_actor(session: Session, order_id: int, *, actor: Principal) -> bool:
    """:func:`revoke_link` of an order the actor may change."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    return revoke_link(session, order, actor=actor)


def deliveries_page(
    session: Session, page: PageParams, *, status: rules.DeliveryStatus | None = None
) -> list[WebhookDelivery]:
    """One page of the outbox rows, newest first (counted and cut in the database)."""
    return page.select(session, deliveries_query(status=status))
