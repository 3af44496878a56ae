"""The service's job workers: the handler of each job kind, the periodic work, a worker.

Handlers are registered by name in :func:`field_api.wiring.job_handlers` (no discovery); each
takes the :class:`~field_api.maintenance.JobContext` and the claimed job. The periodic work —
the pending photos' analysis pass, the webhook outbox, the housekeeping purges and sweeps — is
one job row per kind that a run puts back in its queue one period later
(:func:`field_api.wiring.periodic_jobs`). Queues: ``media`` (pixel work), ``webhooks``,
``sms`` (customer text messages, one job each), ``maintenance`` and ``default``.

A worker runs as ``fieldops worker [--queues a,b] [--concurrency N] [--once]`` on any host, or
as one thread of the API process in development (``FIELDOPS_WORKER_IN_PROCESS``; see
:func:`start_in_process`).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from field_api.common.heap import freeze_startup_heap
from field_api.config import Settings
from field_api.jobs.rules import Backoff
from field_api.jobs.worker import Handler, Periodic, Worker, WorkerConfig
from field_api.maintenance import JobContext

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

QUEUES = ("default", "media", "webhooks", "maintenance", "sms")


@dataclass(frozen=True)
class Wiring:
    """Where a worker finds its handlers and periodic jobs (:mod:`field_api.wiring`'s)."""

    handlers: Callable[[], Mapping[str, Handler[JobContext]]]
    periodic: Callable[[Settings], Sequence[Periodic]]


def send_webhooks(ctx: JobContext) -> int:
    """One pass of the webhook lanes (:func:`field_api.tracking.sender.send_pending`): each
    subscription with events due gets a thread of its own (``FIELDOPS_WEBHOOK_LANES``), and the
    pass keeps starting lanes for new events while any lane is busy."""
    from field_api.tracking import sender

    options = sender.SendOptions.of(ctx.settings, stopping=ctx.stopping)
    return sender.send_pending(ctx.session_factory, options).attempted


def purge_jobs(ctx: JobContext) -> int:
    """Delete done jobs and sent SMS older than ``FIELDOPS_JOBS_KEEP_DONE_S`` (dead ones stay)."""
    from field_api.jobs import service as job_queue
    from field_api.sms import service as sms

    keep_s = ctx.settings.jobs.keep_done_s
    with ctx.session_factory.begin() as session:
        purged = job_queue.purge_finished(session, older_than_s=keep_s)
        return purged + sms.purge_sent(session, older_than_s=keep_s)


def config_of(
    settings: Settings,
    periodic: Sequence[Periodic],
    *,
    queues: Sequence[str] | None = None,
    concurrency: int = 1,
    tag: str = "worker",
) -> WorkerConfig:
    """A worker's configuration from the service settings (``FIELDOPS_JOBS_*``)."""
    cfg = settings.jobs
    return WorkerConfig(
        queues=tuple(queues) if queues else None,
        concurrency=concurrency,
        lease_s=cfg.lease_s,
        poll_s=cfg.poll_s,
        backoff=Backoff(cfg.backoff_base_s, cfg.backoff_factor, cfg.backoff_max_s),
        periodic=tuple(periodic),
        tag=tag,
    )


def load_handlers(spec: str) -> dict[str, Handler[JobContext]]:
    """Extra handlers named ``module:function`` (the function returns kind -> handler)."""
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise ValueError(f"expected module:function, got {spec!r}")
    found = getattr(importlib.import_module(module_name), function)()
    return dict(found)


def make_worker(
    session_factory: sessionmaker[Session],
    settings: Settings,
    config: WorkerConfig,
    handlers: Mapping[str, Handler[JobContext]],
) -> Worker[JobContext]:
    """A worker running ``handlers`` (the service's: :func:`field_api.wiring.job_handlers`)."""
    stop = threading.Event()
    ctx = JobContext.of(session_factory, settings, stopping=stop.is_set)
    if "webhooks.send" in handlers and (config.queues is None or "webhooks" in config.queues):
        _warm_webhooks(session_factory, settings)
    return Worker(session_factory, handlers, ctx, config, stop_event=stop)


def _warm_webhooks(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Load and compile what the webhook lanes need before the first event comes, so its
    delivery is not slower than the rest (field_api.tracking.sender.warm)."""
    from field_api.tracking import sender

    try:
        sender.warm(session_factory, sender.SendOptions.of(settings))
    except Exception:  # a database not there yet: the first pass warms up instead
        log.exception("warming the webhook sender up failed")


def start_in_process(
    session_factory: sessionmaker[Session], settings: Settings, wiring: Wiring
) -> Worker[JobContext] | None:
    """Start the API process's one worker thread when ``settings.runs_worker_in_process``."""
    if not settings.runs_worker_in_process:
        return None
    config = config_of(settings, wiring.periodic(settings), tag="api-worker")
    worker = make_worker(session_factory, settings, config, wiring.handlers())
    worker.start()
    log.info("job worker thread started in the API process (FIELDOPS_WORKER_IN_PROCESS)")
    return worker


def lifespan(wiring: Wiring) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The application's lifespan: its worker thread (development) lives as long as the server
    process serves."""
    return partial(_lifespan, wiring=wiring)


@asynccontextmanager
async def _lifespan(app: FastAPI, *, wiring: Wiring) -> AsyncIterator[None]:
    from starlette.concurrency import run_in_threadpool

    settings: Settings = app.state.settings
    worker = start_in_process(app.state.session_factory, settings, wiring)
    if worker is None and settings.env != "test":
        # All background work (photo analysis, webhooks, SMS, sweeps) runs in job workers.
        log.info("this API process runs no job worker: start `fieldops worker` beside it")
    app.state.worker = worker
    if settings.env != "test":  # a test process starts many apps; a server starts one
        # start-up is done: later full collections walk only what requests allocate
        freeze_startup_heap()
    try:
        yield
    finally:
        if worker is not None:
            await run_in_threadpool(worker.stop)
