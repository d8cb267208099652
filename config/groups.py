"""`[[group]]` and `[[group.resource]]`: failover groups and what they own.

A group's `servers` is its failover policy (first = preferred; default: every server in priority
order). Resource names are unique across the cluster (monitors and commands name resources
without their group). `depends_on` names resources of the same group; cycles are refused and the
start order (dependencies first, else declaration order) is computed here, iteratively.

A resource that does not say `depends_on` depends on every resource of its group in an earlier
tier (`DEPENDENCY_TIERS`): addresses first, then volumes, then disks and mounts, then
applications — the original's default dependencies. `depends_on = []` opts out.
"""

from __future__ import annotations

from dataclasses import replace

from config import defaults as d
from config.dependencies import describe_cycle, find_cycles, start_order
from config.model import Group, GroupResource
from config.policies import read_failure_policy
from config.reader import Reader, quoted, suggest, unique_names
from config.references import Known, ResourceInfo, read_servers
from config.typespec import TypeTables, read_params, read_type

# type → tier: a resource depends by default on every resource of a lower tier in its group
DEPENDENCY_TIERS = {
    "fip": 0,
    "vip": 0,
    "volume": 1,
    "raw": 2,
    "disk": 2,
    "md": 2,
    "nas": 2,
    "exec": 3,
    "ocf": 3,
}


def read_groups(top: Reader, known: Known, types: TypeTables) -> tuple[Group, ...]:
    named = unique_names(top.elements("group", "group"), "group")
    for r, name in named:
        if name is not None:
            known.groups[name] = r.where
    groups = []
    for r, name in named:
        servers = read_servers(r, known)
        startup = r.choice("startup", d.AUTO_MANUAL, d.GROUP_STARTUP)
        failover = r.choice("failover", d.AUTO_MANUAL, d.GROUP_FAILOVER)
        failback = r.choice("failback", d.AUTO_MANUAL, d.GROUP_FAILBACK)
        exclusive = r.choice("exclusive", d.EXCLUSIVE_MODES, d.GROUP_EXCLUSIVE)
        on_double = r.choice(
            "on_double_activation", d.DOUBLE_ACTIVATION_ACTIONS, d.GROUP_ON_DOUBLE_ACTIVATION
        )
        resources, readers = _read_resources(r, name or "", servers, known, types)
        order = _check_dependencies(resources, readers, known)
        r.finish()
        if name is not None:
            groups.append(
                Group(
                    name,
                    servers,
                    startup,
                    failover,
                    failback,
                    exclusive,
                    resources,
                    order,
                    on_double,
                )
            )
    return tuple(groups)


def _read_resources(group: Reader, group_name: str, servers, known: Known, types: TypeTables):
    resources, readers = [], []
    for r in group.elements("resource", "resource"):
        name = r.name()
        if name is not None and name in known.resources:
            other = known.resources[name].group
            r.error("name", f'duplicate resource name "{name}" (also in group "{other}")')
            name = None
        spec = read_type(r, "resource", types.resource)
        if name is not None:
            known.resources[name] = ResourceInfo(group_name, spec.name if spec else None, r.where)
        depends_on = r.strings("depends_on", None)
        activation = read_failure_policy(r, "activation")
        deactivation = read_failure_policy(r, "deactivation")
        params, per_server = read_params(r, spec, known, servers)
        r.finish()
        if name is not None:
            resources.append(
                GroupResource(
                    name=name,
                    type=spec.name if spec else "",
                    group=group_name,
                    depends_on=tuple(depends_on) if depends_on is not None else None,
                    activation=activation,
                    deactivation=deactivation,
                    params=params,
                    per_server=per_server,
                )
            )
            readers.append(r)
    _default_dependencies(resources)
    return tuple(resources), readers


def _default_dependencies(resources: list[GroupResource]) -> None:
    """Fill in the tier dependencies of every resource that did not say `depends_on`."""
    for i, resource in enumerate(resources):
        if resource.depends_on is not None:
            continue
        tier = DEPENDENCY_TIERS.get(resource.type, len(DEPENDENCY_TIERS))
        lower = tuple(
            other.name
            for other in resources
            if DEPENDENCY_TIERS.get(other.type, len(DEPENDENCY_TIERS)) < tier
        )
        resources[i] = replace(resource, depends_on=lower)


def _check_dependencies(resources, readers: list[Reader], known: Known) -> tuple[str, ...]:
    """Report unknown dependencies and cycles; the start order (declaration order on errors)."""
    mine = {resource.name: reader for resource, reader in zip(resources, readers, strict=True)}
    deps: dict[str, list[str]] = {}
    for resource, reader in zip(resources, readers, strict=True):
        deps[resource.name] = []
        for index, dep in enumerate(resource.depends_on):
            where = reader.at("depends_on").index(index)
            if dep in mine:
                deps[resource.name].append(dep)
            elif dep in known.resources:
                other = known.resources[dep].group
                reader.report.error(
                    where,
                    f'resource "{dep}" is in group "{other}": a resource can only depend on '
                    "resources of its own group",
                )
            else:
                hint = suggest(dep, list(mine)) or f" (resources of this group: {quoted(mine)})"
                reader.report.error(where, f'unknown resource "{dep}"{hint}')
    cycles = find_cycles(deps)
    for cycle in cycles:
        mine[cycle[0]].error("depends_on", f"dependency cycle: {describe_cycle(cycle)}")
    if cycles:
        return tuple(deps)
    return tuple(start_order(deps))
