"""The config a cloud-configured robot runs: the cloud's merged config plus its bootstrap.

The bootstrap file keeps what only the robot may know — the ``cloud`` section
(address, part, API key) — and says ``"config_source": "cloud"``; everything
else comes from the cloud. Composing is done on JSON documents, then the result
goes through the same ``load_plan`` as a local config file, so a cloud config
is validated on the robot exactly like a local one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.config import ConfigError, ConfigIssue, parse_config

if TYPE_CHECKING:
    from actors.codec import JsonValue
    from actors.config import CloudSettings


@final
@dataclass(frozen=True, slots=True)
class Bootstrap:
    """A parsed bootstrap config: where config comes from, and the raw cloud section."""

    source: str
    cloud: CloudSettings | None
    cloud_section: JsonValue


def read_bootstrap(text: str, *, source: str) -> Bootstrap | None:
    """The bootstrap of a config file that says ``"config_source": "cloud"``, validated;
    ``None`` for any other file (a local config is validated once, by ``load_plan``).

    Raises:
        ConfigError: a cloud bootstrap that is not a valid config (every problem by path).
    """
    try:
        document = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("config_source") != "cloud":
        return None
    resolved = parse_config(text, source=source).resolve()
    return Bootstrap(resolved.config_source, resolved.cloud, document.get("cloud"))


def compose(bootstrap: Bootstrap, cloud_text: str | None, *, source: str) -> str:
    """The effective config text: the cloud's document with the bootstrap's ``cloud``.

    ``cloud_text`` ``None`` (no config from the cloud or the cache yet) gives a
    config with no components: the robot runs, captures nothing, and waits.

    Raises:
        ConfigError: the cloud's text is not a JSON object, or it carries keys
            only the bootstrap may set.
    """
    document: dict[str, JsonValue] = {}
    if cloud_text is not None:
        try:
            decoded = json.loads(cloud_text)
        except json.JSONDecodeError as exc:
            raise ConfigError(source, [ConfigIssue("", f"invalid JSON: {exc.msg}")]) from None
        if not isinstance(decoded, dict):
            raise ConfigError(source, [ConfigIssue("", "must be a JSON object")])
        bad = [k for k in ("cloud", "config_source") if k in decoded]
        if bad:
            issues = [ConfigIssue(k, "only the robot's bootstrap config sets this") for k in bad]
            raise ConfigError(source, issues)
        document = decoded
    document["cloud"] = bootstrap.cloud_section
    return json.dumps(document)
