"""Property tests: every reader and payload validator, fed random and mutated bytes, fails only cleanly.

Same targets as bench/bench_fuzz.py (skytrace.security.fuzzing): a file reader returns records or raises a
SkytraceError; a payload validator never raises. Bounded: ~150 examples per target (a few seconds each).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skytrace.security.fuzzing import TARGETS, check_one, mutate, scratch_dir

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def workdir():
    d = scratch_dir()
    yield d
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


@pytest.mark.parametrize("name", list(TARGETS))
def test_reader_survives_random_bytes(name, workdir):
    target = TARGETS[name]

    @SETTINGS
    @given(st.binary(max_size=2000))
    def run(data: bytes) -> None:
        check_one(target, data, workdir)  # raises (fails the test) on anything but a clean rejection

    run()


@pytest.mark.parametrize("name", list(TARGETS))
def test_reader_survives_mutated_seeds(name, workdir):
    target = TARGETS[name]

    @SETTINGS
    @given(st.integers(0, 2**32 - 1), st.integers(1, 6))
    def run(seed: int, rounds: int) -> None:
        rng = random.Random(seed)
        data = rng.choice(target.seeds)
        for _ in range(rounds):
            data = mutate(data, rng)
        check_one(target, data, workdir)

    run()


def test_seeds_are_valid(workdir):
    """The seeds themselves are accepted: mutations start from valid inputs, so they reach the deep checks."""
    for target in TARGETS.values():
        for seed in target.seeds:
            assert check_one(target, seed, workdir) == "accepted", target.name
