"""``fieldops vision``: training, detection, evaluation and the inspection batch.

Each group's module is imported when this app is built, which happens only when a
``fieldops vision`` command runs.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, help="Drone-photo defect detection.")

# Modules whose typer apps contribute commands directly under `fieldops vision`.
COMMAND_MODULES = (
    "vision.cli.train", "vision.cli.detect", "vision.cli.run", "vision.cli.lifecycle"
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a module not written yet must not break the others
        if exc.name != _name:
            raise
        continue
    app.registered_commands.extend(_module.app.registered_commands)
