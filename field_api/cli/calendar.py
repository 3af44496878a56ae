"""`fieldops calendar ...`: working-day answers on the command line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from field_api.common.calendar import (
    CalendarError,
    build_calendar,
    calendar_for,
)
from field_api.config import get_settings

app = typer.Typer(
    help="The Chinese working-day calendar used by time limits.", no_args_is_help=True
)


def _parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"{raw!r} is not a date (YYYY-MM-DD)") from exc


@app.callback()
def _main() -> None:
    """The Chinese working-day calendar used by time limits."""


@app.command()
def due(
    from_: Annotated[str, typer.Option("--from", help="Start day D (not counted), YYYY-MM-DD.")],
    days: Annotated[int, typer.Option("--days", min=0, help="N working days after D.")],
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Fail for a year with no holiday schedule (default: FIELDOPS_CALENDAR_STRICT).",
        ),
    ] = None,
    override: Annotated[
        Path | None,
        typer.Option(
            "--override",
            help="Calendar override YAML (default: FIELDOPS_CALENDAR_OVERRIDE_PATH).",
        ),
    ] = None,
) -> None:
    """Print the N-th working day strictly after D as JSON."""
    start = _parse_date(from_)
    settings = get_settings().calendar
    try:
        calendar = build_calendar(
            override if override is not None else settings.override_path,
            strict=settings.strict if strict is None else strict,
        )
        result = calendar.add_working_days(start, days)
    except CalendarError as exc:
        typer.echo(json.dumps(exc.body(), ensure_ascii=False), err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(json.dumps(result.as_dict()))


@app.command()
def recompute() -> None:
    """Recompute every provisional deadline (after the override file gained a year)."""
    # Imported here: the calendar commands above need no database.
    from field_api.cli.context import service_context
    from field_api.deadlines import service

    try:
        with service_context() as (settings, factory), factory.begin() as session:
            count = service.recompute_provisional(session, calendar=calendar_for(settings))
    except CalendarError as exc:
        typer.echo(json.dumps(exc.body(), ensure_ascii=False), err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(json.dumps({"orders_recomputed": count}))
