"""The ``fieldops`` command: the service's and the vision commands, each loaded when it runs."""

from __future__ import annotations

import typer

from field_api.cli import app

VISION_HELP = "Drone-photo defect detection: train, detect, evaluate, run, locate."


@app.command(
    "vision",
    help=VISION_HELP,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def vision(ctx: typer.Context) -> None:
    # Imported here so the service's commands never load torch or ultralytics.
    from vision.cli.app import app as vision_app

    vision_app(args=list(ctx.args), prog_name="fieldops vision")


if __name__ == "__main__":
    app()
