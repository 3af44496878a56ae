"""``fieldops storage …``: the file store's commands."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

app = typer.Typer(help="The file store (local folder or S3 bucket).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The file store (local folder or S3 bucket)."""


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="The backend to copy into: s3.")],
) -> None:
    """Copy the local store (FIELDOPS_MEDIA_DIR) into the bucket of FIELDOPS_S3_*.

    Resumable (objects already in the bucket with their size are not copied again: run it again
    after an interruption) and verified (each object is hashed while copied and read back from
    the bucket; one that does not hash to its key is reported, not kept). Prints one JSON line:
    copied, present, failed (key and reason each); exit 1 when any failed. Then set
    FIELDOPS_STORAGE_BACKEND=s3.
    """
    from field_api.common.storage import LocalStore, build_store, migrate
    from field_api.config import get_settings

    if to != "s3":
        raise typer.BadParameter("only s3 is a migration target", param_hint="--to")
    settings = get_settings()
    cfg = settings.storage.model_copy(update={"backend": "s3"})
    if cfg.missing():
        typer.echo("the bucket is not configured: set " + ", ".join(cfg.missing()), err=True)
        raise typer.Exit(2)
    report = migrate(LocalStore(settings.media_dir), build_store(cfg, settings.media_dir))
    typer.echo(
        json.dumps(
            {
                "copied": report.copied,
                "present": report.present,
                "failed": [{"key": key, "reason": why} for key, why in report.failed],
            }
        )
    )
    if report.failed:
        raise typer.Exit(1)


@app.command("sweep-orphans")
def sweep_orphans(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the orphans, delete nothing.")
    ] = False,
) -> None:
    """Delete stored objects no database row references, older than
    FIELDOPS_STORAGE_ORPHAN_GRACE_HOURS (default 24). Prints one JSON line of counts."""
    from field_api.cli.context import service_context
    from field_api.common.storage import store_of
    from field_api.storage_sweep import sweep_orphans as sweep

    # every model loaded (the sweep reads every table that names a stored object)
    with service_context() as (settings, factory), factory.begin() as session:
        result = sweep(
            session,
            store_of(settings),
            grace_hours=settings.storage.orphan_grace_hours,
            dry_run=dry_run,
        )
    typer.echo(json.dumps(dataclasses.asdict(result)))
