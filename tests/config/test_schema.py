"""The committed JSON Schema is what the generator script writes, and is useful to editors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from actors.config import render_config_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "config" / "ferry.schema.json"


def _script():
    spec = importlib.util.spec_from_file_location(
        "gen_config_schema", ROOT / "scripts" / "gen_config_schema.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_committed_schema_equals_what_the_script_generates():
    assert _script().main(["--check"]) == 0
    assert SCHEMA.read_text() == render_config_schema()


def test_schema_describes_every_key_and_rejects_unknown_ones():
    schema = json.loads(render_config_schema())
    attrs = schema["$defs"]["DataManagerAttributes"]
    assert attrs["additionalProperties"] is False
    assert all(prop.get("description") for prop in attrs["properties"].values())
    method = schema["$defs"]["CaptureMethodConfig"]["properties"]
    assert method["capture_queue_size"] == {
        "default": 250,
        "description": "Readings buffered between capture and disk; 0 means 250.",
        "minimum": 0,
        "title": "Capture Queue Size",
        "type": "integer",
    }


def test_script_check_fails_on_a_stale_schema_and_writing_fixes_it(tmp_path, capsys):
    out = tmp_path / "schema.json"
    out.write_text("{}\n")
    script = _script()
    assert script.main(["--check", "--out", str(out)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert script.main(["--out", str(out)]) == 0
    assert script.main(["--check", "--out", str(out)]) == 0
