"""Coverage-guided fuzzing of one reader with atheris (libFuzzer), using the targets of skytrace.security.fuzzing.

One target per process (libFuzzer owns the process and exits at the end). The seed corpus is the target's seeds;
the rule is the same as bench/bench_fuzz.py: a file reader may only raise SkytraceError, a payload validator
nothing; anything else is a crash (atheris prints it and stops with a non-zero status).

    pip install 'skytrace[fuzz]'
    python bench/fuzz_atheris.py zones -runs=100000 -max_len=4096 -timeout=5
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["skytrace"]):  # the readers' own modules, for coverage feedback
    import skytrace.config
    import skytrace.io.formats
    import skytrace.io.mqtt
    import skytrace.model
    import skytrace.sim.scenario
    import skytrace.zones  # noqa: F401
    from skytrace.security.fuzzing import TARGETS, check_one, scratch_dir


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]
    work = scratch_dir()
    corpus = Path(tempfile.mkdtemp(prefix=f"skytrace-corpus-{name}-"))
    for i, seed in enumerate(target.seeds):
        (corpus / f"seed{i}").write_bytes(seed)

    def one(data: bytes) -> None:
        check_one(target, data, work)

    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
