"""Checks that span fields or resources, run by the models' validators.

Pydantic checks each value on its own; these functions check values against
each other (a method's required parameters, API vs type, unique names,
dependencies, the selective syncer). Each returns ``(loc, message)`` pairs
relative to the model being validated, which ``check_error`` raises with
exact paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.config._issues import Loc, describe_value, format_path
from actors.config._types import resource_api

if TYPE_CHECKING:
    from actors.config._model import (
        ComponentConfig,
        DataManagerServiceConfig,
        OtherServiceConfig,
        RobotConfig,
    )
    from actors.config._types import JsonObject

# Parameters some methods cannot work without (spec §1.2): checking them here
# turns "every capture fails" into one error at load time.
_REQUIRED_OBJECT_PARAMS = {"DoCommand": "docommand_input"}
_REQUIRED_STRING_PARAMS = {"Analogs": "reader_name", "Gpios": "pin_name"}


def required_param_issues(method: str, params: JsonObject) -> list[tuple[Loc, str]]:
    """Problems in ``additional_params`` that would make every capture of ``method`` fail."""
    issues: list[tuple[Loc, str]] = []

    def problem(key: str, message: str) -> None:
        issues.append((("additional_params", key), message))

    if (key := _REQUIRED_OBJECT_PARAMS.get(method)) is not None:
        if key not in params:
            problem(key, f"required by {method} (an object)")
        elif not isinstance(params[key], dict):
            problem(key, f"must be an object (got {describe_value(params[key])})")
    if (key := _REQUIRED_STRING_PARAMS.get(method)) is not None:
        if key not in params:
            problem(key, f"required by {method} (a string)")
        elif not isinstance(value := params[key], str) or not value.strip():
            problem(key, f"must be a non-empty string (got {describe_value(value)})")
    if "mime_type" in params and not isinstance(params["mime_type"], str):
        problem("mime_type", f"must be a string (got {describe_value(params['mime_type'])})")
    names = params.get("filter_source_names")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        problem("filter_source_names", "must be a list of strings")
    return issues


def api_issues(
    api: str | None, type_: str | None, namespace: str, *, kind: str
) -> list[tuple[Loc, str]]:
    """Problems with how a resource names its API (``kind`` is component or service)."""
    if api is None and type_ is None:
        example = "rdk:component:sensor" if kind == "component" else "rdk:service:vision"
        return [(("api",), f"required (e.g. {example!r}), or give 'type'")]
    if api is None:
        return []
    if api.split(":")[1] != kind:
        return [(("api",), f"must be a {kind} API '<namespace>:{kind}:<subtype>' (got {api!r})")]
    from_type = resource_api(None, type_, namespace, kind=kind)
    if type_ is not None and api != from_type:
        return [(("type",), f"{from_type} disagrees with api {api!r}")]
    return []


def _resources(
    config: RobotConfig,
) -> list[tuple[Loc, ComponentConfig | DataManagerServiceConfig | OtherServiceConfig]]:
    return [(("components", i), c) for i, c in enumerate(config.components)] + [
        (("services", i), s) for i, s in enumerate(config.services)
    ]


def name_issues(config: RobotConfig) -> list[tuple[Loc, str]]:
    """Resource names used twice."""
    # Names are unique across components and services: depends_on and
    # selective_syncer_name refer to resources by bare name.
    issues: list[tuple[Loc, str]] = []
    first: dict[str, Loc] = {}
    for loc, resource in _resources(config):
        if resource.name in first:
            where = format_path((*first[resource.name], "name"))
            issues.append(((*loc, "name"), f"duplicate name {resource.name!r} (see {where})"))
        else:
            first[resource.name] = loc
    return issues


def dependency_issues(config: RobotConfig) -> list[tuple[Loc, str]]:
    """``depends_on`` naming no resource, and dependency cycles (one error per cycle)."""
    resources = _resources(config)
    graph = {r.name: r.depends_on for _, r in resources}
    issues: list[tuple[Loc, str]] = []
    for loc, resource in resources:
        for j, dep in enumerate(resource.depends_on):
            if dep not in graph:
                issues.append(((*loc, "depends_on", j), f"no resource is named {dep!r}"))
    reported: set[frozenset[str]] = set()
    for loc, resource in resources:
        cycle = _cycle_from(resource.name, graph)
        # One error per cycle, on its first resource in document order.
        if cycle is not None and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            issues.append(((*loc, "depends_on"), "dependency cycle: " + " -> ".join(cycle)))
    return issues


def _cycle_from(start: str, graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency path from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def service_issues(config: RobotConfig) -> list[tuple[Loc, str]]:
    """A second data manager, and a selective syncer that is not a configured sensor."""
    issues: list[tuple[Loc, str]] = []
    managers = config.data_managers
    if not managers:
        return issues
    first, dm = managers[0]
    issues += [
        (("services", i), f"only one data_manager service (see services[{first}])")
        for i, _ in managers[1:]
    ]
    syncer = dm.attributes.selective_syncer_name
    if syncer:
        loc: Loc = ("services", first, "attributes", "selective_syncer_name")
        apis = {c.name: c.resolved_api for c in config.components}
        if syncer not in apis:
            issues.append((loc, f"no component is named {syncer!r}"))
        elif apis[syncer] != "rdk:component:sensor":
            issues.append((loc, f"{syncer!r} is {apis[syncer]}, not a sensor"))
    return issues
