"""Resource dependencies: unknown names, cycles, start order — never unbounded recursion
(SPEC §12-30/32)."""

from __future__ import annotations

import pytest

from config.dependencies import describe_cycle, find_cycles, start_order


def group(*resources: tuple[str, list[str]]) -> str:
    text = '[[group]]\nname = "web"\n'
    for name, deps in resources:
        text += f'[[group.resource]]\nname = "{name}"\ntype = "exec"\ndepends_on = {deps!r}\n'
    return text.replace("'", '"')


def test_start_order_puts_dependencies_first(probe) -> None:
    g = probe.valid(
        group(("app", ["db", "ip"]), ("db", ["disk"]), ("ip", []), ("disk", [])), typed=True
    ).group("web")
    assert g.start_order == ("ip", "disk", "db", "app")
    assert g.resource("app").depends_on == ("db", "ip")


def test_dependency_cycle(probe) -> None:
    e = probe.one_error(group(("a", ["b"]), ("b", ["c"]), ("c", ["a"])), typed=True)
    assert e.path == ("group", 0, "resource", 0, "depends_on")
    assert e.place == 'group "web" → resource "a" → depends_on'
    assert e.message == 'dependency cycle: "a" → "b" → "c" → "a"'


def test_cycle_is_reported_at_its_first_declared_member(probe) -> None:
    e = probe.one_error(group(("x", []), ("c", ["a"]), ("a", ["c"])), typed=True)
    assert e.path == ("group", 0, "resource", 1, "depends_on")
    assert e.message == 'dependency cycle: "c" → "a" → "c"'


def test_self_dependency_and_two_cycles(probe) -> None:
    found = probe.errors(group(("a", ["a"]), ("b", ["c"]), ("c", ["b"])), typed=True)
    assert [(i.path[3], i.message) for i in found] == [
        (0, 'dependency cycle: "a" → "a"'),
        (1, 'dependency cycle: "b" → "c" → "b"'),
    ]


def test_unknown_and_cross_group_dependencies(probe) -> None:
    text = group(("a", ["b", "nope", "x"]), ("b", []))
    text += '[[group]]\nname = "other"\n[[group.resource]]\nname = "x"\ntype = "exec"\n'
    # "x" is declared after "a": a dependency on a later group's resource is still refused
    found = probe.errors(text, typed=True)
    assert [i.path for i in found] == [
        ("group", 0, "resource", 0, "depends_on", 1),
        ("group", 0, "resource", 0, "depends_on", 2),
    ]
    assert found[0].message == 'unknown resource "nope" (resources of this group: "a", "b")'
    text = '[[group]]\nname = "other"\n[[group.resource]]\nname = "x"\ntype = "exec"\n'
    text += group(("a", ["x"]))
    e = probe.one_error(text, typed=True)
    assert e.message == (
        'resource "x" is in group "other": a resource can only depend on resources of its own group'
    )


def chain(n: int, *, closed: bool) -> str:
    parts = ['[[group]]\nname = "long"\n']
    for i in range(n):
        dep = f"r{i + 1}" if i + 1 < n else ("r0" if closed else None)
        deps = f'["{dep}"]' if dep else "[]"
        parts.append(f'[[group.resource]]\nname = "r{i}"\ntype = "exec"\ndepends_on = {deps}\n')
    return "".join(parts)


def test_a_chain_of_2000_resources_is_fine(probe) -> None:
    g = probe.valid(chain(2000, closed=False), typed=True).group("long")
    assert g.start_order[0] == "r1999" and g.start_order[-1] == "r0"


def test_a_cycle_of_2000_resources_is_one_error(probe) -> None:
    e = probe.one_error(chain(2000, closed=True), typed=True)
    assert e.path == ("group", 0, "resource", 0, "depends_on")
    assert e.message.startswith('dependency cycle: "r0" → "r1" → ')
    assert e.message.endswith('→ "r1999" → "r0" (2000 resources)')


def test_graph_functions_directly() -> None:
    deps = {f"n{i}": [f"n{i + 1}"] for i in range(50_000)}
    deps["n50000"] = []
    assert find_cycles(deps) == []
    assert start_order(deps)[0] == "n50000"
    deps["n50000"] = ["n0"]
    (cycle,) = find_cycles(deps)
    assert len(cycle) == 50_002 and cycle[0] == cycle[-1] == "n0"
    with pytest.raises(ValueError):
        start_order(deps)
    assert find_cycles({"a": ["missing"]}) == []
    assert describe_cycle(["a", "b", "a"]) == '"a" → "b" → "a"'
