"""``fieldops contracts …``: offline tools for signed contract files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from field_api.common.i18n import Lang, normalise
from field_api.contracts.signing import (
    SigningKeyError,
    load_public_key,
    public_key_path_for,
    verify_signed_pdf,
)
from field_api.language import DEFAULT_LANG, from_accept_language

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
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Language of the verdict: zh-CN or en. Default: from LC_ALL, LC_MESSAGES or "
            "LANG (en_* is English), else zh-CN.",
        ),
    ] = None,
) -> None:
    """Verify a signed contract PDF; exit 0 when valid, 1 otherwise.

    The line starts with VALID or INVALID (for scripts); the reason follows in the chosen
    language."""
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
    language = normalise(lang) if lang else _environment_language()
    text = result.message.render(language) if result.message else result.detail
    if not result.valid:
        typer.echo(f"INVALID: {file}: {text}", err=True)
        raise typer.Exit(1)
    typer.echo(f"VALID: {file}: {text}")


def _environment_language() -> Lang:
    """The terminal's language (LC_ALL, then LC_MESSAGES, then LANG), zh-CN when it is neither
    Chinese nor English."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return from_accept_language(value.split(".")[0].replace("_", "-")) or DEFAULT_LANG
    return DEFAULT_LANG
