"""``fieldops vision`` commands: app (the typer group), train, detect and run."""
