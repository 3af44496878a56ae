"""Planned-outage notices through real ``fieldops worker`` processes, on SQLite and PostgreSQL:
every affected account gets one message; after the worker is killed (SIGKILL) and a fresh one
starts, and even when the notice jobs run again (a lost job outcome), nothing goes twice."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings
from field_api.db import make_engine, make_session_factory
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from field_api.network.models import Transformer
from field_api.reliability import notices, planning, register
from field_api.reliability.models import OutageNotice
from field_api.reliability.planning_schemas import PlannedOutageApprove, PlannedOutageCreate
from field_api.sms.models import SmsOutbox
from tests.builders import make_user
from tests.worker_processes import wait_for, worker_processes

DEADLINE_S = 90.0
SECTIONS = "switch_code,feeder,district,transformer_code\nSW-W,F-W,D-W,TX-W\n"
CUSTOMERS = (
    "account_no,name,phone,supply_point,supply_kind,transformer_code,switch_code,area,"
    "connected_on\n"
    + "".join(f"W-{n},用户{n},1380013{n:04d},SP-{n},lv,TX-W,SW-W,urban,2020-01-01\n"
              for n in range(6))
)


def _principal(session: Session, settings: Settings, role: Role) -> Principal:
    user, _ = make_user(session, settings, role=role)
    return Principal(user_id=user.id, name=user.name, role=role)


def _approved(factory: sessionmaker[Session], settings: Settings) -> int:
    """Six accounts below SW-W; a one-hour outage in two days (6 customer-hours, within the
    proposed 6 x 2.38 x 0.5), approved: its notices are due now."""
    with factory.begin() as session:
        admin = _principal(session, settings, Role.admin)
        session.add(Transformer(code="TX-W", name="TX-W", rated_kva=400, base_load_kva=100,
                                lon=113.9, lat=22.5))
        session.flush()
        register.import_sections(session, SECTIONS.encode(), filename="s.csv", actor=admin)
        register.import_customers(session, CUSTOMERS.encode(), filename="c.csv", actor=admin)
        start = clock.now() + timedelta(days=2)
        made = planning.request_outage(session, settings, PlannedOutageCreate(
            work="更换开关", switch_code="SW-W", start_at=start,
            end_at=start + timedelta(hours=1)), _principal(session, settings, Role.dispatcher))
        planning.approve(session, settings, made.id, PlannedOutageApprove(),
                         _principal(session, settings, Role.planner))
        return made.id


def _counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """(notices sent, outbox rows, outbox rows sent)."""
    with factory() as session:
        sent = session.scalar(select(func.count()).select_from(OutageNotice)
                              .where(OutageNotice.state == "sent"))
        rows = session.scalar(select(func.count()).select_from(SmsOutbox))
        delivered = session.scalar(select(func.count()).select_from(SmsOutbox)
                                   .where(SmsOutbox.state == "sent"))
        return int(sent or 0), int(rows or 0), int(delivered or 0)


def _jobs_done(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        states = set(session.scalars(select(Job.state).where(Job.period_s.is_(None))))
        return states <= {"done"}


def test_notices_survive_a_killed_worker_and_a_rerun_without_duplicates(
    committed_url: str, tmp_path: Path
) -> None:
    settings = Settings(env="test", database_url=committed_url, media_dir=tmp_path / "media",
                        token_pepper="test-pepper-0123456789",
                        signing_key_path=tmp_path / "keys" / "signing.key")
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    env = {"FIELDOPS_JOBS_LEASE_S": "2", "FIELDOPS_JOBS_POLL_S": "0.05"}
    try:
        _approved(factory, settings)
        with worker_processes(committed_url, tmp_path, queues="default,sms", env=env) as workers:
            first = workers.start()
            wait_for("every notice sent", lambda: _counts(factory) == (6, 6, 6),
                     timeout_s=DEADLINE_S)
            first.send_signal(signal.SIGKILL)
            first.wait()
            with factory.begin() as session:  # the jobs' outcomes lost: they run once more
                notice_ids = session.scalars(select(OutageNotice.id)).all()
                for notice_id in notice_ids:
                    jobs.enqueue(session, notices.JOB_KIND, {"notice_id": notice_id})
            workers.start()
            wait_for("the rerun jobs done", lambda: _jobs_done(factory), timeout_s=DEADLINE_S)
        assert _counts(factory) == (6, 6, 6)  # nothing sent twice
        with factory() as session:
            phones = session.scalars(select(SmsOutbox.phone_masked)).all()
        assert len(set(phones)) == 6
    finally:
        engine.dispose()
