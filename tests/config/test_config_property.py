"""Whatever the input, validation ends in a Cluster or a ConfigError — never another exception."""

from __future__ import annotations

import copy
import os
import re
import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import DEFAULT_TYPES, ConfigError, parse_config, validate
from config.loader import SECTIONS


def read(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = {"echo"}
ALL_TYPES = DEFAULT_TYPES.with_implemented(
    **{k: list(DEFAULT_TYPES.of(k)) for k in ("heartbeat", "np", "resource", "monitor", "alert")}
)
SKETCH = tomllib.loads(
    re.sub(
        r"(?m)^# (?=\[|[A-Za-z_]+ = )",
        "",
        read(os.path.join(REPO, "config", "examples", "two-node.toml")),
    )
)

KEYS = sorted(
    set(SECTIONS)
    | {p.name for kind in ("heartbeat", "np", "resource", "monitor", "alert")
       for spec in DEFAULT_TYPES.of(kind).values() for p in spec.params}
    | {"name", "type", "servers", "per_server", "depends_on", "activation", "deactivation",
       "retry", "failover_threshold", "final_action", "target", "target_type", "recovery",
       "monitoring", "interval", "timeout", "addresses", "subnet", "actor", "kind", "args",
       "profile", "heartbeat_interval", "heartbeat_timeout", "max_restarts", "beat_timeout",
       "resource", "node1", "public"}
)  # fmt: skip
POOL = ["node1", "node2", "public", "interconnect", "web", "httpd", "web ip", "echo", "fip",
        "exec", "lanhb", "pingnp", "pidw", "mail", "3s", "500ms", "010s", "198.18.0.11",
        "198.18.0.0/24", "resource", "group", "local_server", "do_nothing", "auto", ""]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(POOL),
    st.text(max_size=6),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), values, max_size=10)


def leaf_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaf_paths(value, (*prefix, index))


PATHS = [p for p in leaf_paths(SKETCH) if p]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    try:
        parse_config(text, actor_kinds=KINDS)
    except ConfigError as exc:
        assert exc.errors


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_config_error(data: bytes) -> None:
    try:
        parse_config(data, actor_kinds=KINDS)
    except ConfigError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans())
def test_arbitrary_documents_never_crash_validation(data: dict, typed: bool) -> None:
    cluster, issues = validate(data, types=ALL_TYPES if typed else None, actor_kinds=KINDS)
    assert (cluster is None) == any(i.level == "error" for i in issues)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_mutated_valid_configuration_never_crashes_validation(changes) -> None:
    data = copy.deepcopy(SKETCH)
    for path, value in changes:
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    cluster, issues = validate(data, types=ALL_TYPES, actor_kinds=KINDS)
    assert (cluster is None) == any(i.level == "error" for i in issues)
    for issue in issues:
        assert issue.message and isinstance(issue.path, tuple)
