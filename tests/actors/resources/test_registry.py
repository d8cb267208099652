"""The driver table and the configuration's catalog agree: a type is usable in a configuration
exactly when a driver exists for it, and every driver honours the contract's method set."""

from __future__ import annotations

import inspect

from actors.resources.base import Driver
from actors.resources.registry import DRIVERS, driver_class
from config.catalog import RESOURCE_TYPES


def test_implemented_types_are_exactly_the_drivers() -> None:
    implemented = {name for name, spec in RESOURCE_TYPES.items() if spec.implemented}
    assert implemented == set(DRIVERS)


def test_every_driver_is_a_driver_with_start_stop_and_active() -> None:
    for name in DRIVERS:
        cls = driver_class(name)
        assert issubclass(cls, Driver), name
        for method in ("start", "stop", "active"):
            assert getattr(cls, method) is not getattr(Driver, method), f"{name}.{method}"
            assert inspect.iscoroutinefunction(getattr(cls, method)), f"{name}.{method}"
