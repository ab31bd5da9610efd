"""The `ferry` entry point: subcommand dispatch, usage errors, the installed console script."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors import cli
from tests.cli.captures import parse_lines, write_binary, write_tabular

ROOT = Path(__file__).resolve().parents[2]


def _console_script() -> Path:
    beside = Path(sys.executable).parent / "ferry"
    found = beside if beside.exists() else shutil.which("ferry")
    if found is None:
        pytest.fail("the `ferry` console script is not installed (pip install -e .)")
    return Path(found)


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.main([])

    assert exc_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_help_lists_inspect_and_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.main(["--help"])

    assert exc_info.value.code == 0
    assert "inspect" in capsys.readouterr().out


def test_summary_and_binary_out_are_mutually_exclusive(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.main(["inspect", "--summary", "--binary-out", str(tmp_path), str(tmp_path)])

    assert exc_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_installed_console_script_streams_json_and_exits_1_on_a_truncated_file(
    tmp_path, sensor_dir, camera_dir
) -> None:
    good = write_binary(camera_dir, b"\x89PNG")
    truncated = write_tabular(sensor_dir, [{"readings": {"x": 1.0}}, {"readings": {"x": 2.0}}])
    with open(truncated, "r+b") as handle:
        handle.truncate(truncated.stat().st_size - 1)

    proc = subprocess.run(
        [str(_console_script()), "inspect", str(good), str(truncated)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert proc.returncode == 1
    lines = parse_lines(proc.stdout)
    assert [(line["kind"], line["path"]) for line in lines] == [
        ("header", str(good)),
        ("record", str(good)),
        ("header", str(truncated)),
        ("record", str(truncated)),
    ]
    assert lines[3]["data"] == {"readings": {"x": 1.0}}
    [error] = proc.stderr.splitlines()
    end = lines[3]["offset"] + lines[3]["bytes"]
    assert error.startswith(f"ferry inspect: {truncated}: offset {end}: ")


def test_sample_capture_script_writes_files_that_inspect_reads_in_full(
    capsys, tmp_path, monkeypatch
) -> None:
    script = ROOT / "scripts" / "sample_capture.py"
    spec = importlib.util.spec_from_file_location("sample_capture", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sample_capture", module)  # its dataclasses look it up
    spec.loader.exec_module(module)

    assert module.main(["--out", str(tmp_path / "sample")]) == 0
    wrote = capsys.readouterr().out.splitlines()
    status = cli.main(["inspect", "--summary", str(tmp_path / "sample")])

    assert status == 0
    *summaries, totals = parse_lines(capsys.readouterr().out)
    assert len(wrote) == len(summaries) == 4
    counts: dict[tuple[object, object], int] = {}
    for s in summaries:
        key = (s["component_name"], s["method_name"])
        counts[key] = counts.get(key, 0) + s["records"]
    assert counts == {
        ("arm", "JointPositions"): 20,
        ("cam", "ReadImage"): 2,
        ("env", "Readings"): 100,
    }
    assert totals["records"] == 122
    assert totals["errors"] == 0
