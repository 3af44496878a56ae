"""``fieldops contracts …``: offline tools for signed contract files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from field_api.contracts.signing import (
    SigningKeyError,
    load_public_key,
    public_key_path_for,
    verify_signed_pdf,
)

app = typer.Typer(help="Signed connection contracts.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Signed connection contracts."""


def _default_public_key() -> Path:
    # Imported here so that `--help` and explicit keys do not need the service's settings.
    from field_api.config import get_settings

    return public_key_path_for(get_settings().signing_key_path)


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The signed contract PDF.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The server's Ed25519 public key (PEM). Default: the configured signing "
            "key's published .pub file.",
        ),
    ] = None,
) -> None:
    """Verify a signed contract PDF; exit 0 when valid, 1 otherwise."""
    key_path = public_key if public_key is not None else _default_public_key()
    try:
        key = load_public_key(key_path.read_bytes())
    except OSError as exc:
        typer.echo(
            f"INVALID: cannot read the public key {key_path}: {exc.strerror} (pass --public-key; "
            "the service publishes it at GET /contracts/public-key)",
            err=True,
        )
        raise typer.Exit(1) from exc
    except SigningKeyError as exc:
        typer.echo(f"INVALID: {key_path}: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        data = file.read_bytes()
    except OSError as exc:
        typer.echo(f"INVALID: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(1) from exc
    result = verify_signed_pdf(data, key)
    if not result.valid:
        typer.echo(f"INVALID: {file}: {result.detail}", err=True)
        raise typer.Exit(1)
    typer.echo(f"VALID: {file}: {result.detail}")
