"""Fixtures for the CLI tests: ``ferry`` run in-process, and collector directories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from actors import cli
from actors.codec import collector_dir
from tests.cli.captures import parse_lines

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Run:
    status: int
    lines: list[dict[str, object]]
    stderr: list[str] = field(default_factory=list)


@pytest.fixture
def ferry(capsys: pytest.CaptureFixture[str]):
    """Runs ``ferry`` in-process; returns the status, stdout as parsed JSON Lines, stderr lines."""

    def run(*argv: str | Path) -> Run:
        status = cli.main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Run(status, parse_lines(captured.out), captured.err.splitlines())

    return run


@pytest.fixture
def sensor_dir(tmp_path: Path) -> Path:
    return collector_dir(tmp_path / "capture", "rdk:component:sensor", "env", "Readings")


@pytest.fixture
def camera_dir(tmp_path: Path) -> Path:
    return collector_dir(tmp_path / "capture", "rdk:component:camera", "cam", "ReadImage")
