from typer.testing import CliRunner

from skytrace.cli import app


def test_cli_lists_commands():
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "check" in res.output
