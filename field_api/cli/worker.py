"""`fieldops worker`: run the job queue's handlers (any number of workers, on any host)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import Annotated

import typer

log = logging.getLogger("fieldops.worker")

def _queues(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    names = [q.strip() for q in raw.split(",")]
    if not all(names) or any(len(q) > 32 for q in names):
        raise typer.BadParameter(f"expected queue names separated by commas, got {raw!r}")
    return names

def run(
    *,
    queues: list[str] | None,
    concurrency: int,
    once: bool,
    handlers_from: list[str],
    tag: str = "worker",
) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with ``once``, until nothing is due)."""
    from field_api import workers
    from field_api.cli.context import service_context
    from field_api.common.heap import freeze_startup_heap
    from field_api.wiring import job_handlers, periodic_jobs

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    handlers = job_handlers()
    for spec in handlers_from:
        handlers.update(workers.load_handlers(spec))
    with service_context() as (settings, factory):
        config = workers.config_of(
            settings, periodic_jobs(settings), queues=queues, concurrency=concurrency, tag=tag
        )
        worker = workers.make_worker(factory, settings, config, handlers)
        if once:
            worker.schedule()
            return worker.run_until_idle()
        # SIGTERM/SIGINT: each thread finishes its job in flight, then the worker stops.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: worker.stop_event.set())
        freeze_startup_heap()  # handlers imported: later collections walk only new objects
        worker.start()
        log.info(
            "worker started: %d thread(s) on queues %s",
            concurrency,
            ",".join(queues) if queues else "(all)",
        )
        worker.stop_event.wait()
        worker.stop()
        return worker.ran

def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            help="Queues to take jobs from, comma-separated (default: all): "
            "media, webhooks, maintenance, default."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once.")] = 1,
    once: Annotated[bool, typer.Option(help="Run the jobs due now, then exit.")] = False,
    handlers_from: Annotated[
        list[str] | None,
        typer.Option(hidden=True, help="module:function returning more handlers (tests)."),
    ] = None,
) -> None:
    """Run background jobs: photo analysis, webhook delivery, purges and sweeps."""
    from field_api.config import get_settings

    # background work yields the CPU to the API processes it may share cores with
    os.nice(get_settings().jobs.worker_nice)
    ran = run(
        queues=_queues(queues),
        concurrency=concurrency,
        once=once,
        handlers_from=handlers_from or [],
    )
    typer.echo(json.dumps({"ran": ran}))
