"""How the service is put together, by name: its models, its routers and its reactions.

Nothing is found by scanning packages. A new slice adds its models module to ``MODEL_MODULES``,
its router to :func:`routers` and its ``hooks.install`` to :func:`install_hooks` (in the order
its listeners must run); ``grep -n router field_api/wiring.py`` lists every mounted router.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter

if TYPE_CHECKING:
    from field_api.config import Settings
    from field_api.jobs.service import ClaimedJob
    from field_api.jobs.worker import Handler, Periodic
    from field_api.maintenance import JobContext

# Every module that defines tables (Base.metadata is complete once they are imported).
MODEL_MODULES: Final = (
    "field_api.audit.models",
    "field_api.auth.models",
    "field_api.callbacks.models",
    "field_api.checklists.models",
    "field_api.contracts.models",
    "field_api.deadlines.models",
    "field_api.idempotency.models",
    "field_api.inspections.models",
    "field_api.jobs.models",
    "field_api.kits.models",
    "field_api.leases.models",
    "field_api.media.models",
    "field_api.network.models",
    "field_api.reliability.models",
    "field_api.schemes.models",
    "field_api.sms.models",
    "field_api.tracking.models",
    "field_api.visits.models",
    "field_api.work_orders.models",
)


def import_all_models() -> None:
    """Import every module of ``MODEL_MODULES`` so ``Base.metadata`` names every table."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def routers() -> list[APIRouter]:
    """Every router the service mounts, in the order their routes are matched."""
    from field_api.audit_api import endpoints as audit
    from field_api.auth import endpoints as auth
    from field_api.callbacks import endpoints as callbacks
    from field_api.checklists import endpoints as checklists
    from field_api.contracts import endpoints as contracts
    from field_api.deadlines import endpoints as deadlines
    from field_api.inspections import endpoints as inspections
    from field_api.jobs_api import endpoints as jobs
    from field_api.kits import endpoints as kits
    from field_api.media import endpoints as media
    from field_api.network import endpoints as network
    from field_api.reliability import compensation_endpoints as compensation
    from field_api.reliability import endpoints as reliability
    from field_api.reliability import planning_endpoints as outage_planning
    from field_api.schemes import endpoints as schemes
    from field_api.tracking import endpoints as tracking
    from field_api.visits import endpoints as visits
    from field_api.web import api as web_api
    from field_api.web import endpoints as web
    from field_api.work_orders import endpoints as work_orders

    return [
        audit.router,
        auth.router,
        callbacks.router,
        checklists.router,
        contracts.router,
        deadlines.router,
        inspections.router,
        inspections.page_router,  # the inspector page
        jobs.router,  # the dead-letter list
        kits.router,
        media.router,
        network.router,
        reliability.router,  # customer register, outages, SAIDI/SAIFI
        compensation.router,  # compensation for service interruptions
        outage_planning.router,  # planned-outage budget, requests, merges, live-line work
        schemes.router,
        tracking.router,
        visits.router,
        web.router,  # the crew app and the planner dashboard (/app)
        web_api.router,  # the pages' own JSON (/app/api)
        web.docs_router,  # /docs and /redoc
        work_orders.router,
    ]


def install_hooks() -> None:
    """Register every slice's reactions to other slices' events (idempotent). The audit guard
    first; the stage-change listeners then run in this order: call-backs (and their guard on
    closing), deadlines (clocks), network (transformer load), tracking (SMS, webhooks; it
    refreshes the clocks it reports itself), visits (the stages reached on site)."""
    from field_api.audit import hooks as audit
    from field_api.callbacks import hooks as callbacks
    from field_api.deadlines import hooks as deadlines
    from field_api.network import hooks as network
    from field_api.sms import hooks as sms
    from field_api.tracking import hooks as tracking
    from field_api.visits import hooks as visits

    audit.install()
    callbacks.install()
    deadlines.install()
    network.install()
    sms.install()
    tracking.install()
    visits.install()


def job_handlers() -> dict[str, Handler[JobContext]]:
    """The handler of every job kind, by name (field_api.workers runs them)."""
    from field_api import maintenance as m
    from field_api import workers as w
    from field_api.reliability import notices
    from field_api.sms import service as sms

    def each_run(run: Callable[[JobContext], int]) -> Handler[JobContext]:
        def handler(ctx: JobContext, job: ClaimedJob) -> int:
            return int(run(ctx))

        return handler

    return {
        "media.analyse_pending": each_run(m.resume_analysis),
        "webhooks.send": each_run(w.send_webhooks),
        "media.sweep_temp": each_run(m.sweep_temp),
        "media.expire_uploads": each_run(m.expire_uploads),
        "media.sweep_uploads": each_run(m.sweep_uploads),
        "storage.sweep_orphans": each_run(m.sweep_orphans),
        "idempotency.purge": each_run(m.purge_idempotency),
        "leases.purge": each_run(m.purge_leases),
        "audit.checkpoint": each_run(m.audit_checkpoint),
        "jobs.purge": each_run(w.purge_jobs),
        sms.JOB_KIND: sms.send_job,  # one customer text message (queue sms)
        "reliability.snapshot": each_run(snapshot_register),
        notices.JOB_KIND: notices.notice_job,  # one planned-outage notice (then an SMS)
    }


def snapshot_register(ctx: JobContext) -> int:
    """Keep this month's customer register snapshot current (the indices' denominator)."""
    from field_api.reliability import register

    with ctx.session_factory.begin() as session:
        return register.snapshot_current_month(session)


def periodic_jobs(settings: Settings) -> list[Periodic]:
    """The periodic work, each kind with its period and queue."""
    from field_api.jobs.worker import Periodic

    every = settings.maintenance_every_s
    return [
        Periodic("media.analyse_pending", settings.jobs.analyse_every_s, queue="media"),
        Periodic("webhooks.send", settings.jobs.webhook_every_s, queue="webhooks"),
        Periodic("media.sweep_temp", every, queue="maintenance"),
        Periodic("media.expire_uploads", every, queue="maintenance"),
        Periodic("media.sweep_uploads", every, queue="maintenance"),
        Periodic("storage.sweep_orphans", every, queue="maintenance"),
        Periodic("idempotency.purge", every, queue="maintenance"),
        Periodic("leases.purge", every, queue="maintenance"),
        Periodic("audit.checkpoint", every, queue="maintenance"),
        Periodic("jobs.purge", every, queue="maintenance"),
        Periodic(
            "reliability.snapshot", settings.reliability.snapshot_every_s, queue="maintenance"
        ),
    ]
