"""Notices of planned outages to the affected customer accounts (SMS, in Chinese).

Approving a planned outage adds one :class:`OutageNotice` per affected account and one
``reliability.outage_notice`` job each (dedupe key ``reliability.notice:<id>``), due
``FIELDOPS_RELIABILITY_NOTICE_DAYS_BEFORE`` days before the start (now when that is past).
The job, in one transaction, locks its notice, checks it is still pending and still about the
request's current window, writes the SMS outbox row (``enqueue_sms``: the outbox sends it
once) and marks the notice sent: a job run twice (a restart, a lost outcome) finds it sent
and does nothing, and a notice of an old window never goes out.

Moving the window supersedes the pending notices of the old one: accounts already told get a
``moved`` correction now, the others a new notice for the new window at the usual time.
Cancelling supersedes the pending ones and tells the accounts already told (``cancelled``).
The text shows the window in China time (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.config import Settings
from field_api.jobs import service as jobs
from field_api.privacy import mask_phone
from field_api.reliability import planning_rules
from field_api.reliability.models import Customer, OutageNotice, PlannedOutageRequest
from field_api.reliability.planning_rules import NoticeKind, NoticeState, RequestState
from field_api.reliability.planning_schemas import OutageNoticeRead
from field_api.reliability.sections import customers_of
from field_api.sms import service as sms
from field_api.sms.rules import SmsTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from field_api.jobs.service import ClaimedJob

JOB_KIND = "reliability.outage_notice"
HEADINGS = {
    NoticeKind.notice: "计划停电通知",
    NoticeKind.moved: "计划停电时间变更（以本条为准）",
    NoticeKind.cancelled: "计划停电取消（原定时间如下）",
}


class JobContext(Protocol):
    @property
    def session_factory(self) -> sessionmaker[Session]: ...

    @property
    def settings(self) -> Settings: ...


def _short(moment: datetime) -> str:
    return clock.to_china(moment).strftime("%Y-%m-%d %H:%M")


def _add(
    session: Session, request: PlannedOutageRequest, customer_id: int, kind: NoticeKind,
    due: datetime,
) -> None:
    """One notice and its job, unless that notice exists already."""
    found = session.execute(select(OutageNotice).where(
        OutageNotice.request_id == request.id, OutageNotice.customer_id == customer_id,
        OutageNotice.kind == kind.value, OutageNotice.window_version == request.window_version,
    )).scalar_one_or_none()
    if found is not None:
        return
    notice = OutageNotice(
        request_id=request.id, customer_id=customer_id, kind=kind.value,
        window_version=request.window_version, state=NoticeState.pending.value, due_at=due,
        created_at=clock.now(),
    )
    session.add(notice)
    session.flush()
    jobs.enqueue(session, JOB_KIND, {"notice_id": notice.id},
                 delay_s=(due - clock.now()).total_seconds(),
                 dedupe_key=f"reliability.notice:{notice.id}")


def _affected(session: Session, request: PlannedOutageRequest) -> list[int]:
    day = clock.china_date(request.start_at)
    return [c.id for c in customers_of(session, request.transformer_codes, day)]


def _notices(session: Session, request_id: int) -> list[OutageNotice]:
    return list(session.execute(
        select(OutageNotice).where(OutageNotice.request_id == request_id)
        .order_by(OutageNotice.id).with_for_update()
    ).scalars())


def schedule_window(
    session: Session, settings: Settings, request: PlannedOutageRequest,
    *, skip: frozenset[int] = frozenset(),
) -> None:
    """A notice of the request's current window to every affected account (but ``skip``)."""
    due = planning_rules.notice_due(
        request.start_at, days_before=settings.reliability.notice_days_before, now=clock.now()
    )
    for customer_id in _affected(session, request):
        if customer_id not in skip:
            _add(session, request, customer_id, NoticeKind.notice, due)


def _supersede_pending(rows: list[OutageNotice]) -> set[int]:
    """Mark pending notices superseded; returns the accounts already told."""
    told: set[int] = set()
    for row in rows:
        if row.state == NoticeState.pending.value:
            row.state = NoticeState.superseded.value
        elif row.state == NoticeState.sent.value:
            told.add(row.customer_id)
    return told


def window_moved(session: Session, settings: Settings, request: PlannedOutageRequest) -> None:
    """The window moved: a correction now to those told, a new notice to the others."""
    told = _supersede_pending(_notices(session, request.id))
    now = clock.now()
    for customer_id in sorted(told):
        _add(session, request, customer_id, NoticeKind.moved, now)
    schedule_window(session, settings, request, skip=frozenset(told))
    session.flush()


def cancelled(session: Session, settings: Settings, request: PlannedOutageRequest) -> None:
    """Cancelled: pending notices never go out; those told learn it now."""
    told = _supersede_pending(_notices(session, request.id))
    now = clock.now()
    for customer_id in sorted(told):
        _add(session, request, customer_id, NoticeKind.cancelled, now)
    session.flush()


def _still_current(notice: OutageNotice, request: PlannedOutageRequest) -> bool:
    if notice.window_version != request.window_version:
        return False
    if notice.kind == NoticeKind.cancelled.value:
        return request.state == RequestState.cancelled.value
    return request.state == RequestState.approved.value


def send_one(session: Session, settings: Settings, notice_id: int) -> bool:
    """Hand one pending notice to the SMS outbox (in the caller's transaction); False when it
    was sent already, superseded, or its window is no longer the request's."""
    notice = session.execute(
        select(OutageNotice).where(OutageNotice.id == notice_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if notice is None or notice.state != NoticeState.pending.value:
        return False
    request = session.get(PlannedOutageRequest, notice.request_id, populate_existing=True)
    customer = session.get(Customer, notice.customer_id)
    if request is None or customer is None or not _still_current(notice, request):
        notice.state = NoticeState.superseded.value
        return False
    row = sms.enqueue_sms(session, customer.phone, SmsTemplate.outage, {
        "notice": HEADINGS[NoticeKind(notice.kind)], "account": customer.account_no,
        "work": request.work[:40], "start": _short(request.start_at),
        "end": _short(request.end_at),
    }, settings=settings)
    notice.state, notice.sms_outbox_id, notice.sent_at = (
        NoticeState.sent.value, row.id, clock.now()
    )
    session.flush()
    return True


def notice_job(ctx: JobContext, job: ClaimedJob) -> bool:
    """The ``reliability.outage_notice`` handler (see the module's text)."""
    with ctx.session_factory.begin() as session:
        return send_one(session, ctx.settings, int(job.payload.get("notice_id", 0)))


def read_notices(session: Session, request_id: int) -> list[OutageNoticeRead]:
    rows = session.execute(
        select(OutageNotice, Customer).join(Customer, Customer.id == OutageNotice.customer_id)
        .where(OutageNotice.request_id == request_id).order_by(OutageNotice.id)
    ).all()
    return [
        OutageNoticeRead(
            request_id=n.request_id, account_no=c.account_no, phone_masked=mask_phone(c.phone),
            kind=NoticeKind(n.kind), window_version=n.window_version,
            state=NoticeState(n.state), due_at=n.due_at, sent_at=n.sent_at,
        )
        for n, c in rows
    ]
