"""Hypothesis profiles for the fuzzers: `ci` (the default: bounded, derandomized, so CI runs
the same examples every time and stays a few seconds per fuzzer) and `long` (many more random
examples, with the example database in tests/fuzz/.hypothesis so that what a long run found is
replayed by the next). Choose with HYPOTHESIS_PROFILE=long.

Every failure a fuzzer found is kept as an explicit `@example` on the fuzzer (the corpus in the
repository), next to the fix in the module it broke."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile(
    "long", max_examples=5000, deadline=None,
    database=DirectoryBasedExampleDatabase(str(Path(__file__).parent / ".hypothesis")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
