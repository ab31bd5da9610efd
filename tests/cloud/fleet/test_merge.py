"""Merging fragments into a part's config: what a robot receives, and every way it is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.config import ConfigError, parse_config
from cloud.fleet.merge import (
    Fragment,
    check_fragment,
    merge,
    parse_part_config,
    revision_of,
    set_frequency,
)

if TYPE_CHECKING:
    from actors.codec import JsonObject

FREQ_PATH = (
    "components.{c}.service_configs.data_manager.attributes.capture_methods.Readings"
    ".capture_frequency_hz"
)


def sensor(name: str, hz: float) -> JsonObject:
    return {
        "name": name,
        "api": "rdk:component:sensor",
        "model": "fake",
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {
                    "capture_methods": [{"method": "Readings", "capture_frequency_hz": hz}]
                },
            }
        ],
    }


DATA_MANAGER: JsonObject = {
    "name": "dm",
    "api": "rdk:service:data_manager",
    "attributes": {"sync_interval_mins": 0.1},
}


def sensors_fragment(hz: float = 2.0) -> Fragment:
    return Fragment("sensors", 1, {"components": [sensor("temp", hz), sensor("hum", 1)]})


def frequencies(document: JsonObject) -> dict[str, float]:
    with_manager = dict(document)
    if not with_manager.get("services"):
        with_manager["services"] = [DATA_MANAGER]
    resolved = parse_config(with_manager).resolve()
    return {m.name: m.capture_frequency_hz for m in resolved.capture_methods}


def test_merged_config_is_own_part_plus_fragments_and_validates() -> None:
    part = parse_part_config("p1", {"fragments": ["sensors"], "services": [DATA_MANAGER]})
    merged = merge("p1", 3, part, {"sensors": sensors_fragment()})
    assert frequencies(merged.document) == {"temp": 2.0, "hum": 1.0}
    assert merged.label == "part p1 v3 + fragment sensors v1"
    assert merged.revision == revision_of(merged.document)
    assert "fragments" not in merged.document


def test_an_override_changes_only_this_part_and_the_fragment_is_untouched() -> None:
    fragment = sensors_fragment(hz=2.0)
    mods = [{"fragment": "sensors", "mods": [{"$set": {FREQ_PATH.format(c="temp"): 7}}]}]
    part = parse_part_config(
        "p2", {"fragments": ["sensors"], "fragment_mods": mods, "services": [DATA_MANAGER]}
    )
    merged = merge("p2", 1, part, {"sensors": fragment})
    assert frequencies(merged.document) == {"temp": 7.0, "hum": 1.0}
    plain = merge(
        "p1", 1, parse_part_config("p1", {"fragments": ["sensors"]}), {"sensors": fragment}
    )
    assert frequencies(plain.document) == {"temp": 2.0, "hum": 1.0}


def test_revision_follows_content_not_versions() -> None:
    part = parse_part_config("p1", {"fragments": ["sensors"]})
    a = merge("p1", 1, part, {"sensors": sensors_fragment(2.0)})
    b = merge("p1", 2, part, {"sensors": Fragment("sensors", 9, sensors_fragment(2.0).document)})
    c = merge("p1", 1, part, {"sensors": sensors_fragment(3.0)})
    assert a.revision == b.revision != c.revision


def test_mod_path_that_does_not_exist_is_refused_with_where_it_is_written() -> None:
    mods = [{"fragment": "sensors", "mods": [{"$set": {FREQ_PATH.format(c="nope"): 7}}]}]
    part = parse_part_config("p1", {"fragments": ["sensors"], "fragment_mods": mods})
    with pytest.raises(ConfigError) as caught:
        merge("p1", 1, part, {"sensors": sensors_fragment()})
    text = str(caught.value)
    assert "fragment_mods[0].mods[0].$set.components.nope" in text
    assert "no item named 'nope'" in text


def test_invalid_value_through_a_mod_gets_the_agents_message_at_the_fragment_path() -> None:
    mods = [{"fragment": "sensors", "mods": [{"$set": {FREQ_PATH.format(c="hum"): "fast"}}]}]
    part = parse_part_config("p1", {"fragments": ["sensors"], "fragment_mods": mods})
    with pytest.raises(ConfigError) as caught:
        merge("p1", 1, part, {"sensors": sensors_fragment()})
    assert (
        "fragment 'sensors' components[1].service_configs[0].attributes.capture_methods[0]"
        '.capture_frequency_hz: must be a number (got "fast")' in str(caught.value)
    )


def test_a_name_defined_by_the_part_and_a_fragment_is_refused_naming_both() -> None:
    part = parse_part_config("p1", {"fragments": ["sensors"], "components": [sensor("temp", 1)]})
    with pytest.raises(ConfigError) as caught:
        merge("p1", 1, part, {"sensors": sensors_fragment()})
    assert (
        "fragment 'sensors' components[0].name: 'temp' is also defined by part config components[0]"
        in str(caught.value)
    )


def test_missing_fragment_is_refused() -> None:
    part = parse_part_config("p1", {"fragments": ["ghost"]})
    with pytest.raises(ConfigError, match="fragment 'ghost' does not exist"):
        merge("p1", 1, part, {})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"cloud": {}}, "cloud: belongs in the robot's bootstrap config"),
        ({"fragments": "sensors"}, "fragments: must be a list of fragment names"),
        ({"fragments": [3]}, "fragments[0]: must be a name"),
        (
            {"fragments": [{"name": "s", "version": 0}]},
            "fragments[0].version: must be an integer >= 1",
        ),
        ({"fragments": ["s", "s"]}, "fragment 's' is listed twice"),
        (
            {"fragment_mods": [{"fragment": "x", "mods": []}]},
            "fragment_mods[0].fragment: 'x' is not in",
        ),
        (
            {"fragments": ["s"], "fragment_mods": [{"fragment": "s", "mods": [{"$push": {}}]}]},
            "fragment_mods[0].mods[0]: must be",
        ),
        ([], "<root>: must be a JSON object"),
    ],
)
def test_malformed_part_config_is_refused_by_path(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_part_config("p1", document)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_fragment_is_checked_by_the_agents_validator() -> None:
    check_fragment("sensors", {"components": [sensor("temp", 1)]})
    with pytest.raises(ConfigError, match=r"capture_frequency_hz: must be a number"):
        check_fragment("sensors", {"components": [sensor("temp", "fast")]})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cloud: not allowed in a fragment"):
        check_fragment("sensors", {"cloud": {}})
    with pytest.raises(ConfigError, match="name must be printable"):
        check_fragment("a/b", {})


def test_unset_removes_a_field_and_a_missing_one_is_an_error() -> None:
    path = FREQ_PATH.format(c="temp")
    mods = [{"fragment": "sensors", "mods": [{"$unset": {path: ""}}]}]
    part = parse_part_config("p1", {"fragments": ["sensors"], "fragment_mods": mods})
    merged = merge("p1", 1, part, {"sensors": sensors_fragment()})
    assert "capture_frequency_hz" not in str(merged.document["components"][0])  # type: ignore[index]
    twice = [{"fragment": "sensors", "mods": [{"$unset": {path: ""}}, {"$unset": {path: ""}}]}]
    part = parse_part_config("p1", {"fragments": ["sensors"], "fragment_mods": twice})
    with pytest.raises(ConfigError, match="no field 'capture_frequency_hz' to unset"):
        merge("p1", 1, part, {"sensors": sensors_fragment()})


def test_set_frequency_changes_one_method_and_names_what_exists_otherwise() -> None:
    document = sensors_fragment(2.0).document
    changed = set_frequency(document, "temp", "Readings", 10)
    assert frequencies(changed) == {"temp": 10.0, "hum": 1.0}
    assert frequencies(dict(document)) == {"temp": 2.0, "hum": 1.0}
    with pytest.raises(ConfigError, match=r"no component 'x' \(has: temp, hum\)"):
        set_frequency(document, "x", "Readings", 1)
    with pytest.raises(ConfigError, match=r"no capture method 'Get' \(has: Readings\)"):
        set_frequency(document, "temp", "Get", 1)
