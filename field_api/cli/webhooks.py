"""`fieldops webhooks ...`: the webhook sender."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(
    help="Webhooks to subscribers (stage changes, visits, pauses, due dates).", no_args_is_help=True
)


@app.callback()
def _main() -> None:
    """Webhooks to subscribers (stage changes, visits, pauses, due dates)."""


@app.command()
def send(
    loop: Annotated[bool, typer.Option("--loop", help="Keep running until interrupted.")] = False,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between idle polls.")
    ] = 5.0,
    timeout_s: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            help="Overall deadline of one attempt (FIELDOPS_WEBHOOK_ATTEMPT_DEADLINE_S).",
        ),
    ] = None,
) -> None:
    """Send the webhook outbox (once, or continuously with --loop): the same per-subscription
    lanes the job workers run (``webhooks.send``)."""
    from field_api.cli.context import service_context
    from field_api.tracking.sender import SendOptions, run_sender, send_pending

    with service_context() as (settings, factory):
        stop = threading.Event()
        options = SendOptions.of(settings, deadline_s=timeout_s, stopping=stop.is_set)
        if loop:
            # SIGTERM/SIGINT finish the requests in flight, then stop: nothing is half-recorded.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            report = run_sender(factory, options, stop=stop, interval_s=interval_s)
        else:
            report = send_pending(factory, options)
    typer.echo(
        json.dumps({"delivered": report.delivered, "failed": report.failed, "dead": report.dead})
    )
