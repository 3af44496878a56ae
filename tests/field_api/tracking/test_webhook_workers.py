"""Webhooks sent by real worker processes (``python -m fieldops.cli worker --queues webhooks``)
to three receivers on 127.0.0.1 — a healthy one, one failing its first requests with 500 and
one trickling its answers a byte a second, longer than the attempt deadline — on SQLite and
PostgreSQL, with a worker killed (SIGKILL) while it is sending to the trickler:

- every receiver gets each order's events in sequence order (never a later before an earlier);
- the healthy receiver gets every event less than a second after its commit (the bound of
  order 16: one subscriber's slowness never delays another's), and none twice, although the
  trickler and the failing receiver are being retried all along;
- nothing is lost: every receiver ends with every event.

Waits poll with bounded deadlines; nothing sleeps for timing.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from field_api.db import make_engine, make_session_factory
from field_api.jobs.models import Job
from field_api.jobs.service import periodic_key
from field_api.leases.models import Lease
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery
from field_api.tracking.rules import EventType
from field_api.tracking.sender import LANE_KIND
from tests.builders import make_order
from tests.worker_processes import WorkerProcesses, wait_for, worker_processes

from .receivers import Log, answering, trickling

DEADLINE_S = 120.0
ORDERS = 3
HEALTHY_BOUND_S = 1.0  # issue 20: no delay of the healthy subscriber beyond a second


def _wait_for(what: str, condition: Callable[[], bool], *, timeout_s: float = DEADLINE_S) -> None:
    wait_for(what, condition, timeout_s=timeout_s, poll_s=0.02)


def _workers(url: str, tmp: Path) -> AbstractContextManager[WorkerProcesses]:
    """Workers on the ``webhooks`` queue with short lease, retry and deadline settings."""
    env = {
        "FIELDOPS_JOBS_POLL_S": "0.05",
        "FIELDOPS_JOBS_LEASE_S": "10",
        "FIELDOPS_JOBS_WEBHOOK_EVERY_S": "0.5",
        "FIELDOPS_WEBHOOK_ATTEMPT_DEADLINE_S": "1.5",
        "FIELDOPS_WEBHOOK_POLL_S": "0.05",
        "FIELDOPS_WEBHOOK_RETRY_BASE_S": "0.2",
        "FIELDOPS_WEBHOOK_RETRY_MAX_S": "0.5",
        "FIELDOPS_WEBHOOK_MAX_ATTEMPTS": "50",
    }
    return worker_processes(url, tmp, queues="webhooks", env=env)


def _enqueue(factory: sessionmaker[Session], order_id: int, n: int) -> tuple[str, float]:
    """One event in its own transaction; its id and when its commit returned."""
    with factory.begin() as session:
        body = {"order": {"id": order_id}, "n": n}
        rows = tracking.enqueue(session, EventType.stage_changed, body, order_id=order_id)
        event_id = rows[0].event_id
    return event_id, time.monotonic()


def _statuses(factory: sessionmaker[Session], sub_id: int | None = None) -> list[str]:
    query = select(WebhookDelivery.status)
    if sub_id is not None:
        query = query.where(WebhookDelivery.subscription_id == sub_id)
    with factory() as session:
        return list(session.execute(query).scalars())


def _first_run_done(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        finished = session.execute(
            select(Job.finished_at).where(Job.dedupe_key == periodic_key("webhooks.send"))
        ).scalar_one_or_none()
        return finished is not None


def _lane_owner(factory: sessionmaker[Session], sub_id: int) -> int | None:
    """The pid of the process holding the subscription's lane, if any."""
    with factory() as session:
        lease = session.get(Lease, (LANE_KIND, str(sub_id)))
        return None if lease is None else int(lease.owner.split("/")[1])


def _in_sequence(log: Log) -> dict[int, list[int]]:
    """Each order's sequence numbers in the order they arrived (retries included)."""
    seen: dict[int, list[int]] = defaultdict(list)
    for arrival in log.snapshot():
        body = arrival.body
        seen[int(body["order"]["id"])].append(int(body["sequence"]))
    return seen


def test_three_receivers_in_order_the_healthy_one_on_time_and_nothing_twice_after_a_kill(
    committed_url: str, tmp_path: Path
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    committed: dict[str, float] = {}
    with (
        answering() as healthy,
        answering(fail_first=4) as failing,
        trickling(every_s=1.0, trickles=3) as slow,
        _workers(committed_url, tmp_path) as workers,
    ):
        with factory.begin() as session:
            subs = {
                name: tracking.create_subscription(
                    session, name=name, url=log.url, events=[EventType.stage_changed],
                    actor=None, allow_http=True,
                ).id
                for name, log in (("healthy", healthy), ("failing", failing), ("slow", slow))
            }  # fmt: skip
            order_ids = [make_order(session).id for _ in range(ORDERS)]
        first, second = workers.start(), workers.start()
        _wait_for("the webhook job's first run (the workers are warm)",
                  lambda: _first_run_done(factory))  # fmt: skip

        def enqueue_round(n: int) -> None:
            # Paced like real changes: the next event once the healthy receiver has this one
            # (a lane sends one event at a time, so a burst of N events to one subscriber takes
            # N sends; the bound is about other subscribers never holding it back).
            for order_id in order_ids:
                event_id, at = _enqueue(factory, order_id, n)
                committed[event_id] = at
                _wait_for("the healthy receiver to get it",
                          lambda e=event_id: e in healthy.event_ids())  # fmt: skip

        for n in (1, 2):
            enqueue_round(n)
        _wait_for(
            "the healthy receiver to have every event recorded, the trickler mid-answer",
            lambda: set(_statuses(factory, subs["healthy"])) == {"delivered"}
            and slow.in_flight.is_set(),
        )
        holder = _lane_owner(factory, subs["slow"])
        victim = next(p for p in (first, second) if p.pid == holder)
        survivor = second if victim is first else first
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        _wait_for("the survivor to take the trickler's lane over",
                  lambda: _lane_owner(factory, subs["slow"]) == survivor.pid)  # fmt: skip
        for n in (3, 4):
            enqueue_round(n)
        _wait_for("every event delivered to every receiver",
                  lambda: set(_statuses(factory)) == {"delivered"})  # fmt: skip
        assert survivor.poll() is None

    every = set(committed)
    for log in (healthy, failing, slow):
        assert set(log.event_ids()) == every  # nothing lost
        for order_id, sequence in _in_sequence(log).items():
            assert sequence == sorted(sequence), (log.url, order_id, sequence)
            assert sorted(set(sequence)) == [1, 2, 3, 4]
    arrivals = healthy.snapshot()
    assert len(arrivals) == len(every)  # no duplicate, before or after the kill
    delays = {a.event_id: a.at - committed[a.event_id] for a in arrivals}
    assert max(delays.values()) < HEALTHY_BOUND_S, sorted(delays.values())
    assert slow.cut_short >= 1  # the trickler was cut off (deadline or kill) at least once
    assert len(failing.arrivals) >= len(every) + 4  # its failures were retried
    engine.dispose()
