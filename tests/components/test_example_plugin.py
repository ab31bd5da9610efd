"""The example plugin under config/plugins works through the ``python:`` model string."""

from __future__ import annotations

import pytest

from actors.components import SkipReading, UnknownMethod, default_registry
from tests.components.support import PLUGINS_DIR, make_ctx, tabular

MODEL = "python:my_robot.sensors:Thermometer"


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    return default_registry(entry_points=list)


async def test_thermometer_simulates_a_seeded_room_without_a_path(registry):
    async def series(seed: int) -> list[object]:
        thermo = registry.create(make_ctx("sensor", MODEL, seed=seed))
        return [tabular(await thermo.capture("Readings", {}))["temperature_c"] for _ in range(5)]

    assert await series(1) == await series(1)
    assert await series(1) != await series(2)
    assert all(19 < t < 21 for t in await series(3))


async def test_thermometer_reads_millidegrees_from_its_path_with_offset(registry, tmp_path):
    path = tmp_path / "temp"
    path.write_text("42500\n")
    attrs = {"path": str(path), "offset_c": -1.5}
    thermo = registry.create(make_ctx("sensor", MODEL, attrs))
    assert tabular(await thermo.capture("Readings", {})) == {"temperature_c": 41.0}


async def test_thermometer_skips_a_reading_when_the_file_is_empty(registry, tmp_path):
    path = tmp_path / "temp"
    path.write_text("")
    thermo = registry.create(make_ctx("sensor", MODEL, {"path": str(path)}))
    with pytest.raises(SkipReading):
        await thermo.capture("Readings", {})


async def test_thermometer_do_command_and_unknown_method(registry):
    thermo = registry.create(make_ctx("sensor", MODEL))
    out = await thermo.capture("DoCommand", {"docommand_input": {"ping": 1}})
    assert tabular(out) == {"echo": {"ping": 1}}
    with pytest.raises(UnknownMethod):
        await thermo.capture("ReadImage", {})
    await thermo.aclose()
