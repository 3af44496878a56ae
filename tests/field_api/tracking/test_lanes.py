"""Webhook lanes with real commits and real receivers on 127.0.0.1: an attempt ends at its
deadline however slowly the receiver trickles, one subscriber's slowness does not hold another
back, an order's events go out in sequence (a later one waits while an earlier one retries and
proceeds once it is dead), dead letters are re-sent, secrets rotate with an overlap."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit.models import AuditEvent
from field_api.db import make_engine, make_session_factory
from field_api.errors import Conflict, NotFound
from field_api.leases import service as leases
from field_api.tracking import sender
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery, WebhookSubscription
from field_api.tracking.rules import EventType, RetryPolicy, verify
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import RecordingNotifier
from .receivers import answering, trickling


def _wait_for(what: str, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll with a bounded deadline (not a timing assumption)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _subscribe(session: Session, url: str, name: str = "crm") -> int:
    sub = tracking.create_subscription(
        session, name=name, url=url, events=list(EventType), actor=None, allow_http=True
    )
    session.flush()
    return sub.id


def _event(session: Session, order_id: int | None, n: int = 0) -> str:
    rows = tracking.enqueue(session, EventType.stage_changed, {"n": n}, order_id=order_id)
    return rows[0].event_id


def _rows(factory: sessionmaker[Session]) -> list[WebhookDelivery]:
    with factory() as session:
        return list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())


def _options(now: Callable[[], datetime], **kw: Any) -> sender.SendOptions:
    return sender.SendOptions(clock=now, **{"deadline_s": 5.0, **kw})


def test_a_trickling_receiver_cannot_stretch_an_attempt_nor_hold_back_another_subscriber(
    committed_url: str, clock: ChinaClock
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with trickling(every_s=0.5) as slow, answering() as fast:
        with factory.begin() as session:
            _subscribe(session, slow.url, "slow")
            _subscribe(session, fast.url, "fast")
            order = make_order(session)
            _event(session, order.id)
        # the answer is 60 bytes at 2 a second (30 s); the deadline is 1 s
        report = sender.send_pending(factory, _options(clock.now, deadline_s=1.0))
        assert (report.delivered, report.failed) == (1, 1)
        _wait_for("the trickler to see the hang-up", lambda: slow.cut_short == 1)
        (slow_row,) = [r for r in _rows(factory) if r.status == "pending"]
        assert slow_row.last_error is not None and "1 s deadline" in slow_row.last_error
        assert len(fast.arrivals) == 1 and len(slow.arrivals) == 1
        # the healthy subscriber was served before the slow one's attempt was cut off
        assert fast.arrivals[0].at < slow.cut_at[0]
    engine.dispose()


def test_an_orders_later_event_waits_while_an_earlier_one_retries(
    committed_url: str, clock: ChinaClock
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    policy = RetryPolicy(base_s=30, cap_s=30, max_attempts=5)
    with answering(fail_first=1) as receiver:
        with factory.begin() as session:
            _subscribe(session, receiver.url)
            a, b = make_order(session), make_order(session)
            a1, a2 = _event(session, a.id, 1), _event(session, a.id, 2)
            b1 = _event(session, b.id, 1)
            no_order = _event(session, None)
        t0 = clock.now()
        first = sender.send_pending(factory, _options(lambda: t0, policy=policy))
        # a1 failed (500) and retries in 30 s; a2 waits for it; b's and the order-less go out
        assert (first.delivered, first.failed) == (2, 1)
        assert receiver.event_ids() == [a1, b1, no_order]
        later = sender.send_pending(
            factory, _options(lambda: t0 + timedelta(seconds=31), policy=policy)
        )
        assert later.delivered == 2
        assert receiver.event_ids() == [a1, b1, no_order, a1, a2]
        bodies = {a.event_id: a.body for a in receiver.snapshot()}
        assert [bodies[e]["sequence"] for e in (a1, a2, b1)] == [1, 2, 1]
        assert bodies[no_order]["sequence"] is None
    engine.dispose()


def test_once_an_earlier_event_is_dead_the_later_ones_proceed_and_it_can_be_resent(
    committed_url: str, clock: ChinaClock
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    policy = RetryPolicy(base_s=30, cap_s=30, max_attempts=1)
    with answering(fail_first=1) as receiver:
        with factory.begin() as session:
            _subscribe(session, receiver.url)
            order = make_order(session)
            first, second = _event(session, order.id, 1), _event(session, order.id, 2)
        report = sender.send_pending(factory, _options(clock.now, policy=policy))
        assert (report.dead, report.delivered) == (1, 1)
        assert receiver.event_ids() == [first, second]  # the receiver sees sequence 2 only
        dead = next(r for r in _rows(factory) if r.status == "dead")
        delivered = next(r for r in _rows(factory) if r.status == "delivered")
        with factory.begin() as session:
            with pytest.raises(NotFound):
                tracking.resend_dead(session, dead.id + 1000, actor=None)
            with pytest.raises(Conflict, match="not dead"):
                tracking.resend_dead(session, delivered.id, actor=None)
            row = tracking.resend_dead(session, dead.id, actor=None)
            assert (row.status, row.attempts) == ("pending", 0)
            details = session.execute(
                select(AuditEvent.detail).where(AuditEvent.action == "webhook_delivery.resend")
            ).scalars()
            assert list(details) == [f"delivery {dead.id} (event {first})"]
        again = sender.send_pending(factory, _options(clock.now, policy=policy))
        assert again.delivered == 1
        assert receiver.event_ids() == [first, second, first]  # the same event id again
        assert receiver.snapshot()[2].body["sequence"] == 1
    engine.dispose()


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    committed_url: str, clock: ChinaClock
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with answering() as receiver:
        with factory.begin() as session:
            sub_id = _subscribe(session, receiver.url)
            old = session.get_one(WebhookSubscription, sub_id).secret
            new = tracking.rotate_secret(session, sub_id, actor=None, overlap_s=3600).secret
            assert new != old
            _event(session, make_order(session).id)
        sender.send_pending(factory, _options(clock.now))
        sent_during = int(clock.now().timestamp())
        clock.advance(seconds=3601)
        with factory.begin() as session:
            _event(session, make_order(session).id)
        sender.send_pending(factory, _options(clock.now))
        during, after = receiver.snapshot()
        raw = [tracking_body(a) for a in (during, after)]
        header = during.headers["X-Fieldops-Signature"]
        assert header.count("v1=") == 2
        now = sent_during
        assert verify(new, header, raw[0], now=now) and verify(old, header, raw[0], now=now)
        header = after.headers["X-Fieldops-Signature"]
        assert header.count("v1=") == 1
        now = int(clock.now().timestamp())
        assert verify(new, header, raw[1], now=now) and not verify(old, header, raw[1], now=now)
        with factory() as session:  # the old secret is forgotten, not kept
            sub = session.get_one(WebhookSubscription, sub_id)
            assert sub.previous_secret is None and sub.previous_secret_expires_at is None
    engine.dispose()


def tracking_body(arrival: Any) -> bytes:
    """The exact bytes signed: the sender's canonical encoding of the body received."""
    return sender.encode(arrival.body)


def test_a_lane_held_by_a_live_sender_is_left_alone(
    committed_url: str, clock: ChinaClock, sms: RecordingNotifier
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with answering() as receiver:
        with factory.begin() as session:
            sub_id = _subscribe(session, receiver.url)
            _event(session, make_order(session).id)
            # another sender of this very process (alive) holds the lane
            assert leases.claim(
                session, sender.LANE_KIND, str(sub_id), ttl_s=60, owner=leases.owner_id("other")
            )
        assert sender.send_pending(factory, _options(clock.now)).attempted == 0
        assert receiver.event_ids() == []
    engine.dispose()
