"""The SMS outbox: enqueue a message in the caller's transaction, send it from a job.

:func:`enqueue_sms` writes the outbox row (number and parameters encrypted) and its
``sms.send`` job (queue ``sms``) in the caller's transaction: a rollback sends nothing, a
commit always sends. :func:`send_job` is the job's handler: it sends a pending row once (a row
already sent or dead is left alone), retries with the queue's backoff on a gateway failure and
lands in the dead-letter list after ``FIELDOPS_SMS_MAX_ATTEMPTS``. Once sent (the http gateway)
or dead, the ciphertexts are wiped; the job's payload holds only the row id, and the dead-letter
list shows the kind and the masked number (:func:`describe_job`). A dead message cannot be
retried (its text is gone): :func:`refuse_retry` answers 409 ``sms.cannot_resend``.

The development outbox (``GET /dev/sms``) reads the sent rows still readable: with the ``log``
gateway the newest 50 sent messages keep their ciphertexts (older ones are wiped as new ones
are sent), whichever process sent them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.config import Settings, settings_of
from field_api.errors import Conflict
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from field_api.jobs.rules import clip_error
from field_api.privacy import mask_phone
from field_api.sms import gateways
from field_api.sms.crypto import cipher_for
from field_api.sms.models import SmsOutbox
from field_api.sms.rules import DEV_OUTBOX_SIZE, SmsState, SmsTemplate, render

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from field_api.jobs.service import ClaimedJob

logger = logging.getLogger(__name__)

JOB_KIND = "sms.send"
QUEUE = "sms"


class JobContext(Protocol):
    """What the handler needs of :class:`field_api.maintenance.JobContext`."""

    @property
    def session_factory(self) -> sessionmaker[Session]: ...

    @property
    def settings(self) -> Settings: ...


def enqueue_sms(
    session: Session,
    phone: str,
    template: SmsTemplate,
    params: dict[str, str],
    *,
    settings: Settings | None = None,
) -> SmsOutbox:
    """Queue one message to ``phone`` in the caller's transaction (flushes, never commits)."""
    settings = settings or settings_of(session)
    cipher = cipher_for(settings)
    row = SmsOutbox(
        template=template.value,
        phone_masked=mask_phone(phone),
        state=SmsState.pending.value,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    row.phone_ct = cipher.encrypt(row.id, "phone", phone)
    row.params_ct = cipher.encrypt(row.id, "params", json.dumps(params, ensure_ascii=False))
    row.job_id = jobs.enqueue(
        session,
        JOB_KIND,
        {"outbox_id": row.id},
        queue=QUEUE,
        max_attempts=settings.sms.max_attempts,
    )
    session.flush()
    return row


def _message(row: SmsOutbox, settings: Settings) -> gateways.SmsMessage | None:
    if row.phone_ct is None or row.params_ct is None:
        return None
    cipher = cipher_for(settings)
    template = SmsTemplate(row.template)
    params: dict[str, str] = json.loads(cipher.decrypt(row.id, "params", row.params_ct))
    return gateways.SmsMessage(
        phone=cipher.decrypt(row.id, "phone", row.phone_ct),
        template=template,
        params=params,
        text=render(template, params, sender=settings.contracts.sms_sender),
    )


def _wipe(row: SmsOutbox) -> None:
    row.phone_ct = None
    row.params_ct = None


def send_job(ctx: JobContext, job: ClaimedJob) -> bool:
    """The ``sms.send`` handler: send the row once; raise on a gateway failure (retried).

    Returns whether a message was sent now (False: already sent, dead or gone).
    """
    outbox_id = int(job.payload.get("outbox_id", 0))
    with ctx.session_factory.begin() as session:
        row = session.get(SmsOutbox, outbox_id)
        if row is None or row.state != SmsState.pending.value:
            return False  # sent by an earlier run whose job outcome was lost, or dead
        message = _message(row, ctx.settings)
    if message is None:
        return False
    gateway = gateways.gateway_for(ctx.settings)
    try:
        gateway.send(message)
    except Exception as exc:
        with ctx.session_factory.begin() as session:
            _record_error(session, outbox_id, f"{type(exc).__name__}: {exc}")
        raise
    with ctx.session_factory.begin() as session:
        mark_sent(session, outbox_id, keep=gateways.keeps_sent(gateway))
    return True


def _record_error(session: Session, outbox_id: int, error: str) -> None:
    session.execute(
        update(SmsOutbox)
        .where(SmsOutbox.id == outbox_id, SmsOutbox.state == SmsState.pending.value)
        .values(last_error=clip_error(error))
        .execution_options(synchronize_session=False)
    )


def mark_sent(session: Session, outbox_id: int, *, keep: bool) -> None:
    """Record a sent message; wipe it unless ``keep`` (the development outbox), and wipe the
    kept ones beyond the newest :data:`DEV_OUTBOX_SIZE`."""
    row = session.get(SmsOutbox, outbox_id, populate_existing=True)
    if row is None or row.state != SmsState.pending.value:
        return
    row.state = SmsState.sent.value
    row.sent_at = clock.now()
    row.last_error = None
    if not keep:
        _wipe(row)
    session.flush()
    kept = (
        select(SmsOutbox.id)
        .where(SmsOutbox.state == SmsState.sent.value, SmsOutbox.phone_ct.is_not(None))
        .order_by(SmsOutbox.sent_at.desc(), SmsOutbox.id.desc())
        .offset(DEV_OUTBOX_SIZE)
    )
    old = [int(i) for i in session.execute(kept).scalars()]
    if old:
        session.execute(
            update(SmsOutbox)
            .where(SmsOutbox.id.in_(old))
            .values(phone_ct=None, params_ct=None)
            .execution_options(synchronize_session=False)
        )


def _row_of(session: Session, job: Job) -> SmsOutbox | None:
    outbox_id = (job.payload or {}).get("outbox_id")
    if not isinstance(outbox_id, int):
        return None
    return session.get(SmsOutbox, outbox_id)


def on_dead(session: Session, job: Job) -> None:
    """The job gave up (in the transaction that buries it): wipe the message, mark it dead."""
    row = _row_of(session, job)
    if row is None or row.state != SmsState.pending.value:
        return
    row.state = SmsState.dead.value
    row.last_error = job.last_error
    _wipe(row)
    logger.warning("SMS %s to %s is dead: %s", row.id, row.phone_masked, job.last_error)


def refuse_retry(session: Session, job: Job) -> None:
    """A dead SMS cannot be sent again: its number and text were wiped (409)."""
    row = _row_of(session, job)
    raise Conflict(
        f"job {job.id} was a text message; it was wiped when it died and cannot be re-sent",
        code="sms.cannot_resend",
        params={
            "id": job.id,
            "phone": row.phone_masked if row is not None else "",
            "template": row.template if row is not None else "",
        },
    )


def describe_job(session: Session, job: Job) -> str | None:
    """What the dead-letter list shows of an SMS job: its kind and the masked number."""
    row = _row_of(session, job)
    if row is None:
        return None
    return f"SMS {row.template} to {row.phone_masked}"


@dataclass(frozen=True)
class SentSms:
    """One message of the development outbox: the phone masked, the text whole."""

    sent_at: datetime
    phone: str
    template: str
    text: str


def dev_outbox(
    session: Session, settings: Settings, *, limit: int = DEV_OUTBOX_SIZE
) -> list[SentSms]:
    """The sent messages still readable (log gateway, development), newest first."""
    rows = session.execute(
        select(SmsOutbox)
        .where(SmsOutbox.state == SmsState.sent.value, SmsOutbox.params_ct.is_not(None))
        .order_by(SmsOutbox.sent_at.desc(), SmsOutbox.id.desc())
        .limit(limit)
    ).scalars()
    found: list[SentSms] = []
    for row in rows:
        message = _message(row, settings)
        if message is not None and row.sent_at is not None:
            found.append(SentSms(row.sent_at, row.phone_masked, row.template, message.text))
    return found


def latest_params(
    session: Session, settings: Settings, phone: str, template: SmsTemplate
) -> dict[str, str] | None:
    """The parameters of the newest still-readable ``template`` message to ``phone`` (sent or
    not): the demo plays the customer reading their phone with it. None when there is none."""
    rows = session.execute(
        select(SmsOutbox)
        .where(
            SmsOutbox.template == template.value,
            SmsOutbox.phone_masked == mask_phone(phone),
            SmsOutbox.params_ct.is_not(None),
        )
        .order_by(SmsOutbox.id.desc())
        .limit(20)
    ).scalars()
    for row in rows:
        message = _message(row, settings)
        if message is not None and message.phone == phone:
            return dict(message.params)
    return None


def counts(session: Session) -> dict[str, Any]:
    """How many outbox rows are in each state."""
    from sqlalchemy import func

    rows = session.execute(select(SmsOutbox.state, func.count()).group_by(SmsOutbox.state)).all()
    return {str(state): int(n) for state, n in rows}
