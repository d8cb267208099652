"""The one table of resource drivers: type name (config/catalog.py) → "module:Class".

A type is listed here exactly when config/catalog.py marks it `implemented=True`
(tests/actors/resources/test_registry.py holds the two together).
"""

from __future__ import annotations

import importlib

from actors.resources.base import Driver

DRIVERS: dict[str, str] = {
    "exec": "actors.resources.exec:ExecDriver",
    "fip": "actors.resources.fip:FloatingIp",
    "disk": "actors.resources.disk:DiskDriver",
    "volume": "actors.resources.volume:VolumeDriver",
    "nas": "actors.resources.nas:NasDriver",
    "ocf": "actors.resources.ocf:OcfDriver",
    "raw": "actors.resources.raw:RawDriver",
}


def driver_class(type_name: str) -> type[Driver]:
    try:
        target = DRIVERS[type_name]
    except KeyError:
        raise KeyError(f"no driver for resource type {type_name!r}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
