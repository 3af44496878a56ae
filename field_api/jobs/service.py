"""The job queue: enqueue in the caller's transaction, claim under a lease, finish or retry.

Claims use order 10's leases (:mod:`field_api.leases.service`): the candidates are read
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and SQLite's write transaction serialises claimers.
A claim takes the ``jobs.run`` lease of the job's id and marks the row ``running``; a worker
that dies leaves the lease to expire (or to be taken over at once on its own host), after which
another worker claims the job again: delivery is at least once, so handlers are idempotent.
Finishing first renews the lease: a worker that lost it (it outlived the expiry and another
took the job) records nothing. Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.errors import Conflict, NotFound
from field_api.jobs.models import Job
from field_api.jobs.rules import UNFINISHED, Backoff, JobState, clip_error, gives_up
from field_api.leases import service as leases

LEASE_KIND = "jobs.run"
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job (plain values: the claim's session is closed)."""

    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class KindHooks:
    """How the slice that owns a job kind reacts to the queue's decisions, each in the
    transaction that makes them: ``on_dead`` when a job of the kind goes dead (wipe what the
    payload points to), ``before_retry`` before an admin's retry (raise a DomainError to refuse
    it), ``describe`` for the dead-letter list (a line with personal data masked)."""

    on_dead: Callable[[Session, Job], None] | None = None
    before_retry: Callable[[Session, Job], None] | None = None
    describe: Callable[[Session, Job], str | None] | None = None


_hooks: dict[str, KindHooks] = {}


def register_hooks(kind: str, hooks: KindHooks) -> None:
    """Set the hooks of job kind ``kind`` (idempotent; the slices' ``hooks.install`` call it,
    by name in :func:`field_api.wiring.install_hooks`)."""
    _hooks[kind] = hooks


def describe(session: Session, job: Job) -> str | None:
    """The dead-letter list's line about ``job`` (None when its kind says nothing)."""
    hooks = _hooks.get(job.kind)
    if hooks is None or hooks.describe is None:
        return None
    return hooks.describe(session, job)


def _insert_deduped(session: Session, values: dict[str, Any]) -> int | None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        found = session.execute(
            pg_insert(Job).values(**values).on_conflict_do_nothing().returning(Job.id)
        ).scalar_one_or_none()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        found = session.execute(
            sqlite_insert(Job).values(**values).on_conflict_do_nothing().returning(Job.id)
        ).scalar_one_or_none()
    return None if found is None else int(found)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    queue: str = DEFAULT_QUEUE,
    delay_s: float = 0.0,
    max_attempts: int = 8,
    dedupe_key: str | None = None,
    period_s: float | None = None,
    hasten: bool = True,
) -> int:
    """Add a job in the caller's transaction; returns its id.

    With ``dedupe_key``, a job with that key that is still unfinished is kept instead and its
    id returned (with ``hasten``, its ``run_after`` moved earlier when this one is due sooner).
    """
    run_after = clock.now() + timedelta(seconds=max(0.0, delay_s))
    values: dict[str, Any] = {
        "queue": queue,
        "kind": kind,
        "payload": payload or {},
        "state": JobState.pending.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after,
        "dedupe_key": dedupe_key,
        "period_s": period_s,
        "created_at": clock.now(),
    }
    if dedupe_key is None:
        job = Job(**values)
        session.add(job)
        session.flush()
        return job.id
    new_id = _insert_deduped(session, values)
    if new_id is not None:
        return new_id
    existing = session.execute(
        select(Job).where(Job.dedupe_key == dedupe_key).execution_options(populate_existing=True)
    ).scalar_one()
    if hasten and existing.state == JobState.pending.value and existing.run_after > run_after:
        existing.run_after = run_after
        session.flush()
    return existing.id


def periodic_key(kind: str) -> str:
    """The dedupe key of a periodic job's one row."""
    return f"periodic:{kind}"


def wake(session: Session, kind: str) -> None:
    """Make the periodic job ``kind`` due now, in the caller's transaction (new work for it:
    an outbox row, a photo to analyse). Nothing happens when no worker scheduled it yet: the
    first worker to start runs it at once.

    On PostgreSQL a row another transaction holds (a concurrent waker, a claim) is skipped
    rather than waited for, so busy requests never queue on the job's one row; at worst the
    job runs at its period.
    """
    now = clock.now()
    due_later = select(Job.id).where(
        Job.dedupe_key == periodic_key(kind),
        Job.state == JobState.pending.value,
        Job.run_after > now,
    )
    if session.get_bind().dialect.name == "postgresql":
        due_later = due_later.with_for_update(skip_locked=True)
    job_id = session.execute(due_later).scalar_one_or_none()
    if job_id is not None:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(run_after=now)
            .execution_options(synchronize_session=False)
        )


def _view(job: Job) -> ClaimedJob:
    return ClaimedJob(
        id=job.id,
        queue=job.queue,
        kind=job.kind,
        payload=dict(job.payload or {}),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
    )


def claim(
    session: Session,
    *,
    queues: Sequence[str] | None,
    owner: str,
    lease_s: float,
    limit: int = 1,
    due_by: datetime | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs of ``queues`` (None: every queue), oldest due first
    (with ``due_by``, only jobs due by then: a pass that must end skips later ones).

    A ``running`` job is a candidate too: its lease decides whether its worker still holds it.
    A job whose worker vanished after its last allowed attempt goes dead instead.
    """
    now = clock.now()
    candidates = (
        select(Job.id)
        .where(Job.state.in_(UNFINISHED), Job.run_after <= min(now, due_by or now))
        .order_by(Job.run_after, Job.id)
    )
    if queues is not None:
        candidates = candidates.where(Job.queue.in_(list(queues)))
    claimed: list[ClaimedJob] = []
    for key in leases.claim_from(
        session, LEASE_KIND, candidates, ttl_s=lease_s, limit=limit, owner=owner
    ):
        job = session.get(Job, int(key), populate_existing=True)
        if job is None or job.state not in UNFINISHED:
            leases.release(session, LEASE_KIND, key, owner=owner)
            continue
        if job.state == JobState.running.value and gives_up(job.attempts, job.max_attempts):
            _bury(session, job, "the worker running the last attempt was lost")
            leases.release(session, LEASE_KIND, key, owner=owner)
            continue
        job.state = JobState.running.value
        job.attempts += 1
        job.started_at = now
        claimed.append(_view(job))
    session.flush()
    return claimed


def _bury(session: Session, job: Job, error: str | None) -> None:
    job.state = JobState.dead.value
    job.last_error = clip_error(error)
    job.finished_at = clock.now()
    job.dedupe_key = None if job.period_s is None else job.dedupe_key
    if job.period_s is not None:  # a periodic job runs again next period all the same
        job.state = JobState.pending.value
        job.attempts = 0
        job.run_after = clock.now() + timedelta(seconds=job.period_s)
        return
    hooks = _hooks.get(job.kind)
    if hooks is not None and hooks.on_dead is not None:
        hooks.on_dead(session, job)


def _held_job(session: Session, job_id: int, owner: str, lease_s: float) -> Job | None:
    if not leases.renew(session, LEASE_KIND, str(job_id), ttl_s=lease_s, owner=owner):
        return None
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.state != JobState.running.value:
        return None
    return job


def complete(session: Session, job_id: int, *, owner: str, lease_s: float = 60.0) -> bool:
    """Mark a claimed job done (a periodic job: due again one period later); False when the
    claim was lost meanwhile (another worker took the job over): nothing is recorded."""
    job = _held_job(session, job_id, owner, lease_s)
    if job is None:
        return False
    now = clock.now()
    job.last_error = None
    job.finished_at = now
    if job.period_s is not None:
        job.state = JobState.pending.value
        job.attempts = 0
        job.run_after = now + timedelta(seconds=job.period_s)
    else:
        job.state = JobState.done.value
        job.dedupe_key = None
    leases.release(session, LEASE_KIND, str(job_id), owner=owner)
    session.flush()
    return True


def fail(
    session: Session,
    job_id: int,
    error: str,
    *,
    owner: str,
    backoff: Backoff | None = None,
    lease_s: float = 60.0,
) -> JobState | None:
    """Record a failed attempt: pending again after the backoff, or dead after the last
    attempt. None when the claim was lost meanwhile."""
    job = _held_job(session, job_id, owner, lease_s)
    if job is None:
        return None
    if gives_up(job.attempts, job.max_attempts):
        _bury(session, job, error)
    else:
        job.state = JobState.pending.value
        job.last_error = clip_error(error)
        delay = (backoff or Backoff()).delay_s(job.attempts)
        job.run_after = clock.now() + timedelta(seconds=delay)
    leases.release(session, LEASE_KIND, str(job_id), owner=owner)
    session.flush()
    return JobState(job.state)


def renew(session: Session, job_id: int, *, owner: str, lease_s: float) -> bool:
    """Extend the claim of a job still running (a heartbeat); False when it was lost."""
    return leases.renew(session, LEASE_KIND, str(job_id), ttl_s=lease_s, owner=owner)


def get(session: Session, job_id: int) -> Job:
    """One job; NotFound when there is none."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found", code="jobs.not_found", params={"id": job_id})
    return job


def list_dead(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
    """The dead-letter list, newest first, and its size."""
    where = Job.state == JobState.dead.value
    total = int(session.execute(select(func.count()).select_from(Job).where(where)).scalar_one())
    rows = session.execute(
        select(Job)
        .where(where)
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), total


def retry(session: Session, job_id: int) -> Job:
    """Put a dead job back in its queue, due now, with its attempts counted afresh."""
    job = get(session, job_id)
    if job.state != JobState.dead.value:
        raise Conflict(
            f"job {job_id} is {job.state}, not dead",
            code="jobs.not_dead",
            params={"id": job_id, "state": job.state},
        )
    hooks = _hooks.get(job.kind)
    if hooks is not None and hooks.before_retry is not None:
        hooks.before_retry(session, job)
    job.state = JobState.pending.value
    job.attempts = 0
    job.run_after = clock.now()
    job.finished_at = None
    session.flush()
    return job


def purge_finished(session: Session, *, older_than_s: float) -> int:
    """Delete done jobs finished more than ``older_than_s`` ago (dead ones stay for an admin)."""
    cutoff = clock.now() - timedelta(seconds=older_than_s)
    result = session.execute(
        delete(Job)
        .where(Job.state == JobState.done.value, Job.finished_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def counts(session: Session) -> dict[str, int]:
    """How many jobs are in each state."""
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {str(state): int(n) for state, n in rows}


__all__ = [
    "ClaimedJob",
    "KindHooks",
    "claim",
    "complete",
    "counts",
    "describe",
    "enqueue",
    "fail",
    "get",
    "list_dead",
    "purge_finished",
    "register_hooks",
    "renew",
    "retry",
    "wake",
]
