"""Dependencies among the resources of a group: cycle detection and start order.

Both are iterative (an explicit stack, Kahn's algorithm), so a chain of thousands of resources can
never hit the recursion limit (SPEC §12-30/32). `deps` maps each name to the names it depends on,
in declaration order; names outside `deps` are ignored (reported elsewhere as unknown).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

_WHITE, _GRAY, _BLACK = 0, 1, 2


def find_cycles(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each dependency cycle once, as `[a, b, ..., a]` (a depends on b ...), starting at the
    member declared first."""
    position = {name: i for i, name in enumerate(deps)}
    color = dict.fromkeys(deps, _WHITE)
    cycles: list[list[str]] = []
    found: set[frozenset[str]] = set()
    for root in deps:
        if color[root] != _WHITE:
            continue
        color[root] = _GRAY
        path = [root]
        on_path = {root: 0}
        stack = [iter(deps[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                done = path.pop()
                del on_path[done]
                color[done] = _BLACK
                stack.pop()
            elif child not in color:
                continue
            elif color[child] == _GRAY:
                cycle = path[on_path[child] :]
                key = frozenset(cycle)
                if key not in found:
                    found.add(key)
                    start = cycle.index(min(cycle, key=position.__getitem__))
                    cycle = cycle[start:] + cycle[:start]
                    cycles.append([*cycle, cycle[0]])
            elif color[child] == _WHITE:
                color[child] = _GRAY
                on_path[child] = len(path)
                path.append(child)
                stack.append(iter(deps[child]))
    return cycles


def start_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Names with every dependency before its dependents, otherwise in declaration order.
    Stop in the reverse order. Raises ValueError if there is a cycle."""
    position = {name: i for i, name in enumerate(deps)}
    waiting = {name: len({d for d in deps[name] if d in deps}) for name in deps}
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name in deps:
        for dep in set(deps[name]):
            if dep in deps:
                dependents[dep].append(name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(deps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, position[dependent])
    if len(order) != len(deps):
        raise ValueError("dependency cycle")
    return order


def describe_cycle(cycle: list[str], limit: int = 10) -> str:
    """`"a" → "b" → "a"`, shortened in the middle for long cycles."""
    names = [f'"{name}"' for name in cycle]
    if len(names) > limit:
        names = [*names[: limit - 2], "…", *names[-2:]]
        return " → ".join(names) + f" ({len(cycle) - 1} resources)"
    return " → ".join(names)
