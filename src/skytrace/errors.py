"""Errors that skytrace reports to users: one clear sentence, never a traceback."""

from __future__ import annotations


class SkytraceError(Exception):
    """Base class for every error skytrace shows to a user as a message (the CLI prints it, exit code 2)."""


class FormatError(SkytraceError):
    """Invalid input in one of the interchange files.

    Names the file, the 1-based line (None for whole-file formats) and the field, so that a user can fix it.
    """

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}, line {line}"
        what = f", field '{field}'" if field else ""
        super().__init__(f"{where}{what}: {message}")


class ScenarioError(SkytraceError):
    """A scenario file is invalid (unknown key, wrong type, impossible value)."""
