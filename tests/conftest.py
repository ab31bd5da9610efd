"""Suite-wide test settings: Hypothesis seeds rotate, also in CI, and every run prints its seed.

With ``CI=true`` Hypothesis would derandomize and replay the same examples on
every CI run forever; the ``ferry-ci`` profile keeps randomness on, and the
Makefile passes ``--hypothesis-seed`` (today's date unless ``FERRY_TEST_SEED``
is set), so a CI failure replays with the seed printed in the header.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hypothesis import settings

if TYPE_CHECKING:
    import pytest

settings.register_profile("ferry-ci", settings.get_profile("ci"), derandomize=False)
if os.environ.get("CI"):
    settings.load_profile("ferry-ci")


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed")
    return (
        f"hypothesis seed: {seed} (replay: make test FERRY_TEST_SEED={seed})"
        if seed is not None
        else "hypothesis seed: random (pass --hypothesis-seed to pin it)"
    )
