"""The webhook outbox with real commits: a sender stopped mid-queue loses nothing, failures
are retried with backoff, a dead sender's claim expires. Deliveries go to a real HTTP
receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.db import make_engine, make_session_factory
from field_api.tracking import sender
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery, WebhookSubscription
from field_api.tracking.rules import EventType, RetryPolicy, verify
from field_api.work_orders import service as orders
from field_api.work_orders.rules import FLOW
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import Receiver


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


def _seed(url: str, receiver: Receiver, events: int) -> tuple[Engine, int]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        sub = tracking.create_subscription(
            session,
            name="crm",
            url=receiver.url,
            events=[EventType.stage_changed],
            actor=None,
            allow_http=True,
        )
        order = make_order(session)
        for stage in FLOW[1 : events + 1]:
            orders.transition(session, order, stage, actor=None)
        sub_id = sub.id
    return engine, sub_id


def _rows(factory: sessionmaker[Session]) -> list[WebhookDelivery]:
    with factory() as session:
        return list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def _secret(factory: sessionmaker[Session], sub_id: int) -> str:
    with factory() as session:
        sub = session.get(WebhookSubscription, sub_id)
        assert sub is not None
        return sub.secret


def test_sender_stopped_mid_queue_resumes_after_restart_without_loss(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine, sub_id = _seed(committed_url, receiver, events=5)
    now = clock.now() + timedelta(minutes=1)
    receiver.stop_after = 2
    first = sender.send_pending(
        make_session_factory(engine), client=http, clock=lambda: now, stop=receiver.stop
    )
    assert (first.delivered, first.failed) == (2, 0)
    engine.dispose()  # the sender process is gone; only what was committed survives

    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    assert [r.status for r in _rows(factory)] == ["delivered"] * 2 + ["pending"] * 3
    second = sender.send_pending(factory, client=http, clock=lambda: now)
    assert second.delivered == 3
    rows = _rows(factory)
    assert [r.status for r in rows] == ["delivered"] * 5
    received_ids = [r.headers["X-Fieldops-Event-Id"] for r in receiver.requests]
    assert received_ids == [r.event_id for r in rows]
    secret = _secret(factory, sub_id)
    for request in receiver.requests:
        assert verify(
            secret,
            request.headers["X-Fieldops-Signature"],
            request.body,
            now=int(now.timestamp()),
        )
        assert json.loads(request.body)["event"] == "stage_changed"
    assert [json.loads(r.body)["to_stage"] for r in receiver.requests] == [
        s.value for s in FLOW[1:6]
    ]
    engine.dispose()


def test_failed_delivery_is_retried_with_backoff(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine, _ = _seed(committed_url, receiver, events=1)
    factory = make_session_factory(engine)
    t0 = clock.now() + timedelta(minutes=1)
    receiver.script = [500]
    policy = RetryPolicy(base_s=30, cap_s=600, max_attempts=3)
    report = sender.send_pending(factory, client=http, clock=lambda: t0, policy=policy)
    assert (report.delivered, report.failed) == (0, 1)
    (row,) = _rows(factory)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert row.next_attempt_at == t0 + timedelta(seconds=30)
    too_soon = sender.send_pending(
        factory, client=http, clock=lambda: t0 + timedelta(seconds=10), policy=policy
    )
    assert too_soon.attempted == 0
    later = sender.send_pending(
        factory, client=http, clock=lambda: t0 + timedelta(seconds=31), policy=policy
    )
    assert later.delivered == 1
    ids = {r.headers["X-Fieldops-Event-Id"] for r in receiver.requests}
    assert len(receiver.requests) == 2
    assert len(ids) == 1
    engine.dispose()


def test_delivery_gives_up_after_max_attempts(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine, _ = _seed(committed_url, receiver, events=1)
    factory = make_session_factory(engine)
    receiver.script = [503, 503]
    policy = RetryPolicy(base_s=1, cap_s=1, max_attempts=2)
    t0 = clock.now() + timedelta(minutes=1)
    sender.send_pending(factory, client=http, clock=lambda: t0, policy=policy)
    report = sender.send_pending(
        factory, client=http, clock=lambda: t0 + timedelta(seconds=5), policy=policy
    )
    assert report.dead == 1
    assert [r.status for r in _rows(factory)] == ["dead"]
    engine.dispose()


def test_claim_of_a_killed_sender_expires_and_the_event_is_sent_again(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine, _ = _seed(committed_url, receiver, events=1)
    factory = make_session_factory(engine)
    t0: datetime = clock.now() + timedelta(minutes=1)
    job = sender._claim(factory, now=t0, lease_s=60)
    assert job is not None  # claimed, then the process died before recording anything
    during = sender.send_pending(factory, client=http, clock=lambda: t0 + timedelta(seconds=30))
    assert during.attempted == 0
    after = sender.send_pending(factory, client=http, clock=lambda: t0 + timedelta(seconds=61))
    assert after.delivered == 1
    assert receiver.requests[0].headers["X-Fieldops-Event-Id"] == job.event_id
    engine.dispose()


def test_rows_of_a_deactivated_subscriber_are_not_sent(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine, sub_id = _seed(committed_url, receiver, events=2)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        tracking.deactivate_subscription(session, sub_id, actor=None)
    report = sender.send_pending(factory, client=http, clock=lambda: clock.now())
    assert report.attempted == 0
    assert [r.status for r in _rows(factory)] == ["dead", "dead"]
    assert receiver.requests == []
    engine.dispose()
