"""The deferred-analysis worker: analyse pending evidence outside the API process.

With ``FIELDOPS_MEDIA_ANALYSE_IN_PROCESS=false`` the API only stores uploads; this loop (run
as ``fieldops media worker``, at a lower CPU priority: ``FIELDOPS_MEDIA_WORKER_NICE``) decodes,
hashes, thumbnails and reads barcodes, so uploads never wait behind pixel work. It runs the
server's maintenance jobs (:mod:`field_api.maintenance`) with the analysis job always on:
pending items are claimed one by one under ``media.analyse`` leases, so any number of workers
(and servers) share the backlog without analysing an item twice, and the housekeeping jobs
(expired tus uploads, crashed uploads' temp files, orphans, purges) run under their own leases
about once per maintenance period.
"""

from __future__ import annotations

import logging
import time

from field_api.config import MediaSettings, Settings
from field_api.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings, cfg: MediaSettings, *, poll_s: float = 2.0, once: bool = False
) -> int:
    """Analyse pending items until stopped (or one pass with ``once``); returns items done."""
    from field_api import maintenance

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    ctx = maintenance.JobContext.of(factory, settings, media_cfg=cfg)
    job_list = maintenance.jobs(settings, analyse=True)
    owner = maintenance.job_owner("media-worker")
    period_s = settings.maintenance_every_s or maintenance.DEFAULT_PERIOD_S
    tried = 0
    try:
        while True:
            results = maintenance.run_pass(ctx, job_list, owner=owner, period_s=period_s)
            done = results.get("media.analyse_pending") or 0
            tried += done
            if once:
                return tried
            if not done:
                time.sleep(poll_s)  # idle, or only items failing for now: try again later
    finally:
        engine.dispose()

