"""The deferred-analysis worker: analyse pending evidence outside the API process.

With ``FIELDOPS_MEDIA_ANALYSE_IN_PROCESS=false`` the API only stores uploads; this loop (run
as ``python -m field_api.media.worker``, typically at a lower CPU priority) decodes, hashes,
thumbnails and reads barcodes, so uploads never wait behind pixel work. It also picks up
anything left pending by a restart, drops resumable uploads left unfinished past
``FIELDOPS_MEDIA_TUS_EXPIRY_HOURS`` and temporary files a crash left in the store.
"""

from __future__ import annotations

import logging
import os
import time

from field_api.config import Settings, get_settings
from field_api.db import make_engine, make_session_factory
from field_api.media import service
from field_api.media.config import MediaSettings, media_settings

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings, cfg: MediaSettings, *, poll_s: float = 2.0, once: bool = False
) -> int:
    """Analyse pending items until stopped (or one pass with ``once``); returns items done."""
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    tried = 0
    try:
        while True:
            with factory.begin() as session:  # housekeeping: stale uploads and temp files
                service.expire_uploads(session, settings=settings, cfg=cfg)
            service.store_of(settings).sweep_temp()
            done = service.process_pending(factory, settings=settings, cfg=cfg)
            tried += done
            if once:
                return tried
            if not done:
                time.sleep(poll_s)  # idle, or only items failing for now: try again later
    finally:
        engine.dispose()


def main() -> None:
    """Entry point: a niced worker using the service's settings."""
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    os.nice(int(os.environ.get("FIELDOPS_MEDIA_WORKER_NICE", "10")))
    run_worker(settings, media_settings(settings))


if __name__ == "__main__":
    main()
