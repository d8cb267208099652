"""Property tests for the placement core.

Two kinds: arbitrary snapshots (whatever the facts, the actions respect the safety rules), and
histories: a small simulated cluster where servers die, get fenced, come back and close, the
operator starts, stops and moves groups, activations and deactivations fail, and decide()'s
actions are carried out (at once or halfway). The simulator keeps the *real* state of every
server, including the dead ones that still run what they ran until they are fenced, so a start
that would make a second copy is caught even when decide() could not see the first one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.groups.placement import (
    ACTIVE,
    COMPLETE,
    NONE,
    OFFLINE,
    ONLINE,
    STARTING,
    STOPPING,
    Action,
    DoubleActivation,
    GroupFacts,
    Policy,
    Reason,
    ServerFacts,
    Start,
    Stop,
    Waiting,
    decide,
)

SERVERS = ("n1", "n2", "n3", "n4")
GROUPS = ("g1", "g2", "g3")
DOWN = ServerFacts(live=False)

# --- invariants of one decision


def rank(policy: Policy, server: str) -> tuple[int, str]:
    order = policy.servers
    return (order.index(server) if server in order else len(order), server)


def has_owner(servers: dict, facts: GroupFacts) -> bool:
    """Live servers where it is not offline, or a last owner that may still run it."""
    if any(state != OFFLINE for s, state in facts.states.items() if servers[s].live):
        return True
    last = servers.get(facts.last_owner, DOWN) if facts.last_owner is not None else None
    return last is not None and not last.live and not last.fenced


def checked_decide(policies: dict, servers: dict, groups: dict) -> list[Action]:
    """decide(), with every rule that must hold whatever the snapshot."""
    actions = decide(policies, servers, groups)
    # deterministic, and blind to the order of the mappings
    flipped = [dict(reversed(m.items())) for m in (policies, servers, groups)]
    assert decide(*flipped) == actions
    assert [a.group for a in actions] == sorted(a.group for a in actions)
    exclusive = {g for g, p in policies.items() if p.exclusive != NONE}
    started: dict[str, str] = {}
    for name in sorted(groups):  # the order decide() claims servers in
        policy, facts = policies[name], groups[name]
        mine = [a for a in actions if a.group == name]
        if facts.busy:
            assert mine == [], name
            continue
        live = {s: st for s, st in facts.states.items() if servers[s].live}
        active = sorted((s for s, v in live.items() if v in ACTIVE), key=lambda s: rank(policy, s))
        kinds = [type(a) for a in mine]
        # fixed order within a group: report, stops by rank, then one start or wait
        assert kinds == sorted(kinds, key=[DoubleActivation, Stop, Start, Waiting].index), mine
        stops = [a for a in mine if isinstance(a, Stop)]
        ranks = [rank(policy, a.server) for a in stops]
        assert ranks == sorted(ranks)
        assert len({a.server for a in stops}) == len(stops)
        assert sum(isinstance(a, Start | Waiting) for a in mine) <= 1
        assert not (stops and any(isinstance(a, Start) for a in mine)), mine
        for stop in stops:
            assert stop.server in active, (stop, facts)
            if stop.to is not None:
                assert stop.to != stop.server and stop.to in policy.servers, stop
                assert servers[stop.to].live and servers[stop.to].accepting, stop
        if len(active) >= 2:
            assert mine[0] == DoubleActivation(name, tuple(active), keep=active[0])
            doubles = [(a.server, a.reason) for a in stops if a.reason is Reason.DOUBLE]
            assert doubles == [(s, Reason.DOUBLE) for s in active[1:]]
        else:
            assert DoubleActivation not in kinds
        if not facts.wanted:
            assert set(kinds) <= {DoubleActivation, Stop}, mine
            assert {a.server for a in stops} == set(active)
        for start in (a for a in mine if isinstance(a, Start)):
            assert not has_owner(servers, facts), (start, facts)  # the split-brain rule
            assert servers[start.server].live and servers[start.server].accepting, start
            assert start.server in policy.servers, start
            last = facts.last_owner
            if policy.failover == "manual" and last is not None and not servers[last].live:
                assert start.server == facts.target and start.reason is Reason.MOVE, start
            if start.server in facts.failed_on:
                assert start.server == facts.target and start.reason is Reason.MOVE, start
            if policy.exclusive == COMPLETE:
                owned_there = {
                    g
                    for g in exclusive - {name}
                    if groups.get(g) and groups[g].states.get(start.server, OFFLINE) != OFFLINE
                }
                assert not owned_there, (start, owned_there)
                assert all(started[g] != start.server for g in exclusive & set(started)), start
            started[name] = start.server
    return actions


# --- arbitrary snapshots

policy_strategy = st.builds(
    lambda servers, failover, failback, exclusive: Policy(
        tuple(servers), failover, failback, exclusive
    ),
    st.lists(st.sampled_from(SERVERS), min_size=1, max_size=4, unique=True),
    st.sampled_from(["auto", "manual"]),
    st.sampled_from(["auto", "manual"]),
    st.sampled_from(["none", "none", "normal", "complete"]),
)
server_strategy = st.builds(ServerFacts, st.booleans(), st.booleans(), st.booleans())
state_strategy = st.sampled_from([OFFLINE, OFFLINE, OFFLINE, STARTING, ONLINE, STOPPING, "error"])
maybe_server = st.one_of(st.none(), st.sampled_from((*SERVERS, "n9")))


@st.composite
def snapshots(draw):
    names = SERVERS[: draw(st.integers(2, 4))]
    servers = {s: draw(server_strategy) for s in names}
    groups, policies = {}, {}
    for g in GROUPS[: draw(st.integers(1, 3))]:
        policies[g] = draw(policy_strategy)
        live = [s for s in names if servers[s].live]
        groups[g] = GroupFacts(
            states={s: draw(state_strategy) for s in live if draw(st.booleans())},
            wanted=draw(st.booleans()),
            target=draw(maybe_server),
            last_owner=draw(maybe_server),
            failed_on=frozenset(draw(st.lists(st.sampled_from(names), max_size=3))),
            busy=draw(st.integers(0, 5)) == 0,
        )
    return policies, servers, groups


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_any_snapshot_gets_safe_ordered_deterministic_actions(snapshot) -> None:
    policies, servers, groups = snapshot
    # servers a policy or a fact names beyond the cluster are unknown to membership
    servers = servers | {s: DOWN for s in (*SERVERS, "n9") if s not in servers}
    checked_decide(policies, servers, groups)


# --- histories


@dataclass
class Cluster:
    """The simulated truth: what each server really runs, dead or not."""

    servers: tuple[str, ...]
    policies: dict[str, Policy]
    live: dict[str, bool] = field(default_factory=dict)
    fenced: dict[str, bool] = field(default_factory=dict)
    accepting: dict[str, bool] = field(default_factory=dict)
    real: dict[str, dict[str, str]] = field(default_factory=dict)
    facts: dict[str, GroupFacts] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for s in self.servers:
            self.live[s], self.fenced[s], self.accepting[s] = True, False, True
        for g in self.policies:
            self.real[g] = {s: OFFLINE for s in self.servers}
            self.facts[g] = GroupFacts(states={}, wanted=True)

    def snapshot(self) -> tuple[dict, dict, dict]:
        servers = {
            s: ServerFacts(self.live[s], self.fenced[s], self.accepting[s]) for s in self.servers
        }
        groups = {
            g: replace(f, states={s: v for s, v in self.real[g].items() if self.live[s]})
            for g, f in self.facts.items()
        }
        return self.policies, servers, groups

    def decide(self) -> list[Action]:
        return checked_decide(*self.snapshot())

    def set(self, group: str, **changes) -> None:
        self.facts[group] = replace(self.facts[group], **changes)

    def on(self, group: str, states: set[str]) -> list[str]:
        return [s for s, v in self.real[group].items() if v in states and self.live[s]]

    def apply(self, complete: bool) -> list[Action]:
        actions = self.decide()
        for a in actions:
            if isinstance(a, Start):
                self.real[a.group][a.server] = ONLINE if complete else STARTING
                self.set(a.group, last_owner=a.server)
                if self.facts[a.group].target == a.server:
                    self.set(a.group, target=None)
            elif isinstance(a, Stop):
                self.real[a.group][a.server] = OFFLINE if complete else STOPPING
        return actions

    def step(self, kind: str, i: int, j: int) -> None:
        s = self.servers[i % len(self.servers)]
        g = sorted(self.policies)[j % len(self.policies)]
        known = (*self.servers, "n9")  # an operator may name a server outside the policy
        other = known[i % len(known)]
        self.log.append(f"{kind} {s if kind in SERVER_STEPS else g}")
        if kind == "kill" and self.live[s]:
            self.live[s], self.fenced[s] = False, False  # it may still run everything
        elif kind == "fence" and not self.live[s]:
            self.fenced[s] = True
            self.release_all(s)
        elif kind == "revive" and not self.live[s]:
            self.live[s], self.fenced[s], self.accepting[s] = True, False, True
            self.release_all(s)  # rebooted: runs nothing
        elif kind == "close" and self.live[s]:
            self.accepting[s] = not self.accepting[s]
        elif kind == "start":
            self.set(g, wanted=True, failed_on=frozenset(), target=other if j % 2 else None)
        elif kind == "stop":
            self.set(g, wanted=False, target=None)
        elif kind == "move":
            self.set(g, target=other)
        elif kind == "activation_fails":
            for server in self.on(g, ACTIVE):
                self.real[g][server] = OFFLINE
                self.set(g, failed_on=self.facts[g].failed_on | {server})
        elif kind == "deactivation_fails":
            for server in self.on(g, {STOPPING}):
                self.real[g][server] = "error"
        elif kind == "release":
            for server in self.on(g, {"error"}):
                self.real[g][server] = OFFLINE
        elif kind == "settle":
            self.settle()
        elif kind in ("apply", "apply_halfway"):
            self.log.extend(f"  {a.summary()}" for a in self.apply(kind == "apply"))

    def release_all(self, server: str) -> None:
        for states in self.real.values():
            states[server] = OFFLINE

    def settle(self) -> None:
        for g in self.policies:
            for s in self.on(g, {STARTING}):
                self.real[g][s] = ONLINE
            for s in self.on(g, {STOPPING, "error"}):
                self.real[g][s] = OFFLINE

    def assert_never_twice(self) -> None:
        for g, states in self.real.items():
            where = [s for s, v in states.items() if v != OFFLINE]
            assert len(where) <= 1, (g, states, self.log)


SERVER_STEPS = ("kill", "fence", "revive", "close")
GROUP_STEPS = ("start", "stop", "move", "activation_fails", "deactivation_fails", "release")
DECISION_STEPS = ("settle", "apply", "apply", "apply_halfway", "apply_halfway")
steps = st.lists(
    st.tuples(
        st.sampled_from(SERVER_STEPS + GROUP_STEPS + DECISION_STEPS),
        st.integers(0, 4),
        st.integers(0, 5),
    ),
    min_size=20,
    max_size=60,
)


@st.composite
def clusters(draw):
    servers = SERVERS[: draw(st.integers(2, 4))]
    policies = {}
    for g in GROUPS[: draw(st.integers(1, 3))]:
        order = draw(st.permutations(servers))[: draw(st.integers(1, len(servers)))]
        policies[g] = draw(
            st.builds(
                Policy,
                st.just(tuple(order)),
                st.sampled_from(["auto", "manual"]),
                st.sampled_from(["auto", "manual"]),
                st.sampled_from(["none", "normal", "complete"]),
            )
        )
    return Cluster(servers, policies)


def settle_rounds(cluster: Cluster) -> int:
    """Rounds with actions once stable: a move (stop, then start on the target, which clears the
    target), then with automatic failback the failback that undoes it (stop, start); and a
    failback may have to wait for the one that frees its server: two more rounds a group."""
    return 2 + 2 * len(cluster.policies)


@settings(max_examples=300, deadline=None)
@given(clusters(), steps)
def test_histories_never_activate_twice_and_settle_once_stable(cluster: Cluster, history) -> None:
    for kind, i, j in [("apply", 0, 0), *history]:  # from a started cluster
        cluster.step(kind, i, j)
        cluster.assert_never_twice()
        cluster.decide()  # its rules hold after every single step

    # stable from now on: every server back and open, every group wanted with a clean slate
    for s in cluster.servers:
        if not cluster.live[s]:
            cluster.step("revive", cluster.servers.index(s), 0)
        cluster.accepting[s] = True
    cluster.settle()
    for g in cluster.policies:
        cluster.set(g, wanted=True, failed_on=frozenset())
    for _ in range(settle_rounds(cluster) + 1):
        if not any(isinstance(a, Start | Stop) for a in cluster.apply(complete=True)):
            break
        cluster.assert_never_twice()
    else:
        raise AssertionError(f"no fixpoint: {cluster.log}")

    waiting = {a.group for a in cluster.decide() if isinstance(a, Waiting)}
    for g, policy in cluster.policies.items():
        running = cluster.on(g, {ONLINE})
        if running:
            assert len(running) == 1 and running[0] in policy.servers, (g, running)
            continue
        # only complete exclusivity may keep a wanted group down: every server it may use runs
        # another exclusive group
        assert policy.exclusive == COMPLETE and g in waiting, (g, cluster.real, cluster.log)
        for s in policy.servers:
            assert any(
                cluster.real[h][s] == ONLINE and cluster.policies[h].exclusive != NONE
                for h in cluster.policies
                if h != g
            ), (g, s, cluster.real)
