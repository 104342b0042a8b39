"""The CAP 1.2 file sink of the pipeline (one XML file per alert event)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skytrace.alerting.cap import CapWriter


class CapFileSink:
    """One CAP 1.2 XML file per alert event (``<time>-<zone>-<kind>.xml``) in a directory."""

    critical = True

    def __init__(self, zones: Any, out_dir: str | Path, status: str = "Exercise"):
        self.writer = CapWriter(zones, status=status)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.files: list[Path] = []

    def on_step(self, result: Any) -> None:
        if result.events:
            self.files.extend(self.writer.write(result.events, self.out_dir))

    def close(self) -> None:
        return None
