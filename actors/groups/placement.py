"""Where failover groups run: the pure decision core of the group manager (DESIGN §4).

`decide` maps one snapshot of the cluster (each group's policy, what membership says about each
server, what each live server says about each group) to the actions that bring the groups where
they belong. It has no I/O, clock or randomness, and its output order is fixed, so the group
actor can run it on every change and golden tests can pin every decision down — the way
Pacemaker's scheduler works. The actor only carries the actions out, marks the group `busy`
while it does, and calls `decide` again.

Safety before liveness: a group is never started while a copy may exist anywhere. That is why a
server that vanished still owns what it ran until membership says it has fenced itself, why a
copy that is stopping or stuck in `error` blocks every new start, and why a start is only ever
proposed for a group with no owner at all. Moves and failbacks are therefore two rounds: stop
here (this result), start there (a later result, once the group is offline everywhere).

Assumptions about the snapshot, each on the safe side:
- a live server is one whose groups actor answered, so a live server absent from a group's
  `states` runs nothing of it (offline);
- a server the snapshot knows nothing about (absent from `servers`) is down and unfenced: it may
  still run what it last ran;
- a down, unfenced server that is reported in `states` with a group active counts as an owner
  of that group, just like `last_owner` does.

Exclusive groups (`normal` or `complete`) keep out of each other's way. A server is *taken* for
an exclusive group when another exclusive group (either mode) owns it in any state, or an action
earlier in this same result is starting one there or stopping one so that it goes there (the
`to` of a move or failback) — so two exclusive groups deciding in the same round never pick the
same free server. Groups are decided in name order, which makes the first claim win.

An operator's move target takes precedence over the failover policy's order and over the
failure history (the operator asked for it), but not over safety or over `complete` exclusivity;
a target outside the policy is ignored (rejecting it is the actor's job). While a group runs on
its target, automatic failback leaves it there: an actor that keeps the target set after a move
keeps the group where the operator put it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

AUTO, MANUAL = "auto", "manual"
NONE, NORMAL, COMPLETE = "none", "normal", "complete"
OFFLINE, STARTING, ONLINE, STOPPING, ERROR = "offline", "starting", "online", "stopping", "error"
GROUP_STATES = frozenset({OFFLINE, STARTING, ONLINE, STOPPING, ERROR})
ACTIVE = frozenset({STARTING, ONLINE})  # two of these at once is a double activation
PENDING = frozenset({STOPPING, ERROR})  # still owns the group: wait for it


class Reason(StrEnum):
    """Why a group starts or stops; the actor passes it on to scripts and alerts."""

    STARTUP = "startup"  # Start: first start, or again where it last ran
    FAILOVER = "failover"  # Start: its previous owner is gone or cannot take it
    MOVE = "move"  # Start/Stop: an operator's target
    FAILBACK = "failback"  # Start/Stop: back to a better server in its policy
    STOP = "stop"  # Stop: not wanted
    DOUBLE = "double"  # Stop: an extra copy of a double activation


@dataclass(frozen=True)
class Policy:
    """A group's failover policy; `servers[0]` is its home."""

    servers: tuple[str, ...]
    failover: str = AUTO
    failback: str = MANUAL
    exclusive: str = NONE

    def __post_init__(self) -> None:
        # the configuration validates these for users; this catches a wrong caller at once
        # instead of a silently different decision
        if self.failover not in (AUTO, MANUAL) or self.failback not in (AUTO, MANUAL):
            raise ValueError(f"failover/failback must be auto or manual: {self}")
        if self.exclusive not in (NONE, NORMAL, COMPLETE):
            raise ValueError(f"exclusive must be none, normal or complete: {self}")
        if len(set(self.servers)) != len(self.servers):
            raise ValueError(f"a server appears twice in the policy: {self.servers}")


@dataclass(frozen=True)
class ServerFacts:
    """What membership says about one server."""

    live: bool
    fenced: bool = False  # down and surely stopped (meaningless while live)
    accepting: bool = True  # false while it shuts down or is suspended


@dataclass(frozen=True)
class GroupFacts:
    """What the cluster knows about one group."""

    states: Mapping[str, str]  # per live server that answered
    wanted: bool
    target: str | None = None
    last_owner: str | None = None  # replicated: known even after the owner died
    failed_on: frozenset[str] = frozenset()
    busy: bool = False

    def __post_init__(self) -> None:
        wrong = {s: v for s, v in self.states.items() if v not in GROUP_STATES}
        if wrong:
            raise ValueError(f"unknown group states: {wrong}")


@dataclass(frozen=True)
class Start:
    group: str
    server: str
    reason: Reason

    def summary(self) -> str:
        return f"start {self.group} on {self.server} ({self.reason})"


@dataclass(frozen=True)
class Stop:
    group: str
    server: str
    reason: Reason
    to: str | None = None  # where it goes next (MOVE, FAILBACK)

    def summary(self) -> str:
        why = "double activation" if self.reason is Reason.DOUBLE else str(self.reason)
        to = f" to {self.to}" if self.to is not None else ""
        return f"stop {self.group} on {self.server} ({why}{to})"


@dataclass(frozen=True)
class DoubleActivation:
    """The group is active on several live servers; the actor alerts, the Stops follow."""

    group: str
    servers: tuple[str, ...]  # best first
    keep: str

    def summary(self) -> str:
        return (
            f"double activation of {self.group} on {', '.join(self.servers)}: "
            f"keep it on {self.keep}"
        )


@dataclass(frozen=True)
class Waiting:
    """The group should start or move but cannot yet; `why` is for the operator."""

    group: str
    why: str

    def summary(self) -> str:
        return f"{self.group}: {self.why}"


Action = Start | Stop | DoubleActivation | Waiting

_UNKNOWN = ServerFacts(live=False)  # never heard of: it may be running anything


def decide(
    policies: Mapping[str, Policy],
    servers: Mapping[str, ServerFacts],
    groups: Mapping[str, GroupFacts],
) -> list[Action]:
    """The actions for every group in `groups` (each needs a policy), sorted by group name."""
    missing = sorted(set(groups) - set(policies))
    if missing:
        raise ValueError(f"groups without a policy: {', '.join(missing)}")
    return _Round(policies, servers, groups).run()


@dataclass
class _Owners:
    active: list[str] = field(default_factory=list)  # live, starting/online
    pending: list[str] = field(default_factory=list)  # live, stopping/error
    unfenced: list[str] = field(default_factory=list)  # down, not fenced: may still run it


class _Round:
    def __init__(
        self,
        policies: Mapping[str, Policy],
        servers: Mapping[str, ServerFacts],
        groups: Mapping[str, GroupFacts],
    ) -> None:
        self.policies = policies
        self.servers = servers
        self.groups = groups
        self.owners = {name: self._owners(name) for name in groups}
        # server -> exclusive groups that own it or are sent there by this result
        self.claims: dict[str, set[str]] = {}
        for name, own in self.owners.items():
            for server in own.active + own.pending + own.unfenced:
                self._claim(name, server)

    def run(self) -> list[Action]:
        actions: list[Action] = []
        for name in sorted(self.groups):
            if not self.groups[name].busy:
                actions += self._group(name)
        return actions

    # facts

    def _facts(self, server: str) -> ServerFacts:
        return self.servers.get(server, _UNKNOWN)

    def _usable(self, server: str) -> bool:
        facts = self._facts(server)
        return facts.live and facts.accepting

    def _rank(self, name: str, server: str) -> tuple[int, str]:
        order = self.policies[name].servers
        return (order.index(server) if server in order else len(order), server)

    def _owners(self, name: str) -> _Owners:
        facts = self.groups[name]
        own = _Owners()
        for server, state in facts.states.items():
            if state == OFFLINE:
                continue
            server_facts = self._facts(server)
            if server_facts.live:
                (own.active if state in ACTIVE else own.pending).append(server)
            elif not server_facts.fenced:
                own.unfenced.append(server)
        last = facts.last_owner
        if last is not None and last not in own.unfenced:
            last_facts = self._facts(last)
            if not last_facts.live and not last_facts.fenced:
                own.unfenced.append(last)
        for servers in (own.active, own.pending, own.unfenced):
            servers.sort(key=lambda s: self._rank(name, s))
        return own

    # exclusivity

    def _claim(self, name: str, server: str) -> None:
        if self.policies[name].exclusive != NONE:
            self.claims.setdefault(server, set()).add(name)

    def _takers(self, name: str, server: str) -> list[str]:
        """The other exclusive groups that make `server` taken for `name` (none if it is not
        exclusive itself)."""
        if self.policies[name].exclusive == NONE:
            return []
        return sorted(self.claims.get(server, set()) - {name})

    def _free(self, name: str, server: str) -> bool:
        return not self._takers(name, server)

    # decisions

    def _group(self, name: str) -> list[Action]:
        facts, own = self.groups[name], self.owners[name]
        if len(own.active) >= 2:
            return self._double(name, own.active)
        if not facts.wanted:
            return [Stop(name, s, Reason.STOP) for s in own.active]
        if own.active:
            (server,) = own.active
            if own.pending or own.unfenced or facts.states[server] != ONLINE:
                return []  # something is under way or still unsettled: wait
            return self._online(name, server)
        errors = [s for s in own.pending if facts.states[s] == ERROR]
        if errors:
            return [Waiting(name, _stuck(name, errors))]
        if own.pending:
            return []  # it is stopping: it will be offline soon
        if own.unfenced:
            return [Waiting(name, _fence(own.unfenced))]
        return self._place(name)

    def _double(self, name: str, active: list[str]) -> list[Action]:
        keep, *extra = active
        actions: list[Action] = [DoubleActivation(name, tuple(active), keep)]
        if not self.groups[name].wanted:
            actions.append(Stop(name, keep, Reason.STOP))
        return actions + [Stop(name, s, Reason.DOUBLE) for s in extra]

    def _target(self, name: str) -> str | None:
        target = self.groups[name].target
        return target if target in self.policies[name].servers else None

    def _online(self, name: str, server: str) -> list[Action]:
        """A wanted group that runs on exactly one server: move it or fail it back, or not."""
        policy, facts = self.policies[name], self.groups[name]
        target = self._target(name)
        if target == server:
            return []  # the operator put it here: failback must not undo that
        if target is not None:
            why = self._unusable_target(name, target)
            if why:
                return [Waiting(name, f"cannot move to {target}: {why}")]
            self._claim(name, target)
            return [Stop(name, server, Reason.MOVE, to=target)]
        if policy.failback == AUTO:
            home = next(
                (
                    s
                    for s in policy.servers
                    if self._usable(s) and s not in facts.failed_on and self._free(name, s)
                ),
                None,
            )
            if home is not None and self._rank(name, home) < self._rank(name, server):
                self._claim(name, home)
                return [Stop(name, server, Reason.FAILBACK, to=home)]
        return []

    def _unusable_target(self, name: str, target: str) -> str:
        facts = self._facts(target)
        if not facts.live:
            return "it is down"
        if not facts.accepting:
            return "it does not accept groups"
        takers = self._takers(name, target)
        if self.policies[name].exclusive == COMPLETE and takers:
            return f"it is taken by exclusive group {', '.join(takers)}"
        return ""

    def _place(self, name: str) -> list[Action]:
        """A wanted group that runs nowhere and may start: choose where."""
        policy, facts = self.policies[name], self.groups[name]
        target = self._target(name)
        if target is not None and not self._unusable_target(name, target):
            return self._start(name, target, Reason.MOVE)
        last = facts.last_owner
        if last is not None and policy.failover == MANUAL and not self._facts(last).live:
            return [
                Waiting(
                    name,
                    f"manual failover: {last} is down; start it with "
                    f"haven group start {shlex.quote(name)} [--server S]",
                )
            ]
        eligible = [s for s in policy.servers if self._usable(s) and s not in facts.failed_on]
        free = [s for s in eligible if self._free(name, s)]
        if free:
            choice = free[0]
        elif eligible and policy.exclusive == NORMAL:
            choice = eligible[0]  # normal exclusivity is a preference, not a rule
        elif eligible:
            taken = ", ".join(f"{s} ({', '.join(self._takers(name, s))})" for s in eligible)
            return [Waiting(name, f"every eligible server is taken by an exclusive group: {taken}")]
        else:
            return [Waiting(name, self._no_server(name))]
        return self._start(name, choice, self._start_reason(name, choice))

    def _start_reason(self, name: str, server: str) -> Reason:
        facts = self.groups[name]
        last = facts.last_owner
        if last is None or last == server:
            return Reason.STARTUP
        back = self._usable(last) and last not in facts.failed_on
        if back and self._rank(name, server) < self._rank(name, last):
            return Reason.FAILBACK  # its previous owner could have taken it: this is better
        return Reason.FAILOVER

    def _start(self, name: str, server: str, reason: Reason) -> list[Action]:
        self._claim(name, server)
        return [Start(name, server, reason)]

    def _no_server(self, name: str) -> str:
        policy, failed = self.policies[name], self.groups[name].failed_on
        if not policy.servers:
            return "no eligible server: the policy names none"
        parts = []
        failed_here = [s for s in policy.servers if s in failed]
        rest = [s for s in policy.servers if s not in failed]
        down = [s for s in rest if not self._facts(s).live]
        closed = [s for s in rest if self._facts(s).live and not self._facts(s).accepting]
        if failed_here:
            parts.append(f"failed on {_names(failed_here)}")
        if down:
            parts.append(f"down: {_names(down)}")
        if closed:
            parts.append(f"not accepting groups: {_names(closed)}")
        return f"no eligible server: {'; '.join(parts)}"


def _names(servers: Iterable[str]) -> str:
    return ", ".join(servers)


def _fence(servers: list[str]) -> str:
    which = "server" if len(servers) == 1 else "servers"
    return f"waiting for {which} {_names(servers)} to be fenced before taking over"


def _stuck(name: str, servers: list[str]) -> str:
    return (
        f"in error on {_names(servers)}: it cannot start anywhere else until it is released "
        f"there (haven group stop {shlex.quote(name)})"
    )
