"""``ferry run --cloud FILE``: the cloud section from its own file, validated like the config's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from actors import cli
from actors.config import ConfigError, parse_cloud_file
from actors.config_plan import load_plan

if TYPE_CHECKING:
    from pathlib import Path

SECTION = {
    "address": "127.0.0.1:8086",
    "part_id": "p1",
    "api_key_id": "k1",
    "api_key": "fk_secret",
    "insecure": True,
}


def test_a_cloud_file_resolves_like_the_configs_cloud_section(tmp_path: Path) -> None:
    cloud = parse_cloud_file(
        json.dumps({**SECTION, "insecure": False, "tls_ca_file": "ca.pem"}),
        source="cloud.json",
        base_dir=tmp_path,
    )
    assert (cloud.host, cloud.port, cloud.part_id) == ("127.0.0.1", 8086, "p1")
    assert cloud.tls_ca_file == tmp_path / "ca.pem"


def test_a_bad_cloud_file_names_the_file_and_each_key(tmp_path: Path) -> None:
    bad = json.dumps({"address": "nohost", "api_key": ""})
    with pytest.raises(ConfigError) as info:
        parse_cloud_file(bad, source="c.json", base_dir=tmp_path)
    text = str(info.value)
    assert "c.json" in text
    for key in ("address", "part_id", "api_key_id", "api_key"):
        assert key in text


def test_the_cloud_file_replaces_the_configs_own_section(tmp_path: Path) -> None:
    config = {
        "services": [{"name": "dm", "type": "data_manager"}],
        "cloud": {**SECTION, "part_id": "from-config"},
    }
    override = parse_cloud_file(json.dumps(SECTION), source="c.json", base_dir=tmp_path)
    plan = load_plan(json.dumps(config), tmp_path / "robot.json", cloud=override)
    assert plan.sync.cloud is not None
    assert plan.sync.cloud.part_id == "p1"
    assert (
        load_plan(json.dumps(config), tmp_path / "robot.json").sync.cloud.part_id == "from-config"
    )


def test_ferry_run_rejects_an_invalid_cloud_file_before_starting(tmp_path: Path, capsys) -> None:
    config = tmp_path / "robot.json"
    config.write_text(json.dumps({"components": []}))
    bad = tmp_path / "cloud.json"
    bad.write_text(json.dumps({**SECTION, "address": "no-port"}))
    code = cli.main(["run", "--config", str(config), "--cloud", str(bad), "--no-api"])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid --cloud file" in err
    assert "address" in err
