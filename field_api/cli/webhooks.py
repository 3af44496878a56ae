"""`fieldops webhooks ...`: the webhook sender."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(
    help="Webhooks to subscribers (stage changes, planned visits).", no_args_is_help=True
)


@app.callback()
def _main() -> None:
    """Webhooks to subscribers (stage changes, planned visits)."""


@app.command()
def send(
    loop: Annotated[bool, typer.Option("--loop", help="Keep running until interrupted.")] = False,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between idle polls.")
    ] = 5.0,
    timeout_s: Annotated[float, typer.Option("--timeout", min=0.1, help="Per request.")] = 10.0,
) -> None:
    """Send the webhook outbox (once, or continuously with --loop)."""
    import httpx

    from field_api.cli.context import service_context
    from field_api.tracking.sender import default_target_policy, run_sender, send_pending

    # No proxies from the environment: the sender connects to the address it has checked.
    with service_context() as (settings, factory), httpx.Client(
        timeout=timeout_s, trust_env=False
    ) as client:
        where = default_target_policy(settings)
        if loop:
            stop = threading.Event()
            # SIGTERM/SIGINT finish the request in flight, then stop: nothing is half-recorded.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            report = run_sender(
                factory, client=client, stop=stop, interval_s=interval_s, targets_policy=where
            )
        else:
            report = send_pending(factory, client=client, targets_policy=where)
    typer.echo(
        json.dumps({"delivered": report.delivered, "failed": report.failed, "dead": report.dead})
    )
