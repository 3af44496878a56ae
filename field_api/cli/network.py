"""`fieldops network import FILE`: load transformers and LV lines from GeoJSON or CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The low-voltage network: transformers and LV lines.", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """The low-voltage network: transformers and LV lines."""


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    file_format: Annotated[
        str | None, typer.Option("--format", help="geojson or csv (default: from the extension).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate and count, write nothing.")] = False,
) -> None:
    """Import FILE: all rows or none; bad rows are listed with their errors (exit 2)."""
    from field_api.cli.context import service_context
    from field_api.errors import DomainError
    from field_api.network import service

    with service_context() as (_settings, factory):
        try:
            with factory.begin() as session:
                report = service.import_file(
                    session, file.read_bytes(), filename=file.name, file_format=file_format,
                    actor=None, dry_run=dry_run,
                )
        except DomainError as exc:
            typer.echo(json.dumps(exc.body(), ensure_ascii=False, indent=2), err=True)
            raise typer.Exit(2) from exc
    typer.echo(json.dumps(report.model_dump(), ensure_ascii=False))
