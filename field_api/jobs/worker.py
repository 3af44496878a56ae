"""Running jobs: worker threads that claim, run and finish jobs, and the periodic schedule.

A :class:`Worker` runs ``concurrency`` threads, each claiming one job at a time from its
queues under its own lease owner, renewing the lease while the handler runs (a heartbeat every
third of the lease), and recording the outcome: done, or failed (retried after a backoff, dead
after the last attempt). Handlers are looked up by the job's ``kind`` in the mapping given (the
service's is built in :mod:`field_api.wiring`, by name); they must be idempotent: a job whose
worker died is run again by another.

Periodic work (purges, sweeps, the webhook outbox) is a job with a ``period_s``: one row per
kind (its dedupe key), which a finished run puts back in the queue one period later. Every
worker makes sure each periodic job exists when it starts (:meth:`Worker.schedule`).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from field_api.common import clock
from field_api.jobs import service
from field_api.jobs.rules import Backoff
from field_api.leases import service as leases

log = logging.getLogger(__name__)

C = TypeVar("C")
Handler = Callable[[C, service.ClaimedJob], object]


@dataclass(frozen=True)
class Periodic:
    """A job kind run about once every ``period_s`` seconds by whichever worker is free."""

    kind: str
    period_s: float
    queue: str = service.DEFAULT_QUEUE

    @property
    def dedupe_key(self) -> str:
        return service.periodic_key(self.kind)


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker runs (``FIELDOPS_JOBS_*`` settings, command-line options)."""

    queues: Sequence[str] | None = None  # None: every queue
    concurrency: int = 1
    lease_s: float = 300.0
    poll_s: float = 1.0
    backoff: Backoff = field(default_factory=Backoff)
    periodic: Sequence[Periodic] = ()
    tag: str = "worker"


class Worker(Generic[C]):
    """Claims and runs jobs with ``handlers`` (by kind); ``ctx`` is passed to each handler."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        handlers: Mapping[str, Handler[C]],
        ctx: C,
        config: WorkerConfig,
        *,
        stop_event: threading.Event | None = None,
    ) -> None:
        if config.concurrency < 1:
            raise ValueError("a worker needs at least one thread")
        self.factory = session_factory
        self.handlers = dict(handlers)
        self.ctx = ctx
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.ran = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        token = secrets.token_hex(4)
        self.owners = [
            leases.owner_id(f"{config.tag}-{token}-{i}") for i in range(config.concurrency)
        ]

    def _wanted(self, periodic: Periodic) -> bool:
        queues = self.config.queues
        return queues is None or periodic.queue in queues

    def schedule(self) -> None:
        """Make sure each periodic job of this worker's queues is in the queue."""
        with self.factory.begin() as session:
            for periodic in self.config.periodic:
                if self._wanted(periodic):
                    service.enqueue(
                        session,
                        periodic.kind,
                        queue=periodic.queue,
                        dedupe_key=periodic.dedupe_key,
                        period_s=periodic.period_s,
                        hasten=False,  # a periodic job keeps its due time
                    )

    def run_one(self, owner: str | None = None, *, due_by: datetime | None = None) -> bool:
        """Claim one due job and run it; False when none was due."""
        owner = owner or self.owners[0]
        with self.factory.begin() as session:
            claimed = service.claim(
                session,
                queues=self.config.queues,
                owner=owner,
                lease_s=self.config.lease_s,
                due_by=due_by,
            )
        if not claimed:
            return False
        self._run(claimed[0], owner)
        with self._lock:
            self.ran += 1
        return True

    def run_until_idle(self, *, limit: int | None = None) -> int:
        """Run the jobs due now one after another (or ``limit`` of them); returns how many ran.

        Jobs that become due meanwhile (a periodic job's next run) wait for the next call.
        """
        started = clock.now()
        done = 0
        while (limit is None or done < limit) and not self.stop_event.is_set():
            if not self.run_one(due_by=started):
                break
            done += 1
        return done

    def _run(self, job: service.ClaimedJob, owner: str) -> None:
        handler = self.handlers.get(job.kind)
        beat = _Heartbeat(self.factory, job.id, owner, self.config.lease_s)
        beat.start()
        error: str | None = None
        try:
            if handler is None:
                error = f"no handler for job kind {job.kind!r}"
            else:
                handler(self.ctx, job)
        except Exception as exc:  # any failure is an attempt to retry
            log.exception("job %s (%s) failed", job.id, job.kind)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            beat.stop()
        self._finish(job, owner, error)

    def _finish(self, job: service.ClaimedJob, owner: str, error: str | None) -> None:
        lease_s = self.config.lease_s
        with self.factory.begin() as session:
            if error is None:
                kept = service.complete(session, job.id, owner=owner, lease_s=lease_s)
            else:
                kept = (
                    service.fail(
                        session,
                        job.id,
                        error,
                        owner=owner,
                        backoff=self.config.backoff,
                        lease_s=lease_s,
                    )
                    is not None
                )
        if not kept:
            log.warning("job %s (%s): the claim was lost; another worker has it", job.id, job.kind)

    def _loop(self, owner: str) -> None:
        while not self.stop_event.is_set():
            try:
                busy = self.run_one(owner)
            except Exception:  # a busy database, a lost connection: try again shortly
                log.exception("claiming a job failed")
                busy = False
            if not busy:
                self.stop_event.wait(self.config.poll_s)

    def start(self) -> None:
        """Schedule the periodic jobs and start the threads (daemons)."""
        if self._threads:
            raise RuntimeError("the worker is already started")
        try:
            self.schedule()
        except Exception:
            log.exception("scheduling the periodic jobs failed")
        for i, owner in enumerate(self.owners):
            thread = threading.Thread(
                target=self._loop, args=(owner,), name=f"fieldops-worker-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Ask the threads to stop after their current job and wait for them."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("worker thread %s did not stop within %.0f s", thread.name, timeout_s)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)


class _Heartbeat:
    """Renews a job's lease every third of the lease while its handler runs."""

    def __init__(
        self, factory: sessionmaker[Session], job_id: int, owner: str, lease_s: float
    ) -> None:
        self.factory = factory
        self.job_id = job_id
        self.owner = owner
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="fieldops-job-heartbeat", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with self.factory.begin() as session:
                    if not service.renew(
                        session, self.job_id, owner=self.owner, lease_s=self.lease_s
                    ):
                        return
            except Exception:
                log.exception("renewing the lease of job %s failed", self.job_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
