"""The ``skytrace`` command line. Each sub-command lives in its own module under :mod:`skytrace.commands`.

Command modules import only typer and the standard library at module level (heavy modules are imported inside
the command functions), so ``skytrace --help`` answers at once. Errors a user can fix (bad files, bad options)
are printed as one clear line and exit with status 2; never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from skytrace.errors import SkytraceError

app = typer.Typer(
    name="skytrace",
    help="Open early-warning system against one-way attack drones: simulate, track, warn, document.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global(config: Path | None = typer.Option(None, "--config", help="skytrace.toml to read (default: "
                                                                       "$SKYTRACE_CONFIG, else ./skytrace.toml).")
            ) -> None:
    from skytrace.config import set_config_path

    set_config_path(config)


# One module per command; each defines ``register(app)``.
COMMAND_MODULES = [
    "simulate",
    "track",
    "evaluate",
    "alerts",
    "demo",
    "inspect",
    "serve",
    "replay",
    "config",
    "export",
    "import_",
    "node",
    "forensics",
    "keys",
]


def _plain_flags() -> None:
    """Flags (``--headless``, ``--live/--no-live``, ``--help``) take no value: show no ``<bool>`` type in help."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - other typer layouts
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_skytrace_plain", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._skytrace_plain = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags()


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"skytrace.commands.{name}").register(app)


_register_all()


def main() -> None:
    try:
        app()
    except SkytraceError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as exc:  # unreadable input, unwritable output, disk full: the user's to fix, not a bug
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        typer.secho(f"error: {exc.strerror or exc}{where}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
