"""The config's JSON Schema, generated from the models for editors.

``config/ferry.schema.json`` is this function's output, written by
``scripts/gen_config_schema.py``; a test keeps the two equal. Point an editor at
it with ``"$schema": "ferry.schema.json"`` in a config file to get completion,
hover docs and red squiggles. The schema rejects unknown keys so that typos
stand out; the loader itself only warns about them, as Viam does.
"""

from __future__ import annotations

import json

from actors.config._model import RobotConfig

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_json_schema() -> dict[str, object]:
    """The JSON Schema of a Ferry config file, as a JSON object.

    Example::

        schema = config_json_schema()
        schema["title"]  # "Ferry robot config"
    """
    schema: dict[str, object] = {"$schema": JSON_SCHEMA_DIALECT}
    schema.update(RobotConfig.model_json_schema(by_alias=True, mode="validation"))
    schema["title"] = "Ferry robot config"
    return schema


def render_config_schema() -> str:
    """``config_json_schema()`` as the exact text committed in ``config/``."""
    return json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n"
