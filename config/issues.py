"""Configuration problems: where they are, what they are, and the one error type that carries them.

Every problem has a machine path (TOML keys and list indexes, e.g. `("group", 0, "resource", 1,
"ip")`) and a place a person can read (`group "web" → resource "fip1" → ip`). Validation collects
all of them into a `Report` and never stops at the first one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ERROR = "error"
WARNING = "warning"

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_label(key: object) -> str:
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else f'"{text}"'


@dataclass(frozen=True)
class Where:
    """A position in the configuration: the machine path and the person-readable labels."""

    path: tuple = ()
    labels: tuple[str, ...] = ()

    def child(self, key: str) -> Where:
        """The value under `key` of the table here."""
        return Where(self.path + (key,), self.labels + (_key_label(key),))

    def element(self, index: int, label: str) -> Where:
        """Element `index` of the array of tables here, shown as `label` (e.g. `group "web"`)."""
        return Where(self.path + (index,), self.labels[:-1] + (label,))

    def index(self, index: int) -> Where:
        """Element `index` of a plain array: the path gets the index, the place stays the array."""
        return Where(self.path + (index,), self.labels)

    @property
    def place(self) -> str:
        return " → ".join(self.labels)


@dataclass(frozen=True)
class Issue:
    """One problem found in a configuration."""

    path: tuple
    message: str
    level: str = ERROR
    place: str = ""

    def __str__(self) -> str:
        where = f"{self.place}: " if self.place else ""
        return f"{self.level}: {where}{self.message}"

    def as_dict(self) -> dict:
        return {"path": list(self.path), "place": self.place, "message": self.message}


@dataclass
class Report:
    """Collects the issues of one validation run, in the order they were found."""

    issues: list[Issue] = field(default_factory=list)

    def error(self, where: Where, message: str) -> None:
        self.issues.append(Issue(where.path, message, ERROR, where.place))

    def warning(self, where: Where, message: str) -> None:
        self.issues.append(Issue(where.path, message, WARNING, where.place))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == WARNING]


class ConfigError(Exception):
    """A configuration that cannot be used; `issues` holds every error (and warning) found."""

    def __init__(self, issues: list[Issue], source: str = "") -> None:
        self.issues = list(issues)
        self.source = source
        super().__init__(self._text())

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == WARNING]

    def _text(self) -> str:
        n = len(self.errors)
        head = f"invalid configuration {self.source}".rstrip()
        head += f" ({n} error{'s' if n != 1 else ''}):"
        return "\n".join([head, *(f"  {issue}" for issue in self.issues)])
