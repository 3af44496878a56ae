"""Contract use cases on a real database: generate, send the code, sign, verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.auth import service as auth_service
from field_api.common.actors import Role
from field_api.common.storage import remove_on_rollback, store_of
from field_api.config import ContractSettings, Settings
from field_api.contracts import service, signing
from field_api.contracts.models import ContractOtp, ContractStatus
from field_api.contracts.otp import OtpOutcome
from field_api.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    UnsupportedMedia,
    ValidationFailed,
)
from field_api.jobs.models import Job
from field_api.media.models import MediaItem
from field_api.media.rules import MediaKind
from field_api.schemes.models import SupplyScheme
from field_api.sms.models import SmsOutbox
from field_api.work_orders.models import StageTransition
from field_api.work_orders.rules import Stage
from tests.builders import make_crew, make_order, make_user
from tests.field_api.contracts.conftest import CrewAtScheme, RecordingNotifier
from tests.field_api.contracts.helpers import signature_png
from tests.field_api.visits.builders import make_scheme


def _send(
    session: Session, ctx: CrewAtScheme, settings: Settings, notifier: RecordingNotifier
) -> str:
    service.request_code(session, ctx.order.id, actor=ctx.actor, settings=settings)
    return notifier.last_code()


def test_generate_snapshots_the_order_and_scheme(
    session: Session, settings: Settings, at_scheme: CrewAtScheme
) -> None:
    contract = service.generate(
        session, at_scheme.order.id, actor=at_scheme.actor, settings=settings
    )
    assert contract.status == ContractStatus.draft
    assert contract.data["customer_name"] == "张三丰"
    assert contract.data["kit_code"] == "R1"
    assert contract.data["cable"] == "YJV-0.6/1kV 2×16 铜芯交联电缆（CAB-CU-2X16）"
    assert contract.data["supply_point"].startswith("NS-T-012 配电变压器")
    assert contract.data["route_length_m"] == "35.0"
    assert contract.contract_no.endswith(f"-{at_scheme.order.id:06d}-1")
    again = service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    assert again.id == contract.id
    assert again.revision == 1  # nothing changed: same document


def test_generate_needs_the_scheme_stage(session: Session, settings: Settings) -> None:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=token, settings=settings)
    order = make_order(session, crew=crew, stage=Stage.surveyed)
    with pytest.raises(InvalidTransition, match="scheme is answered"):
        service.generate(session, order.id, actor=actor, settings=settings)


def test_another_crew_cannot_generate(
    session: Session, settings: Settings, at_scheme: CrewAtScheme
) -> None:
    other = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=other)
    stranger = auth_service.authenticate(session, token=token, settings=settings)
    with pytest.raises(Forbidden):
        service.generate(session, at_scheme.order.id, actor=stranger, settings=settings)


def test_code_goes_to_the_customer_and_is_stored_hashed(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    code = _send(session, at_scheme, settings, notifier)
    assert notifier.sent[-1][0] == at_scheme.order.customer_phone
    row = session.execute(select(ContractOtp)).scalars().one()
    assert code not in row.code_hash
    assert row.sent_to == "*******8000"
    with pytest.raises(Conflict, match="moments ago"):
        _send(session, at_scheme, settings, notifier)


@pytest.mark.both_stores
def test_sign_with_the_code_signs_stores_and_moves_the_order(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    order_id = at_scheme.order.id
    service.generate(session, order_id, actor=at_scheme.actor, settings=settings)
    code = _send(session, at_scheme, settings, notifier)
    device_time = datetime(2026, 11, 27, 2, 4, 58, tzinfo=UTC)
    result = service.sign(
        session,
        order_id,
        actor=at_scheme.actor,
        settings=settings,
        code=code,
        signature_image=signature_png(),
        device_time=device_time,
        lat=22.5333,
        lon=113.9305,
        gps_accuracy_m=6.0,
    )
    assert not isinstance(result, service.OtpRejected)
    assert result.status == ContractStatus.signed
    assert at_scheme.order.stage == Stage.contract_signed
    last = (
        session.execute(select(StageTransition).order_by(StageTransition.id.desc()))
        .scalars()
        .first()
    )
    assert last is not None and last.to_stage == Stage.contract_signed
    assert last.device_lat == pytest.approx(22.5333)

    assert result.file_sha256 is not None
    data = store_of(settings).read_verified(result.file_sha256)
    verdict = service.verify_file(data, settings=settings)
    assert verdict.valid, verdict.detail
    record = verdict.record
    assert record is not None
    assert record["order_id"] == str(order_id)
    assert record["signer"] == "张**"
    assert record["signature_image_sha256"] == signing.sha256_hex(signature_png())
    assert record["device_time"] == "2026-11-27T02:04:58Z"
    assert record["gps"]["lat"] == "22.5333000"
    assert code not in str(record)
    # The drawn signature is evidence of the order too, stored once.
    (drawn,) = session.execute(select(MediaItem).where(MediaItem.order_id == order_id)).scalars()
    assert (drawn.kind, drawn.stage) == (MediaKind.signature, Stage.contract_signed)
    assert drawn.sha256 == result.signature_image_sha256
    assert store_of(settings).read_verified(drawn.sha256) == signature_png()

    # A retry after a lost response gives the same signed contract back.
    again = service.sign(
        session,
        order_id,
        actor=at_scheme.actor,
        settings=settings,
        code=code,
        signature_image=signature_png(),
    )
    assert not isinstance(again, service.OtpRejected)
    assert again.file_sha256 == result.file_sha256
    count = select(func.count()).select_from(MediaItem).where(MediaItem.order_id == order_id)
    assert session.scalar(count) == 1


def test_wrong_code_is_counted_and_refused(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    code = _send(session, at_scheme, settings, notifier)
    wrong = "000000" if code != "000000" else "111111"
    result = service.sign(
        session,
        at_scheme.order.id,
        actor=at_scheme.actor,
        settings=settings,
        code=wrong,
        signature_image=signature_png(),
    )
    assert isinstance(result, service.OtpRejected)
    assert result.outcome is OtpOutcome.wrong
    assert result.attempts_left == 4
    assert "4 attempt(s) left" in result.detail
    assert at_scheme.order.stage == Stage.scheme_answered


def test_expired_code_is_refused(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    code = _send(session, at_scheme, settings, notifier)
    row = session.execute(select(ContractOtp)).scalars().one()
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    result = service.sign(
        session,
        at_scheme.order.id,
        actor=at_scheme.actor,
        settings=settings,
        code=code,
        signature_image=signature_png(),
    )
    assert isinstance(result, service.OtpRejected)
    assert result.outcome is OtpOutcome.expired


def test_sign_without_a_code_sent_is_refused(
    session: Session, settings: Settings, at_scheme: CrewAtScheme
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    with pytest.raises(ValidationFailed, match="request one first"):
        service.sign(
            session,
            at_scheme.order.id,
            actor=at_scheme.actor,
            settings=settings,
            code="123456",
            signature_image=signature_png(),
        )


@pytest.mark.parametrize("image", [b"MZ\x90\x00executable", b"GIF89a...."])
def test_signature_must_be_png_or_jpeg(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, image: bytes
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    with pytest.raises(UnsupportedMedia):
        service.sign(
            session,
            at_scheme.order.id,
            actor=at_scheme.actor,
            settings=settings,
            code="123456",
            signature_image=image,
        )


def test_truncated_png_is_refused(
    session: Session, settings: Settings, at_scheme: CrewAtScheme
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    with pytest.raises(ValidationFailed, match="cannot be decoded"):
        service.sign(
            session,
            at_scheme.order.id,
            actor=at_scheme.actor,
            settings=settings,
            code="123456",
            signature_image=signature_png()[:60],
        )


def test_generate_needs_an_accepted_scheme(session: Session, settings: Settings) -> None:
    crew = make_crew(session)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    actor = auth_service.authenticate(session, token=token, settings=settings)
    order = make_order(session, crew=crew, stage=Stage.scheme_answered)
    with pytest.raises(InvalidTransition, match="no accepted supply scheme"):
        service.generate(session, order.id, actor=actor, settings=settings)


def test_a_new_scheme_regenerates_a_new_revision_and_voids_sent_codes(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    first = service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    old_code = _send(session, at_scheme, settings, notifier)
    for scheme in session.execute(select(SupplyScheme)).scalars():
        scheme.status = "superseded"
    make_scheme(session, at_scheme.order, kit_code="R2")
    again = service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    assert again.id == first.id
    assert again.revision == 2
    assert again.data["kit_code"] == "R2"
    assert again.contract_no.endswith("-2")
    # The code sent for revision 1 no longer signs anything.
    with pytest.raises(ValidationFailed, match="request one first"):
        service.sign(
            session,
            at_scheme.order.id,
            actor=at_scheme.actor,
            settings=settings,
            code=old_code,
            signature_image=signature_png(),
        )


def test_no_code_is_sent_for_a_signed_contract(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    code = _send(session, at_scheme, settings, notifier)
    service.sign(
        session,
        at_scheme.order.id,
        actor=at_scheme.actor,
        settings=settings,
        code=code,
        signature_image=signature_png(),
    )
    with pytest.raises(Conflict, match="already signed"):
        service.request_code(
            session,
            at_scheme.order.id,
            actor=at_scheme.actor,
            settings=settings,
        )
    with pytest.raises(Conflict, match="already signed"):
        service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)


@pytest.mark.both_stores
def test_a_stored_file_is_removed_when_the_transaction_rolls_back(
    session: Session, settings: Settings, at_scheme: CrewAtScheme
) -> None:
    # Inside a signing transaction that has written rows already.
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    store = store_of(settings)
    blob = store.put_bytes(b"%PDF-1.4 a contract that never got signed")
    remove_on_rollback(session, store, blob)
    assert store.exists(blob.sha256)
    session.rollback()
    assert not store.exists(blob.sha256)


def test_a_failing_gateway_leaves_the_code_queued_for_a_retry(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    # The code is queued with the answer: a gateway failure no longer loses it (nor is a 503);
    # its job retries after the backoff.
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    notifier.fail = True
    row = service.request_code(
        session, at_scheme.order.id, actor=at_scheme.actor, settings=settings
    )
    assert notifier.sent == []
    message = session.execute(select(SmsOutbox).where(SmsOutbox.template == "otp")).scalar_one()
    session.refresh(message)
    assert message.state == "pending" and message.last_error is not None
    assert message.phone_ct is not None and row.sent_to == message.phone_masked
    job = session.get(Job, message.job_id)
    assert job is not None and job.state == "pending" and job.attempts == 1


def test_codes_per_day_are_capped(
    session: Session, settings: Settings, at_scheme: CrewAtScheme, notifier: RecordingNotifier
) -> None:
    service.generate(session, at_scheme.order.id, actor=at_scheme.actor, settings=settings)
    cap = ContractSettings().otp_max_per_day
    for _ in range(cap):
        _send(session, at_scheme, settings, notifier)
        # Age the code past the resend interval (the clock is the server's: move the row).
        for row in session.execute(select(ContractOtp)).scalars():
            row.created_at = row.created_at - timedelta(minutes=1)
    with pytest.raises(Conflict, match="no more today"):
        _send(session, at_scheme, settings, notifier)
    notifier.deliver()
    assert len([m for m in notifier.gateway.messages if m.template == "otp"]) == cap
