"""Builders for small config documents, so each test shows only what it varies."""

from __future__ import annotations

Doc = dict[str, object]


def component(name: str = "s1", *methods: Doc, **keys: object) -> Doc:
    """A fake sensor, capturing ``methods`` when any are given."""
    doc: Doc = {"name": name, "api": "rdk:component:sensor", "model": "fake"}
    if methods:
        doc["service_configs"] = [
            {"type": "data_manager", "attributes": {"capture_methods": list(methods)}}
        ]
    doc.update(keys)
    return doc


def method(method_name: str = "Readings", hz: object = 1.0, **keys: object) -> Doc:
    """A capture method entry (``keys`` may include the entry's own ``name``)."""
    return {"method": method_name, "capture_frequency_hz": hz, **keys}


def data_manager(name: str = "dm", **attributes: object) -> Doc:
    """A data manager service with ``attributes``."""
    return {"name": name, "type": "data_manager", "attributes": attributes}


def robot(*components: Doc, services: list[Doc] | None = None, **keys: object) -> Doc:
    """A config with ``components`` and (by default) one data manager."""
    return {
        "components": list(components),
        "services": [data_manager()] if services is None else services,
        **keys,
    }


CLOUD: Doc = {
    "address": "127.0.0.1:8443",
    "part_id": "p",
    "api_key_id": "k",
    "api_key": "secret",
    "insecure": True,
}
