"""CLI sub-commands, one module each (``register(app)`` adds the command to the Typer app)."""
