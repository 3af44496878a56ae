"""The service's maintenance: the jobs that put things right after a crash and keep tables small.

The job workers (:mod:`field_api.workers`) run these functions as periodic jobs. A server
process without a worker thread (``FIELDOPS_WORKER_IN_PROCESS=false``, as in production) still
runs them in a background thread (started and stopped by the application's lifespan): once at
start-up — so a server restarted after ``kill -9`` resumes its predecessor's work at once — and
then every ``maintenance_interval_s`` seconds (``Settings.maintenance_every_s``; 0 turns the
runner off, as tests' settings do).

The jobs are listed explicitly in :func:`jobs`, in the order they run. Each exclusive job runs
under its own lease ``(job name, "all")``: one process at a time runs it, and the lease's
expiry is also when the job is due again, so several server processes (uvicorn workers, a
``fieldops worker``) run each job about once per period between them. A holder that
dies leaves a lease that a process of the same host takes over at once (another host's after
the expiry). The analysis job is not exclusive: it claims each pending item under its own
``media.analyse`` lease, so any number of processes share the backlog.

Job functions take a :class:`JobContext` and return how much they did; tests call them one by
one, or :func:`run_job` / :func:`run_pass`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from field_api.common import clock
from field_api.common.storage import store_of
from field_api.config import MediaSettings, Settings
from field_api.leases import service as leases
from field_api.media import service as media

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

JOB_KEY = "all"
DEFAULT_PERIOD_S = 60.0


@dataclass(frozen=True)
class JobContext:
    """What a job needs: the database, the settings, and whether the runner is stopping."""

    session_factory: sessionmaker[Session]
    settings: Settings
    media: MediaSettings
    stopping: Callable[[], bool] = field(default=lambda: False)

    @classmethod
    def of(
        cls,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        media_cfg: MediaSettings | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> JobContext:
        return cls(
            session_factory=session_factory,
            settings=settings,
            media=media_cfg or settings.media,
            stopping=stopping or (lambda: False),
        )


@dataclass(frozen=True)
class Job:
    """A maintenance job; ``name`` is also the kind of its lease."""

    name: str
    run: Callable[[JobContext], int]
    exclusive: bool = True  # False: the job claims its own items (no job-wide lease)
    ttl_s: float = 600.0  # the job-wide lease while it runs


# -- the jobs -----------------------------------------------------------------------------------


def resume_analysis(ctx: JobContext) -> int:
    """Analyse photos still pending (acknowledged before a crash, or left by a failed try)."""
    return media.process_pending(
        ctx.session_factory, settings=ctx.settings, cfg=ctx.media, should_stop=ctx.stopping
    )


def sweep_temp(ctx: JobContext) -> int:
    """Remove temporary files of crashed uploads (dead local processes' at once)."""
    return store_of(ctx.settings).sweep_temp().removed


def expire_uploads(ctx: JobContext) -> int:
    """Drop resumable (tus) uploads left unfinished past their expiry, with their bytes."""
    with ctx.session_factory.begin() as session:
        return media.expire_uploads(session, settings=ctx.settings, cfg=ctx.media)


def sweep_uploads(ctx: JobContext) -> int:
    """Drop upload bytes no open upload row stands for (part files, or the bucket's multipart
    uploads and spools), once untouched for an hour."""
    with ctx.session_factory.begin() as session:
        return media.sweep_stale_uploads(session, settings=ctx.settings)


def sweep_orphans(ctx: JobContext) -> int:
    """Delete stored objects no row references, once older than the storage grace."""
    from field_api.storage_sweep import sweep_orphans as sweep

    with ctx.session_factory.begin() as session:
        return sweep(
            session,
            store_of(ctx.settings),
            grace_hours=ctx.settings.storage.orphan_grace_hours,
        ).deleted


def purge_idempotency(ctx: JobContext) -> int:
    """Delete stored Idempotency-Key answers past their TTL."""
    from field_api.idempotency import service as idempotency

    with ctx.session_factory.begin() as session:
        return idempotency.purge_expired(session)


def purge_leases(ctx: JobContext) -> int:
    """Delete leases long expired (claims of crashed processes nobody took over)."""
    with ctx.session_factory.begin() as session:
        return leases.purge_expired(session)


def audit_checkpoint(ctx: JobContext) -> int:
    """Sign the audit chain's head into the checkpoint folder when it moved and is due."""
    from field_api.audit.checkpoints import write_due

    return int(write_due(ctx.session_factory, ctx.settings) is not None)


def jobs(settings: Settings, *, analyse: bool | None = None) -> list[Job]:
    """The maintenance jobs, in the order they run.

    ``analyse``: include the analysis of pending photos (default: when photos are analysed in
    the API process, ``FIELDOPS_MEDIA_ANALYSE_IN_PROCESS``; otherwise a job worker does it).
    """
    if analyse is None:
        analyse = settings.media.analyse_in_process
    found: list[Job] = []
    if analyse:
        found.append(Job("media.analyse_pending", resume_analysis, exclusive=False))
    found += [
        Job("media.sweep_temp", sweep_temp),
        Job("media.expire_uploads", expire_uploads),
        Job("media.sweep_uploads", sweep_uploads),
        Job("storage.sweep_orphans", sweep_orphans),
        Job("idempotency.purge", purge_idempotency),
        Job("leases.purge", purge_leases),
        # write_due takes its own ("audit.checkpoint", "head") lease: no job-wide one
        Job("audit.checkpoint", audit_checkpoint, exclusive=False),
    ]
    return found


# -- running them ---------------------------------------------------------------------------------


def job_owner(tag: str = "maintenance") -> str:
    """An owner id for one runner (stable for its lifetime, distinct from other runners)."""
    return leases.owner_id(f"{tag}-{secrets.token_hex(4)}")


def _take(job: Job, ctx: JobContext, owner: str) -> bool:
    """Claim the job's lease: free, or ours and due (our own lease's expiry is the due time)."""
    with ctx.session_factory.begin() as session:
        held = leases.holder(session, job.name, JOB_KEY)
        if held is not None and held.owner == owner and held.expires_at > clock.now():
            return False  # we ran it less than a period ago
        return leases.claim(session, job.name, JOB_KEY, ttl_s=job.ttl_s, owner=owner)


def _hold_until_due(job: Job, ctx: JobContext, owner: str, *, period_s: float) -> None:
    """Done: keep the lease for one period, so other processes leave the job until then."""
    with ctx.session_factory.begin() as session:
        if period_s > 0:
            leases.renew(session, job.name, JOB_KEY, ttl_s=period_s, owner=owner)
        else:
            leases.release(session, job.name, JOB_KEY, owner=owner)


def _release(job: Job, ctx: JobContext, owner: str) -> None:
    try:
        with ctx.session_factory.begin() as session:
            leases.release(session, job.name, JOB_KEY, owner=owner)
    except Exception:  # the lease expires on its own
        log.exception("releasing the lease of maintenance job %s failed", job.name)


def run_job(
    job: Job, ctx: JobContext, *, owner: str | None = None, period_s: float = DEFAULT_PERIOD_S
) -> int | None:
    """Run one job under its lease; None when it was not due or another process holds it.

    A job that fails is logged and its lease released (another process, or the next pass,
    tries again); the failure does not stop the other jobs.
    """
    owner = owner or job_owner()
    if not job.exclusive:
        try:
            return job.run(ctx)
        except Exception:
            log.exception("maintenance job %s failed", job.name)
            return None
    try:
        if not _take(job, ctx, owner):
            return None
    except Exception:
        log.exception("claiming maintenance job %s failed", job.name)
        return None
    try:
        done = job.run(ctx)
    except Exception:
        log.exception("maintenance job %s failed", job.name)
        _release(job, ctx, owner)
        return None
    try:
        _hold_until_due(job, ctx, owner, period_s=period_s)
    except Exception:
        log.exception("keeping the lease of maintenance job %s failed", job.name)
    return done


def run_pass(
    ctx: JobContext,
    job_list: list[Job] | None = None,
    *,
    owner: str | None = None,
    period_s: float = DEFAULT_PERIOD_S,
) -> dict[str, int | None]:
    """Run every job once, in order; returns each job's count (None: skipped)."""
    owner = owner or job_owner()
    results: dict[str, int | None] = {}
    for job in job_list if job_list is not None else jobs(ctx.settings):
        if ctx.stopping():
            break
        done = run_job(job, ctx, owner=owner, period_s=period_s)
        results[job.name] = done
        if done:
            log.info("maintenance: %s did %d", job.name, done)
    return results


class MaintenanceRunner:
    """Runs :func:`run_pass` at start and then every ``every_s`` seconds in a daemon thread."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        every_s: float,
        job_list: list[Job] | None = None,
    ) -> None:
        if every_s <= 0:
            raise ValueError("a maintenance runner needs a positive period")
        self.every_s = every_s
        self.owner = job_owner()
        self._stop = threading.Event()
        self.ctx = JobContext.of(session_factory, settings, stopping=self._stop.is_set)
        self.job_list = job_list if job_list is not None else jobs(settings)
        self.passes = 0
        self.first_pass_done = threading.Event()
        self.last: dict[str, int | None] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the maintenance runner is already started")
        self._thread = threading.Thread(target=self._loop, name="fieldops-maintenance", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = run_pass(
                    self.ctx, self.job_list, owner=self.owner, period_s=self.every_s
                )
            except Exception:  # never let the thread die: the next pass tries again
                log.exception("maintenance pass failed")
            self.passes += 1
            self.first_pass_done.set()
            self._stop.wait(self.every_s)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop after its current job and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the maintenance thread did not stop within %.0f s", timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def start_runner(
    session_factory: sessionmaker[Session], settings: Settings
) -> MaintenanceRunner | None:
    """Start the runner when ``settings.maintenance_every_s`` is positive."""
    every_s = settings.maintenance_every_s
    if every_s <= 0:
        return None
    runner = MaintenanceRunner(session_factory, settings, every_s=every_s)
    runner.start()
    return runner


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The application's lifespan: the runner lives as long as the server process serves."""
    from starlette.concurrency import run_in_threadpool

    runner = start_runner(app.state.session_factory, app.state.settings)
    app.state.maintenance = runner
    try:
        yield
    finally:
        if runner is not None:
            await run_in_threadpool(runner.stop)
