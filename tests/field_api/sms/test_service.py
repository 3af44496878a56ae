"""The SMS outbox on both databases: queued in the caller's transaction, sent once through the
gateway (the fake one on loopback, signature checked), retried with backoff, dead at the end
with its message wiped, shown masked in the dead-letter list, and never re-sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from field_api import keyfiles
from field_api.common.actors import Role
from field_api.config import Settings, SmsSettings
from field_api.db import make_engine, make_session_factory
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from field_api.jobs.service import ClaimedJob
from field_api.keyfiles import KeyFileError
from field_api.main import create_app
from field_api.maintenance import JobContext
from field_api.sms import gateways
from field_api.sms import service as sms
from field_api.sms.crypto import SmsCipherError, cipher_for
from field_api.sms.fake_gateway import FakeSmsGateway
from field_api.sms.models import SmsOutbox
from field_api.sms.rules import DEV_OUTBOX_SIZE, SmsTemplate
from field_api.workers import purge_jobs
from tests.builders import auth, make_user
from tests.clocks import ChinaClock
from tests.sms_support import RecordingGateway, deliver, production_sms, recording_gateway

PHONE = "13812345678"
PARAMS = {"contract_no": "HT-9", "code": "482913", "minutes": "5"}


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    previous = gateways.install(None)  # the configured (http) gateway, not a test override
    with FakeSmsGateway() as gateway:
        yield gateway
    gateways.install(previous)


def _http(settings: Settings, fake: FakeSmsGateway, tmp_path: Path, **jobs: float) -> Settings:
    values = {k.removeprefix("FIELDOPS_SMS_").lower(): v for k, v in fake.environment().items()}
    cfg = SmsSettings(**values, max_attempts=3, key_path=tmp_path / "sms.key")  # type: ignore[arg-type]
    return settings.model_copy(
        update={"sms": cfg, "jobs": settings.jobs.model_copy(update=jobs)}
    )


def test_a_rolled_back_message_is_never_sent(
    committed_url: str, settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    try:
        with recording_gateway() as gateway:
            with factory() as session:
                sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
                session.rollback()
            assert deliver(factory, settings) == 0
            assert gateway.messages == []
            with factory.begin() as session:
                sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
            assert deliver(factory, settings) == 1
            assert [m.params["code"] for m in gateway.messages] == ["482913"]
        with factory() as session:
            assert session.execute(select(func.count()).select_from(SmsOutbox)).scalar() == 1
    finally:
        engine.dispose()


def test_the_fake_gateway_gets_the_signed_message_and_the_row_is_wiped(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    fake: FakeSmsGateway,
    tmp_path: Path,
) -> None:
    settings = _http(settings, fake, tmp_path)
    row = sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
    assert row.phone_ct is not None and PHONE.encode() not in row.phone_ct
    assert row.params_ct is not None and b"482913" not in row.params_ct
    job = session.get(Job, row.job_id)
    assert job is not None and job.payload == {"outbox_id": row.id} and job.queue == "sms"
    assert deliver(session_factory, settings) == 1
    assert fake.bad_signatures == 0
    assert fake.messages() == [
        {"phone": PHONE, "template": "SMS_0001", "params": PARAMS, "sign_name": "供电服务"}
    ]
    session.refresh(row)
    assert row.state == "sent" and row.sent_at is not None
    assert row.phone_ct is None and row.params_ct is None  # an operator gateway: wiped
    assert row.phone_masked == "*******5678"


def test_a_message_already_sent_is_not_sent_again(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    sms_inbox: object,
) -> None:
    row = sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
    assert row.job_id is not None
    ctx = JobContext.of(session_factory, settings)
    job = ClaimedJob(row.job_id, "sms", sms.JOB_KIND, {"outbox_id": row.id}, 1, 3)
    assert sms.send_job(ctx, job) is True
    # the worker died before recording the job done: another runs it again
    assert sms.send_job(ctx, job) is False
    gateway = gateways.gateway_for(settings)
    assert isinstance(gateway, RecordingGateway) and len(gateway.messages) == 1


def test_a_failing_gateway_retries_with_backoff_then_the_message_is_dead_and_wiped(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    fake: FakeSmsGateway,
    tmp_path: Path,
    server_clock: ChinaClock,
) -> None:
    settings = _http(settings, fake, tmp_path, backoff_base_s=10.0, backoff_factor=2.0)
    row = sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
    job_id = row.job_id
    fake.fail_next(100, status=503)
    assert deliver(session_factory, settings) == 1  # attempt 1 fails
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.state == "pending" and job.attempts == 1
    assert deliver(session_factory, settings) == 0  # not due before its backoff
    server_clock.advance(seconds=9)
    assert deliver(session_factory, settings) == 0
    server_clock.advance(seconds=1)
    assert deliver(session_factory, settings) == 1  # attempt 2, after 10 s
    server_clock.advance(seconds=19)
    assert deliver(session_factory, settings) == 0
    server_clock.advance(seconds=1)
    assert deliver(session_factory, settings) == 1  # attempt 3 (the last), after 20 s more
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None and job.state == "dead" and "HTTP 503" in (job.last_error or "")
    session.refresh(row)
    assert row.state == "dead" and row.phone_ct is None and row.params_ct is None
    assert fake.messages() == [] and fake.requests == 3


def test_the_dead_list_shows_an_sms_masked_and_its_retry_is_refused(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TestClient,
    sms_inbox: object,
) -> None:
    settings = settings.model_copy(
        update={"sms": settings.sms.model_copy(update={"max_attempts": 1})}
    )
    _, admin = make_user(session, settings, role=Role.admin)
    row = sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
    gateway = gateways.gateway_for(settings)
    assert isinstance(gateway, RecordingGateway)
    gateway.fail = True
    assert deliver(session_factory, settings) == 1
    session.commit()
    dead = client.get("/jobs/dead", headers=auth(admin))
    assert dead.status_code == 200, dead.text
    [item] = [i for i in dead.json()["items"] if i["id"] == row.job_id]
    assert item["kind"] == "sms.send" and item["subject"] == "SMS otp to *******5678"
    assert PHONE not in dead.text and "482913" not in dead.text and "HT-9" not in dead.text
    retried = client.post(f"/jobs/{row.job_id}/retry", headers=auth(admin))
    assert retried.status_code == 409, retried.text
    assert retried.json()["code"] == "sms.cannot_resend"
    assert "*******5678" in retried.json()["detail"] and PHONE not in retried.text
    zh = client.post(
        f"/jobs/{row.job_id}/retry", headers=auth(admin) | {"Accept-Language": "zh-CN"}
    )
    assert "无法重发" in zh.json()["detail"]
    job = session.get(Job, row.job_id, populate_existing=True)
    assert job is not None and job.state == "dead"


def test_the_log_gateway_keeps_the_newest_50_for_the_dev_outbox(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    previous = gateways.install(None)  # the configured gateway: log (development)
    try:
        for n in range(DEV_OUTBOX_SIZE + 2):
            params = PARAMS | {"code": f"{100000 + n}"}
            sms.enqueue_sms(session, PHONE, SmsTemplate.otp, params, settings=settings)
        assert deliver(session_factory, settings) == DEV_OUTBOX_SIZE + 2
    finally:
        gateways.install(previous)
    shown = sms.dev_outbox(session, settings)
    assert len(shown) == DEV_OUTBOX_SIZE
    assert "验证码：100051" in shown[0].text and shown[0].phone == "*******5678"
    rows = session.execute(select(SmsOutbox).order_by(SmsOutbox.id)).scalars().all()
    session.expire_all()
    assert [r.phone_ct is None for r in rows[:2]] == [True, True]  # older ones wiped
    assert all(r.params_ct is not None for r in rows[2:])


def test_a_ciphertext_belongs_to_its_row_and_field(settings: Settings) -> None:
    cipher = cipher_for(settings)
    sealed = cipher.encrypt(7, "phone", PHONE)
    assert cipher.decrypt(7, "phone", sealed) == PHONE
    for row_id, field in ((8, "phone"), (7, "params")):
        with pytest.raises(SmsCipherError):
            cipher.decrypt(row_id, field, sealed)
    assert json.dumps(repr(cipher)).find(PHONE) == -1


def test_production_refuses_to_start_without_the_sms_key(tmp_path: Path) -> None:
    cfg = production_sms(tmp_path).model_copy(update={"key_path": tmp_path / "missing.key"})
    # the audit keys are provisioned: the SMS key is the one missing
    keyfiles.load_secret(tmp_path / "chain.key", create_if_missing=True, what="audit key")
    keyfiles.load_ed25519(tmp_path / "cp.key", create_if_missing=True, what="checkpoint key")
    production = Settings(
        audit_key_path=tmp_path / "chain.key",
        audit_checkpoint_key_path=tmp_path / "cp.key",
        signing_key_path=tmp_path / "signing.key",
        env="production",
        token_pepper="p" * 32,
        public_base_url="https://connect.example.com",
        database_url=f"sqlite:///{tmp_path}/prod.db",
        sms=cfg,
    )
    with pytest.raises(KeyFileError, match="SMS key"):
        create_app(production)
    assert not (tmp_path / "missing.key").exists()


def test_a_worker_lost_on_the_last_attempt_still_wipes_the_message(
    session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    # The worker dies mid-send on the last try: the next claim buries the job, and the SMS
    # slice's on-dead hook wipes the message in that same transaction.
    one_try = settings.model_copy(
        update={"sms": settings.sms.model_copy(update={"max_attempts": 1})}
    )
    row = sms.enqueue_sms(session, PHONE, SmsTemplate.visit, PARAMS, settings=one_try)
    assert jobs.claim(session, queues=["sms"], owner="host/1/a", lease_s=60)
    server_clock.advance(seconds=61)
    assert jobs.claim(session, queues=["sms"], owner="host/2/b", lease_s=60) == []
    session.refresh(row)
    assert row.state == "dead" and row.phone_ct is None and row.params_ct is None
    assert "lost" in (row.last_error or "")


def test_the_job_purge_deletes_old_sent_messages_and_keeps_dead_ones(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    sms_inbox: object,
    server_clock: ChinaClock,
) -> None:
    sent = sms.enqueue_sms(session, PHONE, SmsTemplate.otp, PARAMS, settings=settings)
    assert deliver(session_factory, settings) == 1
    dead = sms.enqueue_sms(session, PHONE, SmsTemplate.visit, PARAMS, settings=settings)
    dead.state = "dead"
    session.flush()
    sent_id, dead_id = sent.id, dead.id
    server_clock.advance(seconds=settings.jobs.keep_done_s + 1)
    assert purge_jobs(JobContext.of(session_factory, settings)) >= 2  # the job and the message
    session.expire_all()
    assert session.get(SmsOutbox, sent_id) is None
    assert session.get(SmsOutbox, dead_id) is not None
