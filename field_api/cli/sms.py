"""`fieldops sms ...`: customer text messages (a fake gateway for development and benches)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Annotated

import typer

app = typer.Typer(help="Customer text messages (SMS).", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Customer text messages (SMS)."""


@app.command("fake-gateway")
def fake_gateway(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: a free port.")] = 0,
    access_key_id: Annotated[
        str, typer.Option("--access-key-id", help="The key id it accepts.")
    ] = "fake-access-key-id",
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="FIELDOPS_SMS_ACCESS_KEY_SECRET",
            help="The secret it verifies signatures with (default: a random one, printed).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a fake Alibaba-style SMS gateway on 127.0.0.1 until interrupted.

    It verifies signatures, records messages (GET /messages) and prints the FIELDOPS_SMS_*
    settings that point the service at it.
    """
    from field_api.sms.fake_gateway import FakeSmsGateway

    fake = FakeSmsGateway(access_key_id=access_key_id, port=port)
    if secret:
        fake.secret = secret
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with fake:
        for name, value in fake.environment().items():
            shown = value if secret is None or name != "FIELDOPS_SMS_ACCESS_KEY_SECRET" else "…"
            typer.echo(f"{name}={shown}")
        typer.echo(f"messages: GET {fake.url}messages", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
