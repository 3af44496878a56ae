"""The job queue: outbox enqueue, leased claims, backoff, the dead-letter list and its retry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.errors import Conflict, NotFound
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from field_api.jobs.rules import Backoff, JobState
from field_api.jobs.worker import Periodic, Worker, WorkerConfig
from field_api.leases import service as leases
from tests.builders import auth, make_user
from tests.clocks import ChinaClock

A = leases.owner_id("test-a")
B = leases.owner_id("test-b")
LEASE_S = 60.0


def _count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Job)).scalar_one())


def test_a_rolled_back_transaction_enqueues_nothing_and_a_commit_does(
    session_factory: sessionmaker[Session],
) -> None:
    def failing_request() -> None:
        with session_factory.begin() as session:
            jobs.enqueue(session, "test.effect", {"n": 1})
            raise RuntimeError("the request failed after enqueueing")

    with pytest.raises(RuntimeError):
        failing_request()
    with session_factory() as session:
        assert _count(session) == 0
    with session_factory.begin() as session:
        job_id = jobs.enqueue(session, "test.effect", {"n": 2}, queue="q")
    with session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.state == "pending" and job.payload == {"n": 2}
        assert job.queue == "q" and job.attempts == 0


def test_a_claim_is_exclusive_until_its_lease_expires(
    session: Session, server_clock: ChinaClock
) -> None:
    job_id = jobs.enqueue(session, "test.effect", {})
    first = jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
    assert [j.id for j in first] == [job_id] and first[0].attempts == 1
    assert session.get(Job, job_id).state == "running"  # type: ignore[union-attr]
    assert jobs.claim(session, queues=None, owner=B, lease_s=LEASE_S) == []

    server_clock.advance(seconds=LEASE_S + 1)  # A stalled past its lease: B takes the job over
    second = jobs.claim(session, queues=None, owner=B, lease_s=LEASE_S)
    assert [j.id for j in second] == [job_id] and second[0].attempts == 2
    assert jobs.complete(session, job_id, owner=A) is False  # A's late result is not recorded
    assert session.get(Job, job_id).state == "running"  # type: ignore[union-attr]
    assert jobs.complete(session, job_id, owner=B) is True
    job = session.get(Job, job_id)
    assert job is not None and job.state == "done" and job.finished_at is not None
    assert jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S) == []


def test_claims_take_only_the_queues_asked_for_and_due_jobs(
    session: Session, server_clock: ChinaClock
) -> None:
    media = jobs.enqueue(session, "test.effect", queue="media")
    later = jobs.enqueue(session, "test.effect", queue="webhooks", delay_s=30)
    assert jobs.claim(session, queues=["webhooks"], owner=A, lease_s=LEASE_S) == []
    server_clock.advance(seconds=31)
    assert [j.id for j in jobs.claim(session, queues=["webhooks"], owner=A, lease_s=9)] == [later]
    assert [j.id for j in jobs.claim(session, queues=None, owner=B, lease_s=9)] == [media]


def test_failures_back_off_exponentially_then_the_job_is_dead_and_can_be_retried(
    session: Session, server_clock: ChinaClock
) -> None:
    backoff = Backoff(base_s=10, factor=3, max_s=1000)
    job_id = jobs.enqueue(session, "test.effect", max_attempts=3)
    for attempt, delay in ((1, 10), (2, 30)):
        [claimed] = jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
        assert claimed.attempts == attempt
        assert jobs.fail(session, job_id, "boom", owner=A, backoff=backoff) is JobState.pending
        server_clock.advance(seconds=delay - 1)
        assert jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S) == []
        server_clock.advance(seconds=1)
    jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
    assert jobs.fail(session, job_id, "boom 3\nline two", owner=A) is JobState.dead

    dead, total = jobs.list_dead(session)
    assert total == 1 and dead[0].id == job_id and dead[0].last_error == "boom 3 line two"
    server_clock.advance(seconds=10_000)
    assert jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S) == []  # dead stays dead

    jobs.retry(session, job_id)
    [again] = jobs.claim(session, queues=None, owner=B, lease_s=LEASE_S)
    assert again.id == job_id and again.attempts == 1
    with pytest.raises(Conflict):
        jobs.retry(session, job_id)  # running, not dead
    with pytest.raises(NotFound):
        jobs.retry(session, job_id + 1000)


def test_backoff_is_capped() -> None:
    backoff = Backoff(base_s=5, factor=2, max_s=60)
    assert [backoff.delay_s(n) for n in (1, 2, 3, 4, 5, 6)] == [5, 10, 20, 40, 60, 60]
    assert backoff.delay_s(10_000) == 60


def test_a_dedupe_key_keeps_one_unfinished_job(session: Session, server_clock: ChinaClock) -> None:
    first = jobs.enqueue(session, "test.effect", dedupe_key="order-7", delay_s=60)
    again = jobs.enqueue(session, "test.effect", dedupe_key="order-7")
    assert again == first and _count(session) == 1
    assert session.get(Job, first).run_after <= server_clock()  # type: ignore[union-attr]
    jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
    assert jobs.enqueue(session, "test.effect", dedupe_key="order-7") == first  # still running
    jobs.complete(session, first, owner=A)
    assert jobs.enqueue(session, "test.effect", dedupe_key="order-7") != first  # done: a new one


def test_a_worker_that_vanished_on_the_last_attempt_leaves_a_dead_job(
    session: Session, server_clock: ChinaClock
) -> None:
    job_id = jobs.enqueue(session, "test.effect", max_attempts=1)
    jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
    server_clock.advance(seconds=LEASE_S + 1)
    assert jobs.claim(session, queues=None, owner=B, lease_s=LEASE_S) == []
    job = session.get(Job, job_id)
    assert job is not None and job.state == "dead" and "lost" in (job.last_error or "")


def _worker(
    factory: sessionmaker[Session], handlers: dict[str, Any], **config: Any
) -> Worker[list[str]]:
    return Worker(factory, handlers, [], WorkerConfig(**config))


def test_the_worker_runs_handlers_and_retries_failures(
    session_factory: sessionmaker[Session], server_clock: ChinaClock
) -> None:
    calls: list[str] = []

    def ok(ctx: list[str], job: jobs.ClaimedJob) -> None:
        calls.append(f"ok {job.payload['n']}")

    def flaky(ctx: list[str], job: jobs.ClaimedJob) -> None:
        calls.append(f"flaky {job.attempts}")
        if job.attempts < 2:
            raise ValueError("not yet")

    with session_factory.begin() as session:
        jobs.enqueue(session, "ok", {"n": 1})
        flaky_id = jobs.enqueue(session, "flaky")
        lost_id = jobs.enqueue(session, "unknown.kind", max_attempts=1)
    worker = _worker(session_factory, {"ok": ok, "flaky": flaky}, backoff=Backoff(base_s=5))
    assert worker.run_until_idle() == 3
    assert calls == ["ok 1", "flaky 1"]
    server_clock.advance(seconds=5)
    assert worker.run_until_idle() == 1
    assert calls == ["ok 1", "flaky 1", "flaky 2"]
    with session_factory() as session:
        assert session.get(Job, flaky_id).state == "done"  # type: ignore[union-attr]
        lost = session.get(Job, lost_id)
        assert lost is not None and lost.state == "dead"
        assert "no handler" in (lost.last_error or "")


def test_a_periodic_job_exists_once_and_comes_back_one_period_later(
    session_factory: sessionmaker[Session], server_clock: ChinaClock
) -> None:
    ran: list[int] = []
    periodic = [Periodic("tick", period_s=30, queue="maintenance")]
    handlers = {"tick": lambda ctx, job: ran.append(job.id)}
    worker = _worker(session_factory, handlers, periodic=periodic)
    other = _worker(session_factory, handlers, periodic=periodic)
    worker.schedule()
    other.schedule()
    assert worker.run_until_idle() == 1 and other.run_until_idle() == 0
    other.schedule()  # a worker starting later leaves the next run where it is
    assert other.run_until_idle() == 0
    server_clock.advance(seconds=29)
    assert other.run_until_idle() == 0
    server_clock.advance(seconds=1)
    assert other.run_until_idle() == 1
    assert len(ran) == 2 and len(set(ran)) == 1  # one row, reused
    only_media = _worker(session_factory, handlers, periodic=periodic, queues=["media"])
    server_clock.advance(seconds=30)
    assert only_media.run_until_idle() == 0


def test_dead_jobs_endpoints(
    client: TestClient, session: Session, settings: Settings, server_clock: ChinaClock
) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    _, planner = make_user(session, settings, role=Role.planner)
    dead_id = jobs.enqueue(session, "webhooks.send", {"secret": "x"}, max_attempts=1)
    pending_id = jobs.enqueue(session, "webhooks.send", delay_s=3600)
    jobs.claim(session, queues=None, owner=A, lease_s=LEASE_S)
    jobs.fail(session, dead_id, "ConnectError", owner=A)
    session.commit()

    assert client.get("/jobs/dead", headers=auth(planner)).status_code == 403
    r = client.get("/jobs/dead", headers=auth(admin))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 1 and page["items"][0]["id"] == dead_id
    assert page["items"][0]["last_error"] == "ConnectError" and "payload" not in page["items"][0]

    r = client.post(f"/jobs/{pending_id}/retry", headers=auth(admin))
    assert r.status_code == 409 and r.json()["code"] == "jobs.not_dead"
    assert client.post("/jobs/999999/retry", headers=auth(admin)).status_code == 404
    assert client.post(f"/jobs/{dead_id}/retry", headers=auth(planner)).status_code == 403
    r = client.post(f"/jobs/{dead_id}/retry", headers=auth(admin))
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    assert client.get("/jobs/dead", headers=auth(admin)).json()["total"] == 0
