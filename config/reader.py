"""Typed reading of one TOML table, reporting every problem with its place.

A `Reader` wraps a table. Each getter names the key it wants and the kind of value; a value of the
wrong type, out of range or not allowed becomes an issue in the report and the getter returns the
default, so validation goes on and finds the next problem. `finish()` reports every key nobody
asked for: a typo is an error, never silently ignored.
"""

from __future__ import annotations

import difflib
import ipaddress
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from config.defaults import NAME_MAX_LENGTH
from config.durations import format_duration, parse_duration
from config.issues import Report, Where

MISSING: Any = object()


def suggest(word: object, candidates: Collection[str]) -> str:
    """`; did you mean "x"?` for the closest candidate, or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def quoted(names: Collection[str], limit: int = 12) -> str:
    """`"a", "b", "c"` (cut after `limit` names), or `none`."""
    items = [f'"{n}"' for n in list(names)[:limit]]
    if len(names) > limit:
        items.append(f"… ({len(names)} in all)")
    return ", ".join(items) if items else "none"


def describe(value: object) -> str:
    """How a TOML value is named in an error message."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f'the string "{text}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def name_problem(value: object) -> str | None:
    """Why `value` cannot be a name, or None if it can."""
    if not isinstance(value, str):
        return f"a name must be a string, got {describe(value)}"
    if not value.strip():
        return "a name must not be empty"
    if value != value.strip():
        return f'"{value}" starts or ends with white space'
    if len(value) > NAME_MAX_LENGTH:
        return f"a name may have at most {NAME_MAX_LENGTH} characters, this one has {len(value)}"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        return "a name must not contain control characters or line breaks"
    return None


def ip_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f'"{value}" is not an IP address'
    return None


class Reader:
    """One TOML table being read; see the module docstring."""

    def __init__(self, data: Mapping, where: Where, report: Report) -> None:
        self.data = data
        self.where = where
        self.report = report
        self._asked: list[str] = []

    # --- plumbing ------------------------------------------------------------------------------
    def at(self, key: str) -> Where:
        return self.where.child(key)

    def error(self, key: str | None, message: str) -> None:
        self.report.error(self.at(key) if key is not None else self.where, message)

    def warning(self, key: str | None, message: str) -> None:
        self.report.warning(self.at(key) if key is not None else self.where, message)

    def has(self, key: str) -> bool:
        return key in self.data

    def written_keys(self) -> list[str]:
        return list(self.data)

    def raw(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        """The value as parsed, or `default` (an error if `required` and absent)."""
        if key not in self._asked:
            self._asked.append(key)
        if key in self.data:
            return self.data[key]
        if required:
            self.error(key, "required key is missing")
        return default

    def skip(self, *keys: str) -> None:
        """Mark keys as read without reading them (already reported elsewhere)."""
        for key in keys or tuple(self.data):
            if key not in self._asked:
                self._asked.append(key)

    def finish(self) -> None:
        """Report every key of the table that no getter asked for."""
        for key in self.data:
            if key not in self._asked:
                hint = suggest(key, self._asked)
                if not hint and self._asked:
                    hint = f" (known keys here: {quoted(self._asked, 20)})"
                self.error(key, f"unknown key{hint}")

    def _typed(self, key: str, value: Any, kind: type | tuple, expected: str) -> bool:
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            self.error(key, f"expected {expected}, got {describe(value)}")
        return ok

    # --- scalars -------------------------------------------------------------------------------
    def string(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        value = self.raw(key, MISSING, required=required)
        if value is MISSING:
            return default
        if not self._typed(key, value, str, "a string"):
            return default
        if not value.strip():
            self.error(key, "must not be empty")
            return default
        if "\x00" in value:
            self.error(key, "must not contain a NUL character")
            return default
        return value

    def name(self, key: str = "name") -> str | None:
        value = self.raw(key, MISSING, required=True)
        if value is MISSING:
            return None
        problem = name_problem(value)
        if problem:
            self.error(key, problem)
            return None
        return value

    def integer(
        self, key: str, default: Any, bounds: tuple[int, int], *, required: bool = False
    ) -> Any:
        value = self.raw(key, MISSING, required=required)
        if value is MISSING:
            return default
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            self.error(key, f'expected an integer, got the string "{value}" (remove the quotes)')
            return default
        if not self._typed(key, value, int, "an integer"):
            return default
        lo, hi = bounds
        if not lo <= value <= hi:
            self.error(key, f"must be between {lo} and {hi}, got {value}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, MISSING)
        if value is MISSING or not self._typed(key, value, bool, "true or false"):
            return default
        return value

    def duration(
        self, key: str, default: Any, bounds: tuple[float, float], *, required: bool = False
    ) -> Any:
        value = self.raw(key, MISSING, required=required)
        if value is MISSING:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.error(
                key,
                f'a duration needs a unit: write e.g. "{value}s" or "{value}ms", '
                f"not the bare number {value}",
            )
            return default
        if not self._typed(key, value, str, 'a duration such as "3s"'):
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return default
        lo, hi = bounds
        if not lo <= seconds <= hi:
            self.error(
                key,
                f'must be between {format_duration(lo)} and {format_duration(hi)}, got "{value}"',
            )
            return default
        return seconds

    def choice(
        self, key: str, choices: Collection[str], default: Any, *, required: bool = False
    ) -> Any:
        value = self.raw(key, MISSING, required=required)
        if value is MISSING:
            return default
        if not self._typed(key, value, str, f"one of {quoted(choices)}"):
            return default
        if value not in choices:
            self.error(
                key, f'"{value}" is not one of {quoted(choices, 20)}{suggest(value, choices)}'
            )
            return default
        return value

    def ip(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        value = self.string(key, MISSING, required=required)
        if value is MISSING:
            return default
        problem = ip_problem(value)
        if problem:
            self.error(key, problem)
            return default
        return value

    # --- arrays and tables ---------------------------------------------------------------------
    def strings(self, key: str, default: Any = None, *, required: bool = False, check=None) -> Any:
        """An array of distinct non-empty strings; `check(text)` may return a problem message."""
        value = self.raw(key, MISSING, required=required)
        if value is MISSING:
            return default
        if not self._typed(key, value, list, "an array of strings"):
            return default
        result: list[str] = []
        ok = True
        for index, item in enumerate(value):
            where = self.at(key).index(index)
            problem = None
            if not isinstance(item, str) or not item.strip():
                problem = f"expected a non-empty string, got {describe(item)}"
            elif item in result:
                problem = f'"{item}" is listed twice'
            elif check is not None:
                problem = check(item)
            if problem:
                self.report.error(where, problem)
                ok = False
            else:
                result.append(item)
        return tuple(result) if ok else default

    def table(self, key: str, default: Any = None) -> Any:
        """A free-form table, returned as a plain dict (not checked further)."""
        value = self.raw(key, MISSING)
        if value is MISSING or not self._typed(key, value, dict, "a table"):
            return default
        return dict(value)

    def sub(self, key: str, *, required: bool = False) -> Reader | None:
        """A reader for the sub-table under `key`, or None if absent or not a table."""
        value = self.raw(key, MISSING, required=required)
        if value is MISSING or not self._typed(key, value, dict, "a table"):
            return None
        return Reader(value, self.at(key), self.report)

    def optional(self, key: str) -> Reader:
        """The reader of an optional section: an empty one (all defaults) if absent or broken."""
        section = self.sub(key)
        return section if section is not None else Reader({}, self.at(key), self.report)

    def elements(self, key: str, kind: str) -> list[Reader]:
        """Readers for an array of tables (`[[key]]`), each shown as `kind "its name"`."""
        value = self.raw(key, MISSING)
        if value is MISSING:
            return []
        if isinstance(value, dict):
            self.error(key, f"expected an array of tables: write [[{key}]], not [{key}]")
            return []
        if not self._typed(key, value, list, f"an array of tables ([[{key}]])"):
            return []
        readers = []
        for index, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            label = f'{kind} "{name}"' if name_problem(name) is None else f"{kind} #{index + 1}"
            where = self.at(key).element(index, label)
            if not isinstance(item, dict):
                self.report.error(where, f"expected a table, got {describe(item)}")
                continue
            readers.append(Reader(item, where, self.report))
        return readers


def unique_names(readers: list[Reader], kind: str) -> list[tuple[Reader, str | None]]:
    """Read `name` of each element, reporting duplicates; returns (reader, name or None)."""
    seen: dict[str, int] = {}
    result = []
    for reader in readers:
        position = reader.where.path[-1] + 1
        name = reader.name()
        if name is not None and name in seen:
            reader.error("name", f'duplicate {kind} name "{name}" (also {kind} #{seen[name]})')
            name = None
        elif name is not None:
            seen[name] = position
        result.append((reader, name))
    return result
