"""The webhook outbox is drained by the job workers: an event wakes the periodic
``webhooks.send`` job in the transaction that writes it, so a worker delivers it at once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api import workers
from field_api.config import Settings
from field_api.db import make_engine, make_session_factory
from field_api.jobs.models import Job
from field_api.jobs.service import periodic_key
from field_api.jobs.worker import Worker
from field_api.maintenance import JobContext
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery
from field_api.tracking.rules import EventType
from field_api.wiring import job_handlers, periodic_jobs
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import FLOW
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import Receiver


def _worker(factory: sessionmaker[Session], settings: Settings, queue: str) -> Worker[JobContext]:
    config = workers.config_of(settings, periodic_jobs(settings), queues=[queue])
    return workers.make_worker(factory, settings, config, job_handlers())


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        audit_checkpoint_dir=tmp_path / "cp",
    )


def _subscribe(session: Session, receiver: Receiver) -> None:
    """The receiver subscribed to stage changes (plain http: it listens on loopback)."""
    tracking.create_subscription(
        session,
        name="crm",
        url=receiver.url,
        events=[EventType.stage_changed],
        actor=None,
        allow_http=True,
    )


def _statuses(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.execute(select(WebhookDelivery.status)).scalars())


def test_a_worker_delivers_the_outbox_as_soon_as_an_event_is_written(
    committed_url: str, tmp_path: Path, receiver: Receiver, clock: ChinaClock
) -> None:
    settings = _settings(committed_url, tmp_path)
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    worker = _worker(factory, settings, "webhooks")
    worker.schedule()
    assert worker.run_until_idle() == 1  # the webhook job's first run: nothing to send
    with factory() as session:
        job = session.execute(
            select(Job).where(Job.dedupe_key == periodic_key("webhooks.send"))
        ).scalar_one()
        assert job.state == "pending" and job.run_after > clock()  # due again in 5 s
    assert worker.run_until_idle() == 0

    with factory.begin() as session:
        _subscribe(session, receiver)
        order = make_order(session)
        for stage in FLOW[1:3]:
            orders.transition(session, order, stage, actor=None)
    assert _statuses(factory) == ["pending", "pending"]
    assert worker.run_until_idle() == 1  # woken by the events: no need to wait for the period
    assert _statuses(factory) == ["delivered", "delivered"]
    assert len(receiver.requests) == 2
    engine.dispose()


def test_a_rolled_back_event_neither_wakes_nor_sends(
    committed_url: str, tmp_path: Path, receiver: Receiver, clock: ChinaClock
) -> None:
    settings = _settings(committed_url, tmp_path)
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    worker = _worker(factory, settings, "webhooks")
    with factory.begin() as session:
        _subscribe(session, receiver)
        order_id = make_order(session).id
    worker.schedule()
    worker.run_until_idle()
    with factory() as session:
        order = session.get(WorkOrder, order_id)
        assert order is not None
        orders.transition(session, order, FLOW[1], actor=None)
        session.rollback()
    assert worker.run_until_idle() == 0
    assert _statuses(factory) == [] and receiver.requests == []
    engine.dispose()
