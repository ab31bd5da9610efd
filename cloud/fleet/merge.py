"""Fleet config documents: fragments, part configs, and the merged config a robot runs.

A **fragment** is a reusable piece of robot config: ``components`` and
``services`` only. A **part config** is a robot config that may also list the
fragments it uses (``"fragments": ["sensors", {"name": "arms", "version": 3}]``)
and override fields of them for this part alone::

    "fragment_mods": [{"fragment": "sensors", "mods": [
        {"$set": {"components.temp.service_configs.data_manager.attributes"
                  ".capture_methods.Readings.capture_frequency_hz": 5}}]}]

A mod's path walks objects by key and lists by index or by an element's
``name``, ``method``, ``type`` or ``api`` (so ``capture_methods.Readings`` is
the method named Readings). The merged config is the part's own components and
services followed by each fragment's (mods applied), checked by the agent's own
validator (``actors.config.parse_config``), so the cloud rejects exactly what a
robot would, with the same messages; paths into a fragment say which one.
Pure functions: the store and the CLI call them, and tests drive them directly.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.config import ConfigError, ConfigIssue, parse_config

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actors.codec import JsonValue

FRAGMENT_KEYS = frozenset({"components", "services", "$schema"})
# The robot's bootstrap config owns these: they never come from the cloud.
BOOTSTRAP_ONLY_KEYS = ("cloud", "config_source")
_LIST_KEYS = ("name", "method", "type", "api")
_OPS = ("$set", "$unset")


@final
@dataclass(frozen=True, slots=True)
class FragmentRef:
    """A fragment a part uses: its name and, when pinned, its version (else the latest)."""

    name: str
    version: int | None = None


@final
@dataclass(frozen=True, slots=True)
class Mod:
    """One override of a fragment field: ``$set`` a value or ``$unset`` a key at ``path``."""

    op: str
    path: str
    value: JsonValue
    where: str
    """Where the mod is written in the part config, for messages."""


@final
@dataclass(frozen=True, slots=True)
class PartConfig:
    """A part config, parsed: the fragments it uses, its mods per fragment, and its own part."""

    part_id: str
    fragments: tuple[FragmentRef, ...]
    mods: Mapping[str, tuple[Mod, ...]]
    own: Mapping[str, JsonValue]


@final
@dataclass(frozen=True, slots=True)
class Fragment:
    """One stored version of a fragment."""

    name: str
    version: int
    document: Mapping[str, JsonValue]


@final
@dataclass(frozen=True, slots=True)
class Merged:
    """The config a part runs: the document, its revision (content hash) and a label."""

    document: dict[str, JsonValue]
    revision: str
    label: str


def canonical_json(document: Mapping[str, JsonValue]) -> str:
    """The one JSON text of a document (sorted keys, no spaces): what revisions hash."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def revision_of(document: Mapping[str, JsonValue]) -> str:
    """A merged document's revision: 16 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()[:16]


def check_fragment(name: str, document: JsonValue) -> None:
    """Validates a fragment on its own, as the agent would validate a config.

    Raises:
        ConfigError: not an object, a key a fragment may not hold, or an invalid
            component or service (``<json path>: <problem>``).
    """
    source = f"fragment {name!r}"
    if not name or not name.isprintable() or name != name.strip() or "/" in name:
        raise ConfigError(source, [ConfigIssue("", "a fragment name must be printable, no '/'")])
    obj = _object(document, source)
    extra = sorted(set(obj) - FRAGMENT_KEYS)
    if extra:
        issues = [
            ConfigIssue(key, "not allowed in a fragment (it holds components and services)")
            for key in extra
        ]
        raise ConfigError(source, issues)
    parse_config(obj, source=source)


def parse_part_config(part_id: str, document: JsonValue) -> PartConfig:
    """Parses a part config's fragment list and mods (the rest is checked when merged).

    Raises:
        ConfigError: a malformed ``fragments`` or ``fragment_mods`` entry, a mod
            for a fragment the part does not use, or a bootstrap-only key.
    """
    source = f"config of part {part_id!r}"
    obj = _object(document, source)
    issues = [
        ConfigIssue(key, "belongs in the robot's bootstrap config, not in the cloud")
        for key in BOOTSTRAP_ONLY_KEYS
        if key in obj
    ]
    refs = _fragment_refs(obj.get("fragments", []), issues)
    mods = _fragment_mods(obj.get("fragment_mods", []), {r.name for r in refs}, issues)
    if issues:
        raise ConfigError(source, issues)
    own = {k: v for k, v in obj.items() if k not in ("fragments", "fragment_mods", "$schema")}
    return PartConfig(part_id=part_id, fragments=refs, mods=mods, own=own)


def merge(
    part_id: str, version: int, part: PartConfig, fragments: Mapping[str, Fragment]
) -> Merged:
    """The merged config of a part: its own part plus each fragment with its mods.

    Args:
        part_id: the part, for messages and the label.
        version: the part config's version, for the label.
        part: the parsed part config.
        fragments: every fragment the part uses, at the version it uses.

    Raises:
        ConfigError: a missing fragment, a mod whose path does not exist, a name
            defined twice, or a merged config the agent's validator rejects.
    """
    source = f"merged config of part {part_id!r}"
    issues: list[ConfigIssue] = []
    lists: dict[str, list[JsonValue]] = {"components": [], "services": []}
    origins: dict[str, list[str]] = {"components": [], "services": []}
    _add_items(lists, origins, part.own, "part config ", issues)
    label = [f"part {part_id} v{version}"]
    for ref in part.fragments:
        fragment = fragments.get(ref.name)
        if fragment is None:
            issues.append(ConfigIssue("fragments", f"fragment {ref.name!r} does not exist"))
            continue
        label.append(f"fragment {ref.name} v{fragment.version}")
        document = copy.deepcopy(dict(fragment.document))
        for mod in part.mods.get(ref.name, ()):
            problem = apply_mod(document, mod)
            if problem:
                issues.append(ConfigIssue(mod.where, problem))
        _add_items(lists, origins, document, f"fragment {ref.name!r} ", issues)
    if issues:
        raise ConfigError(source, issues)
    merged: dict[str, JsonValue] = {
        k: v for k, v in part.own.items() if k not in ("components", "services")
    }
    merged["components"] = lists["components"]
    merged["services"] = lists["services"]
    try:
        parse_config(merged, source=source)
    except ConfigError as exc:
        raise ConfigError(source, [_locate(i, origins) for i in exc.issues]) from None
    return Merged(merged, revision_of(merged), " + ".join(label))


def apply_mod(document: dict[str, JsonValue], mod: Mod) -> str:
    """Applies one mod to ``document`` in place; returns the problem, or ``""``."""
    segments = mod.path.split(".")
    if not mod.path or any(not s for s in segments):
        return f"{mod.path!r} is not a dotted path"
    node: JsonValue = document
    for depth, segment in enumerate(segments[:-1]):
        child, problem = _child(node, segment, create=mod.op == "$set")
        if problem:
            return f"{'.'.join(segments[: depth + 1])!r}: {problem}"
        node = child
    last = segments[-1]
    if isinstance(node, dict):
        if mod.op == "$set":
            node[last] = copy.deepcopy(mod.value)
        elif node.pop(last, _MISSING) is _MISSING:
            return f"{mod.path!r}: no field {last!r} to unset"
        return ""
    if isinstance(node, list):
        index, problem = _index(node, last)
        if problem:
            return f"{mod.path!r}: {problem}"
        if mod.op == "$set":
            node[index] = copy.deepcopy(mod.value)
        else:
            del node[index]
        return ""
    return f"{mod.path!r}: {'.'.join(segments[:-1])!r} is not an object or a list"


def set_frequency(
    document: Mapping[str, JsonValue], component: str, method: str, hz: float
) -> dict[str, JsonValue]:
    """A copy of a fragment with one capture method's ``capture_frequency_hz`` set.

    Raises:
        ConfigError: no such component, or it has no such capture method; the
            message lists the ones there are.
    """
    source = "set-frequency"
    result = copy.deepcopy(dict(document))
    components = result.get("components")
    found = (
        [c for c in components if isinstance(c, dict) and c.get("name") == component]
        if isinstance(components, list)
        else []
    )
    if not found:
        names = _names(components, "name")
        raise ConfigError(
            source, [ConfigIssue("components", f"no component {component!r} (has: {names})")]
        )
    methods: list[dict[str, JsonValue]] = []
    for service in _as_list(found[0].get("service_configs")):
        attributes = service.get("attributes") if isinstance(service, dict) else None
        if isinstance(attributes, dict):
            methods += [
                m for m in _as_list(attributes.get("capture_methods")) if isinstance(m, dict)
            ]
    matching = [m for m in methods if m.get("method") == method]
    if not matching:
        path = f"components.{component}.service_configs"
        have = _names(methods, "method")
        raise ConfigError(
            source, [ConfigIssue(path, f"no capture method {method!r} (has: {have})")]
        )
    for entry in matching:
        entry["capture_frequency_hz"] = hz
    return result


# ----------------------------------------------------------------- helpers

_MISSING = object()


def _object(document: JsonValue, source: str) -> dict[str, JsonValue]:
    if not isinstance(document, dict):
        raise ConfigError(source, [ConfigIssue("", "must be a JSON object")])
    return document


def _fragment_refs(raw: JsonValue, issues: list[ConfigIssue]) -> tuple[FragmentRef, ...]:
    if not isinstance(raw, list):
        issues.append(ConfigIssue("fragments", "must be a list of fragment names"))
        return ()
    refs: list[FragmentRef] = []
    for i, item in enumerate(raw):
        where = f"fragments[{i}]"
        if isinstance(item, str) and item:
            refs.append(FragmentRef(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            version = item.get("version")
            extra = set(item) - {"name", "version"}
            if extra:
                issues.append(ConfigIssue(where, f"unknown keys {sorted(extra)}"))
            elif version is not None and (
                not isinstance(version, int) or isinstance(version, bool) or version < 1
            ):
                issues.append(ConfigIssue(f"{where}.version", "must be an integer >= 1"))
            else:
                refs.append(FragmentRef(str(item["name"]), version))
        else:
            issues.append(ConfigIssue(where, 'must be a name or {"name": ..., "version": N}'))
    names = [r.name for r in refs]
    issues += [
        ConfigIssue("fragments", f"fragment {n!r} is listed twice")
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    return tuple(refs)


def _fragment_mods(
    raw: JsonValue, used: set[str], issues: list[ConfigIssue]
) -> dict[str, tuple[Mod, ...]]:
    if not isinstance(raw, list):
        issues.append(ConfigIssue("fragment_mods", "must be a list"))
        return {}
    out: dict[str, list[Mod]] = {}
    for i, entry in enumerate(raw):
        where = f"fragment_mods[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"fragment", "mods"}:
            issues.append(ConfigIssue(where, 'must be {"fragment": NAME, "mods": [...]}'))
            continue
        name, mods = entry["fragment"], entry["mods"]
        if not isinstance(name, str) or name not in used:
            issues.append(ConfigIssue(f"{where}.fragment", f"{name!r} is not in 'fragments'"))
            continue
        if not isinstance(mods, list):
            issues.append(ConfigIssue(f"{where}.mods", "must be a list"))
            continue
        for j, mod in enumerate(mods):
            out.setdefault(name, []).extend(_mods(mod, f"{where}.mods[{j}]", issues))
    return {name: tuple(mods) for name, mods in out.items()}


def _mods(raw: JsonValue, where: str, issues: list[ConfigIssue]) -> list[Mod]:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in _OPS:
        issues.append(
            ConfigIssue(where, 'must be {"$set": {PATH: VALUE}} or {"$unset": {PATH: ""}}')
        )
        return []
    op, fields = next(iter(raw.items()))
    if not isinstance(fields, dict) or not fields:
        issues.append(ConfigIssue(f"{where}.{op}", "must be a non-empty object of PATH: VALUE"))
        return []
    return [Mod(op, path, value, f"{where}.{op}.{path}") for path, value in fields.items()]


def _child(node: JsonValue, segment: str, *, create: bool) -> tuple[JsonValue, str]:
    if isinstance(node, dict):
        if segment not in node:
            if not create:
                return None, f"no field {segment!r}"
            node[segment] = {}
        return node[segment], ""
    if isinstance(node, list):
        index, problem = _index(node, segment)
        return (None, problem) if problem else (node[index], "")
    return None, "is not an object or a list"


def _index(items: list[JsonValue], segment: str) -> tuple[int, str]:
    if segment.isdigit():
        index = int(segment)
        if index >= len(items):
            return 0, f"index {index} is past the end ({len(items)} items)"
        return index, ""
    for key in _LIST_KEYS:
        hits = [
            i for i, item in enumerate(items) if isinstance(item, dict) and item.get(key) == segment
        ]
        if len(hits) == 1:
            return hits[0], ""
        if len(hits) > 1:
            return 0, f"{len(hits)} items have {key} {segment!r}; use an index"
    return 0, f"no item named {segment!r}"


def _add_items(
    lists: dict[str, list[JsonValue]],
    origins: dict[str, list[str]],
    document: Mapping[str, JsonValue],
    origin: str,
    issues: list[ConfigIssue],
) -> None:
    for key in ("components", "services"):
        items = document.get(key, [])
        if not isinstance(items, list):
            continue  # the validator reports it, with its path
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else None
            clash = [
                origins[key][n]
                for n, other in enumerate(lists[key])
                if isinstance(other, dict) and name is not None and other.get("name") == name
            ]
            if clash:
                issues.append(
                    ConfigIssue(
                        f"{origin}{key}[{i}].name", f"{name!r} is also defined by {clash[0]}"
                    )
                )
            lists[key].append(item)
            origins[key].append(f"{origin}{key}[{i}]")


def _locate(issue: ConfigIssue, origins: Mapping[str, list[str]]) -> ConfigIssue:
    """An issue in the merged document, re-pathed to the part config or fragment it came from."""
    for key, where in origins.items():
        prefix = f"{key}["
        if issue.path.startswith(prefix):
            index_text, _, rest = issue.path[len(prefix) :].partition("]")
            if index_text.isdigit() and int(index_text) < len(where):
                return ConfigIssue(where[int(index_text)] + rest, issue.message)
    return issue


def _as_list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def _names(items: JsonValue, key: str) -> str:
    names = [str(i.get(key)) for i in _as_list(items) if isinstance(i, dict)]
    return ", ".join(names) or "none"
