"""The service's housekeeping: the work that puts things right after a crash and keeps tables small.

Each function here is the body of one periodic job kind (:func:`field_api.wiring.job_handlers`
and :func:`field_api.wiring.periodic_jobs`), run by the job workers (:mod:`field_api.workers`):
``fieldops worker`` processes, or the development API's worker thread. A worker that starts
schedules every periodic job due at once, so a host restarted after ``kill -9`` resumes its
predecessor's work straight away (the analysis pass takes over the dead process's
``media.analyse`` leases; the temp sweep removes its half-written files). The job queue runs each
kind in one place at a time (one job row per kind, claimed under a lease).

Job functions take a :class:`JobContext` and return how much they did; tests call them one by
one or through a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from field_api.common.storage import store_of
from field_api.config import MediaSettings, Settings
from field_api.leases import service as leases
from field_api.media import service as media

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a job needs: the database, the settings, and whether its worker is stopping."""

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
