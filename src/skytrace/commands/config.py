"""``skytrace config show``: the effective configuration (one skytrace.toml for every mode)."""

from __future__ import annotations

from pathlib import Path

import typer

config_app = typer.Typer(help="The configuration every mode reads (skytrace.toml).", no_args_is_help=True)


@config_app.command("show")
def show(
    markdown: bool = typer.Option(False, "--markdown", help="Print the reference of every setting as Markdown."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of standard output."),
) -> None:
    """Print the effective configuration as TOML, every setting with its unit and why."""
    from skytrace.config import load_config, show_markdown, show_toml

    text = show_markdown() if markdown else show_toml(load_config())
    if out is not None:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text, nl=False)


@config_app.command("check")
def check(path: Path = typer.Argument(..., help="skytrace.toml to validate")) -> None:
    """Validate a configuration file (unknown keys, wrong types) without running anything."""
    from skytrace.config import load_config

    conf = load_config(path)
    typer.echo(f"{path}: valid ({', '.join(sorted(conf.sections)) or 'no sections'} set; the rest default)")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
