"""Fixtures of the configuration tests: `probe` checks BASE + a fragment of configuration.

The repository runs pytest with --import-mode=importlib, so helpers are shared as fixtures.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from config import DEFAULT_TYPES, check_text
from config.issues import Issue

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "config", "examples")
KINDS = {"echo"}

# No type implemented: the untyped probe checks the sections' own rules without type rules
# (such as "two servers need a LAN heartbeat") getting in the way.
NO_TYPES = replace(
    DEFAULT_TYPES,
    **{
        kind: {n: replace(t, implemented=False) for n, t in DEFAULT_TYPES.of(kind).items()}
        for kind in ("heartbeat", "np", "resource", "monitor", "alert")
    },
)

# Every type marked implemented: the generic machinery is tested with this table.
ALL_TYPES = DEFAULT_TYPES.with_implemented(
    **{
        kind: list(DEFAULT_TYPES.of(kind))
        for kind in ("heartbeat", "np", "resource", "monitor", "alert")
    }
)

BASE = """
[cluster]
name = "test"
key_file = "cluster.key"

[[network]]
name = "public"
subnet = "198.18.0.0/24"

[[network]]
name = "interconnect"
subnet = "198.19.0.0/24"

[[server]]
name = "node1"
addresses = { public = "198.18.0.11", interconnect = "198.19.0.11" }

[[server]]
name = "node2"
addresses = { public = "198.18.0.12", interconnect = "198.19.0.12" }
"""

# With heartbeat types implemented, two servers need a LAN heartbeat.
TYPED_BASE = (
    BASE
    + """
[[heartbeat]]
name = "lanhb1"
type = "lanhb"
network = "interconnect"
"""
)


class Probe:
    """Validate BASE + `text` with no type implemented; with `typed=True`, TYPED_BASE + `text`
    against ALL_TYPES. `base` is for tests that validate against the real type table: it has
    the LAN heartbeat two servers need."""

    base = TYPED_BASE
    typed_base = TYPED_BASE
    all_types = ALL_TYPES
    kinds = KINDS
    examples = EXAMPLES
    repo = REPO

    def check(self, text: str, *, typed: bool = False):
        """(cluster or None, issues)."""
        if typed:
            return check_text(TYPED_BASE + text, types=ALL_TYPES, actor_kinds=KINDS)
        return check_text(BASE + text, types=NO_TYPES, actor_kinds=KINDS)

    def errors(self, text: str, *, typed: bool = False) -> list[Issue]:
        return [i for i in self.check(text, typed=typed)[1] if i.level == "error"]

    def warnings(self, text: str, *, typed: bool = False) -> list[Issue]:
        return [i for i in self.check(text, typed=typed)[1] if i.level == "warning"]

    def one_error(self, text: str, *, typed: bool = False) -> Issue:
        found = self.errors(text, typed=typed)
        assert len(found) == 1, "\n".join(map(str, found))
        return found[0]

    def valid(self, text: str, *, typed: bool = False):
        cluster, issues = self.check(text, typed=typed)
        assert cluster is not None, "\n".join(map(str, issues))
        return cluster


@pytest.fixture
def probe() -> Probe:
    return Probe()
