"""Agent guarantees: live reconfigure from the config file, invalid configs kept out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import trio

from actors.agent import Agent, AgentOptions
from actors.config_plan import load_plan
from actors.ports import DiskStats

from .conftest import CountingSensor, World

if TYPE_CHECKING:
    from pathlib import Path


class _Disk:
    def usage(self, path: Path) -> DiskStats:
        return DiskStats(total=100, used=10, free=90)


def _config(capture_dir: Path, **rates: float) -> str:
    components = [
        {
            "name": name,
            "api": "rdk:component:sensor",
            "model": "counting",
            "service_configs": [
                {
                    "type": "data_manager",
                    "attributes": {
                        "capture_methods": [{"method": "Readings", "capture_frequency_hz": hz}]
                    },
                }
            ],
        }
        for name, hz in rates.items()
    ]
    services = [
        {
            "name": "dm",
            "api": "rdk:service:data_manager",
            "attributes": {"capture_dir": str(capture_dir)},
        }
    ]
    return json.dumps({"components": components, "services": services})


def _agent(world: World, config: Path) -> Agent:
    options = AgentOptions(config_path=config, load_plan=load_plan, disk=_Disk(), serve_api=False)
    return Agent(options, world.seams())


async def test_editing_the_config_file_changes_the_rate_live_without_loss(
    world: World, tmp_path: Path, autojump_clock
):
    config = tmp_path / "robot.json"
    config.write_text(_config(world.root, s=2.0))
    agent = _agent(world, config)
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            await trio.sleep(10)
            config.write_text(_config(world.root, s=10.0))
            await trio.sleep(10)  # the watcher polls every second
            status = await agent.status()
            nursery.cancel_scope.cancel()
    seqs = world.seqs("s")
    assert seqs == list(range(1, CountingSensor.knobs["s"].calls + 1))
    # ~20 readings at 2 Hz, then ~90-100 at 10 Hz after the change is noticed (<= 1 s).
    assert 105 <= len(seqs) <= 125
    assert status["collectors"][0]["configured_hz"] == 10.0


async def test_invalid_new_config_is_rejected_and_the_running_one_stays(
    world: World, tmp_path: Path, autojump_clock
):
    config = tmp_path / "robot.json"
    config.write_text(_config(world.root, s=5.0))
    agent = _agent(world, config)
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            await trio.sleep(5)
            config.write_text(_config(world.root, s=-3.0).replace('"Readings"', "42"))
            await trio.sleep(5)
            assert "method" in agent.config_error
            status = await agent.status()
            assert status["agent"]["config_error"] == agent.config_error
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
    # Still capturing at 5 Hz throughout: ~75 readings in 15 s.
    assert 74 <= len(world.seqs("s")) <= 76


async def test_reload_applies_a_change_at_once_without_waiting_for_the_poll(
    world: World, tmp_path: Path, autojump_clock
):
    config = tmp_path / "robot.json"
    config.write_text(_config(world.root, a=1.0))
    options = AgentOptions(
        config_path=config, load_plan=load_plan, disk=_Disk(), serve_api=False, config_poll_s=3600.0
    )
    agent = Agent(options, world.seams())
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            config.write_text(_config(world.root, a=1.0, b=1.0))
            agent.reload()  # what SIGHUP does
            await trio.sleep(0.5)
            assert ("rdk:component:sensor", "b", "Readings") in agent.runtime.plan.collectors
            nursery.cancel_scope.cancel()


async def test_status_reports_each_collector_and_the_pending_files(
    world: World, tmp_path: Path, autojump_clock
):
    config = tmp_path / "robot.json"
    config.write_text(_config(world.root, a=4.0))
    agent = _agent(world, config)
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            await trio.sleep(10)
            await agent.runtime.rotate()
            status = await agent.status()
            nursery.cancel_scope.cancel()
    [row] = status["collectors"]
    assert row["resource"] == "a"
    assert row["method"] == "Readings"
    assert 40 <= row["captured"] <= 41
    assert abs(row["achieved_hz"] - 4.0) < 0.2
    assert status["pending"]["files"] >= 1
    assert status["disk"][0]["used_fraction"] == 0.1
