"""Golden cases for the placement core, Pacemaker-scheduler style: a cluster snapshot in, the
actions out, compared on their one-line summaries (which carry every field of an action)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from actors.groups.placement import (
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


def pol(servers: str, **kw: str) -> Policy:
    return Policy(tuple(servers.split()), **kw)


def srv(up: str = "", down: str = "", fenced: str = "", closed: str = "") -> dict:
    """`closed`: live but not accepting groups (shutting down or suspended)."""
    facts = {s: ServerFacts(live=True) for s in up.split()}
    facts |= {s: ServerFacts(live=False) for s in down.split()}
    facts |= {s: ServerFacts(live=False, fenced=True) for s in fenced.split()}
    facts |= {s: ServerFacts(live=True, accepting=False) for s in closed.split()}
    return facts


def grp(
    on: str | None = None,
    states: dict[str, str] | None = None,
    last: str | None = None,
    wanted: bool = True,
    target: str | None = None,
    failed: str = "",
    busy: bool = False,
) -> GroupFacts:
    """`on`: online there, and (unless `last` says otherwise) last active there."""
    all_states = dict(states or {})
    if on is not None:
        all_states[on] = "online"
    return GroupFacts(
        states=all_states,
        wanted=wanted,
        target=target,
        last_owner=last if last is not None or on is None else on,
        failed_on=frozenset(failed.split()),
        busy=busy,
    )


@dataclass(frozen=True)
class Case:
    summary: str
    policies: dict[str, Policy]
    servers: dict[str, ServerFacts]
    groups: dict[str, GroupFacts]
    expected: list[str]


N12 = {"web": pol("n1 n2")}
DOUBLE_N2 = "stop web on n2 (double activation)"
N123 = {"web": pol("n1 n2 n3")}
AUTO_BACK = {"web": pol("n1 n2", failback="auto")}
MANUAL_OVER = {"web": pol("n1 n2", failover="manual")}
FENCE_N1 = "web: waiting for server n1 to be fenced before taking over"
# N+1: two exclusive groups, each with its own home, sharing n3 as standby
N_PLUS_1 = {"a": pol("n1 n3", exclusive="complete"), "b": pol("n2 n3", exclusive="complete")}
N_PLUS_1_NORMAL = {"a": pol("n1 n3", exclusive="normal"), "b": pol("n2 n3", exclusive="normal")}
TWO_DBS = {
    "db1": pol("n1 n2", exclusive="complete"),
    "db2": pol("n1 n2", exclusive="complete"),
}
THREE_DBS = TWO_DBS | {"db3": pol("n1 n2", exclusive="complete")}
THREE_NORMAL = {name: pol("n1 n2", exclusive="normal") for name in ("db1", "db2", "db3")}

CASES = [
    # --- startup
    Case("startup on the home server", N12, srv(up="n1 n2"), {"web": grp()},
         ["start web on n1 (startup)"]),
    Case("startup with the home server down: the next one (it never ran anywhere)", N12,
         srv(up="n2", down="n1"), {"web": grp()}, ["start web on n2 (startup)"]),
    Case("startup skips a server that does not accept groups", N123,
         srv(up="n2 n3", closed="n1"), {"web": grp()}, ["start web on n2 (startup)"]),
    Case("startup: a server missing from the snapshot counts as down", N12, srv(up="n2"),
         {"web": grp()}, ["start web on n2 (startup)"]),
    Case("startup with every server down waits and says why", N12, srv(down="n1", fenced="n2"),
         {"web": grp()}, ["web: no eligible server: down: n1, n2"]),
    Case("startup with every server closed waits", N12, srv(closed="n1 n2"), {"web": grp()},
         ["web: no eligible server: not accepting groups: n1, n2"]),
    Case("a policy that names no server: wait and say so", {"web": Policy(())}, srv(up="n1"),
         {"web": grp()}, ["web: no eligible server: the policy names none"]),
    Case("1-server cluster: startup", {"web": pol("n1")}, srv(up="n1"), {"web": grp()},
         ["start web on n1 (startup)"]),
    Case("1-server cluster: running, nothing to do", {"web": pol("n1", failback="auto")},
         srv(up="n1"), {"web": grp(on="n1")}, []),
    Case("1-server cluster: the server died, unfenced", {"web": pol("n1")}, srv(down="n1"),
         {"web": grp(last="n1")}, [FENCE_N1]),
    Case("1-server cluster: rebooted (fenced, back, runs nothing): start again there",
         {"web": pol("n1")}, srv(up="n1"), {"web": grp(states={"n1": "offline"}, last="n1")},
         ["start web on n1 (startup)"]),
    Case("running on its home: nothing to do", N12, srv(up="n1 n2"), {"web": grp(on="n1")}, []),
    Case("not wanted and offline everywhere: nothing", N12, srv(up="n1 n2"),
         {"web": grp(wanted=False)}, []),
    Case("several groups are decided in name order", {"web": pol("n1 n2"), "app": pol("n2 n1")},
         srv(up="n1 n2"), {"web": grp(), "app": grp()},
         ["start app on n2 (startup)", "start web on n1 (startup)"]),
    # --- busy
    Case("busy: no decision, even if it should start", N12, srv(up="n1 n2"),
         {"web": grp(busy=True)}, []),
    Case("busy: no decision, even on a double activation", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "online", "n2": "online"}, last="n1", busy=True)}, []),
    # --- failover
    Case("owner died, not yet fenced: wait (split-brain guard)", N12, srv(up="n2", down="n1"),
         {"web": grp(last="n1")}, [FENCE_N1]),
    Case("owner died and fenced: fail over to the next server", N12, srv(up="n2", fenced="n1"),
         {"web": grp(last="n1")}, ["start web on n2 (failover)"]),
    Case("failover skips a down server and a closed one", {"web": pol("n1 n2 n3 n4")},
         srv(up="n4", fenced="n1 n2", closed="n3"), {"web": grp(last="n1")},
         ["start web on n4 (failover)"]),
    Case("an unfenced server that reports the group active is an owner too", N123,
         srv(up="n3", fenced="n1", down="n2"),
         {"web": grp(states={"n2": "online"}, last="n1")},
         ["web: waiting for server n2 to be fenced before taking over"]),
    Case("an unfenced server that never ran it does not block a failover", N123,
         srv(up="n3", fenced="n1", down="n2"), {"web": grp(last="n1")},
         ["start web on n3 (failover)"]),
    Case("owner left the cluster (closed) and released it: fail over", N12,
         srv(up="n2", closed="n1"), {"web": grp(states={"n1": "offline"}, last="n1")},
         ["start web on n2 (failover)"]),
    Case("manual failover: dead unfenced owner, the fence comes first", MANUAL_OVER,
         srv(up="n2", down="n1"), {"web": grp(last="n1")}, [FENCE_N1]),
    Case("manual failover: owner fenced: wait for the operator", MANUAL_OVER,
         srv(up="n2", fenced="n1"), {"web": grp(last="n1")},
         ["web: manual failover: n1 is down; start it with haven group start web [--server S]"]),
    Case("manual failover: the hint quotes a name with spaces", {"my web": pol("n1 n2",
         failover="manual")}, srv(up="n2", fenced="n1"), {"my web": grp(last="n1")},
         ["my web: manual failover: n1 is down; start it with "
          "haven group start 'my web' [--server S]"]),
    Case("manual failover: the operator starts it on n2", MANUAL_OVER,
         srv(up="n2", fenced="n1"), {"web": grp(last="n1", target="n2")},
         ["start web on n2 (move)"]),
    Case("manual failover: the operator's target is down too: still wait", MANUAL_OVER,
         srv(fenced="n1 n2"), {"web": grp(last="n1", target="n2")},
         ["web: manual failover: n1 is down; start it with haven group start web [--server S]"]),
    Case("manual failover: the owner rebooted and is back: start again there", MANUAL_OVER,
         srv(up="n1 n2"), {"web": grp(last="n1")}, ["start web on n1 (startup)"]),
    # --- failure history
    Case("activation failed on the home server: the next one", N12, srv(up="n1 n2"),
         {"web": grp(last="n1", failed="n1")}, ["start web on n2 (failover)"]),
    Case("failed everywhere: wait, naming the servers", N12, srv(up="n1 n2"),
         {"web": grp(last="n2", failed="n1 n2")}, ["web: no eligible server: failed on n1, n2"]),
    Case("failed on one, the other down: both reasons", N123, srv(up="n1", fenced="n2",
         closed="n3"), {"web": grp(last="n2", failed="n1")},
         ["web: no eligible server: failed on n1; down: n2; not accepting groups: n3"]),
    Case("the operator's target beats the failure history", N12, srv(up="n1 n2"),
         {"web": grp(last="n2", failed="n1 n2", target="n1")}, ["start web on n1 (move)"]),
    # --- moves (operator's target)
    Case("move: stop on the current server first", N12, srv(up="n1 n2"),
         {"web": grp(on="n1", target="n2")}, ["stop web on n1 (move to n2)"]),
    Case("move: offline everywhere now, start on the target", N12, srv(up="n1 n2"),
         {"web": grp(last="n1", target="n2")}, ["start web on n2 (move)"]),
    Case("move to a down server: wait and say why", N12, srv(up="n1", fenced="n2"),
         {"web": grp(on="n1", target="n2")}, ["web: cannot move to n2: it is down"]),
    Case("move to a closed server: wait and say why", N12, srv(up="n1", closed="n2"),
         {"web": grp(on="n1", target="n2")},
         ["web: cannot move to n2: it does not accept groups"]),
    Case("a target outside the policy is ignored while running", N12, srv(up="n1 n2 n9"),
         {"web": grp(on="n1", target="n9")}, []),
    Case("a target outside the policy is ignored at startup", N12, srv(up="n1 n2 n9"),
         {"web": grp(target="n9")}, ["start web on n1 (startup)"]),
    Case("an unusable target at startup falls back to the policy", N12, srv(up="n1", down="n2"),
         {"web": grp(target="n2")}, ["start web on n1 (startup)"]),
    Case("running on its target: automatic failback leaves it there", AUTO_BACK,
         srv(up="n1 n2"), {"web": grp(on="n2", target="n2")}, []),
    # --- failback
    Case("failback auto: the home server is back, stop here first", AUTO_BACK, srv(up="n1 n2"),
         {"web": grp(on="n2")}, ["stop web on n2 (failback to n1)"]),
    Case("failback auto: offline now, start on the home server", AUTO_BACK, srv(up="n1 n2"),
         {"web": grp(last="n2")}, ["start web on n1 (failback)"]),
    Case("failback manual: stays where it runs", N12, srv(up="n1 n2"), {"web": grp(on="n2")}, []),
    Case("failback auto, but it failed on the home server", AUTO_BACK, srv(up="n1 n2"),
         {"web": grp(on="n2", failed="n1")}, []),
    Case("failback auto, but the home server does not accept groups", AUTO_BACK,
         srv(up="n2", closed="n1"), {"web": grp(on="n2")}, []),
    Case("failback auto goes to the best eligible server, not only home",
         {"web": pol("n1 n2 n3", failback="auto")}, srv(up="n2 n3", fenced="n1"),
         {"web": grp(on="n3")}, ["stop web on n3 (failback to n2)"]),
    Case("failback auto brings a group running outside its policy back into it", AUTO_BACK,
         srv(up="n1 n2 n9"), {"web": grp(on="n9")}, ["stop web on n9 (failback to n1)"]),
    Case("failback waits while the group is still starting", AUTO_BACK, srv(up="n1 n2"),
         {"web": grp(states={"n2": "starting"}, last="n2")}, []),
    # --- owners that block a start
    Case("error owner blocks the start elsewhere", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "error"}, last="n1")},
         ["web: in error on n1: it cannot start anywhere else until it is released there "
          "(haven group stop web)"]),
    Case("stopping owner blocks the start elsewhere (no message: it is under way)", N12,
         srv(up="n1 n2"), {"web": grp(states={"n1": "stopping"}, last="n1")}, []),
    Case("error owner beats a dead unfenced last owner in the message", N123,
         srv(up="n2 n3", down="n1"), {"web": grp(states={"n2": "error"}, last="n1")},
         ["web: in error on n2: it cannot start anywhere else until it is released there "
          "(haven group stop web)"]),
    Case("online, with a stale unfenced last owner elsewhere: leave it alone", AUTO_BACK,
         srv(up="n2", down="n1"), {"web": grp(on="n2", last="n1")}, []),
    Case("online and a stopping copy elsewhere: wait for it (no failback yet)",
         {"web": pol("n1 n2 n3", failback="auto")}, srv(up="n1 n2 n3"),
         {"web": grp(on="n3", states={"n2": "stopping"})}, []),
    # --- stop
    Case("not wanted: stop it", N12, srv(up="n1 n2"), {"web": grp(on="n1", wanted=False)},
         ["stop web on n1 (stop)"]),
    Case("not wanted while starting: stop it", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "starting"}, last="n1", wanted=False)},
         ["stop web on n1 (stop)"]),
    Case("not wanted, stuck in error: nothing more to do here", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "error"}, last="n1", wanted=False)}, []),
    Case("not wanted, owner dead and unfenced: nothing to wait for", N12,
         srv(up="n2", down="n1"), {"web": grp(last="n1", wanted=False)}, []),
    # --- double activation
    Case("double activation on 2 servers: keep the home copy", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "online", "n2": "online"}, last="n2")},
         ["double activation of web on n1, n2: keep it on n1", DOUBLE_N2]),
    Case("double activation on 3 servers: keep the best in policy order",
         {"web": pol("n2 n3 n1")}, srv(up="n1 n2 n3"),
         {"web": grp(states={"n1": "online", "n2": "online", "n3": "online"}, last="n1")},
         ["double activation of web on n2, n3, n1: keep it on n2",
          "stop web on n3 (double activation)", "stop web on n1 (double activation)"]),
    Case("double activation with a server outside the policy: it ranks last", N12,
         srv(up="n1 n2 n0"), {"web": grp(states={"n0": "online", "n2": "online"}, last="n0")},
         ["double activation of web on n2, n0: keep it on n2",
          "stop web on n0 (double activation)"]),
    Case("double activation counts a copy that is still starting", N12, srv(up="n1 n2"),
         {"web": grp(states={"n1": "starting", "n2": "online"}, last="n1")},
         ["double activation of web on n1, n2: keep it on n1", DOUBLE_N2]),
    Case("double activation of an unwanted group: report it and stop every copy", N12,
         srv(up="n1 n2"), {"web": grp(states={"n1": "online", "n2": "online"}, wanted=False)},
         ["double activation of web on n1, n2: keep it on n1", "stop web on n1 (stop)",
          "stop web on n2 (double activation)"]),
    Case("online here and stopping there is not a double activation", N12, srv(up="n1 n2"),
         {"web": grp(on="n2", states={"n1": "stopping"})}, []),
    # --- exclusive groups
    Case("complete: two groups starting in the same round take one server each", TWO_DBS,
         srv(up="n1 n2"), {"db1": grp(), "db2": grp()},
         ["start db1 on n1 (startup)", "start db2 on n2 (startup)"]),
    Case("complete: 3 groups on 2 servers: the third waits", THREE_DBS, srv(up="n1 n2"),
         {"db1": grp(), "db2": grp(), "db3": grp()},
         ["start db1 on n1 (startup)", "start db2 on n2 (startup)",
          "db3: every eligible server is taken by an exclusive group: n1 (db1), n2 (db2)"]),
    Case("normal: 3 groups on 2 servers: the third doubles up on the first", THREE_NORMAL,
         srv(up="n1 n2"), {"db1": grp(), "db2": grp(), "db3": grp()},
         ["start db1 on n1 (startup)", "start db2 on n2 (startup)", "start db3 on n1 (startup)"]),
    Case("N+1: each group on its own home: nothing to do", N_PLUS_1, srv(up="n1 n2 n3"),
         {"a": grp(on="n1"), "b": grp(on="n2")}, []),
    Case("N+1: a's home died and is fenced: a takes the standby", N_PLUS_1,
         srv(up="n2 n3", fenced="n1"), {"a": grp(last="n1"), "b": grp(on="n2")},
         ["start a on n3 (failover)"]),
    Case("N+1 complete: b's home dies too: the standby is taken, b waits", N_PLUS_1,
         srv(up="n3", fenced="n1 n2"), {"a": grp(on="n3"), "b": grp(last="n2")},
         ["b: every eligible server is taken by an exclusive group: n3 (a)"]),
    Case("N+1 normal: b's home dies too: b shares the standby", N_PLUS_1_NORMAL,
         srv(up="n3", fenced="n1 n2"), {"a": grp(on="n3"), "b": grp(last="n2")},
         ["start b on n3 (failover)"]),
    Case("N+1: both homes fenced in the same round: only one gets the standby", N_PLUS_1,
         srv(up="n3", fenced="n1 n2"), {"a": grp(last="n1"), "b": grp(last="n2")},
         ["start a on n3 (failover)",
          "b: every eligible server is taken by an exclusive group: n3 (a)"]),
    Case("failback blocked by exclusivity: the home runs another exclusive group",
         {"a": pol("n1 n3", exclusive="complete", failback="auto"),
          "b": pol("n1 n2", exclusive="complete")},
         srv(up="n1 n2 n3"), {"a": grp(on="n3"), "b": grp(on="n1")}, []),
    Case("failback blocked by exclusivity applies to normal groups too",
         {"a": pol("n1 n3", exclusive="normal", failback="auto"),
          "b": pol("n1 n2", exclusive="normal")},
         srv(up="n1 n2 n3"), {"a": grp(on="n3"), "b": grp(on="n1")}, []),
    Case("failback of an exclusive group onto its free home",
         {"a": pol("n1 n3", exclusive="complete", failback="auto")} | {"b": N_PLUS_1["b"]},
         srv(up="n1 n2 n3"), {"a": grp(on="n3"), "b": grp(on="n2")},
         ["stop a on n3 (failback to n1)"]),
    Case("two exclusive failbacks to the same free server: the first claims it",
         {"a": pol("n1 n2", exclusive="complete", failback="auto"),
          "b": pol("n1 n3", exclusive="complete", failback="auto")},
         srv(up="n1 n2 n3"), {"a": grp(on="n2"), "b": grp(on="n3")},
         ["stop a on n2 (failback to n1)"]),
    Case("complete: move to a server another exclusive group runs on: wait", TWO_DBS,
         srv(up="n1 n2"), {"db1": grp(on="n1", target="n2"), "db2": grp(on="n2")},
         ["db1: cannot move to n2: it is taken by exclusive group db2"]),
    Case("normal: move to a server another exclusive group runs on: move anyway",
         {"db1": pol("n1 n2", exclusive="normal"), "db2": pol("n1 n2", exclusive="normal")},
         srv(up="n1 n2"), {"db1": grp(on="n1", target="n2"), "db2": grp(on="n2")},
         ["stop db1 on n1 (move to n2)"]),
    Case("complete: an in-flight move's destination is taken for later groups",
         {"a": pol("n1 n2 n3", exclusive="complete"), "b": pol("n3 n1", exclusive="complete")},
         srv(up="n1 n2 n3", fenced="n4"), {"a": grp(on="n1", target="n3"), "b": grp(last="n4")},
         ["stop a on n1 (move to n3)",
          "b: every eligible server is taken by an exclusive group: n3 (a), n1 (a)"]),
    Case("complete: a taken target at startup falls back to a free server", TWO_DBS,
         srv(up="n1 n2"), {"db1": grp(on="n1"), "db2": grp(target="n1")},
         ["start db2 on n2 (startup)"]),
    Case("complete: a copy in error still takes its server", TWO_DBS, srv(up="n1 n2"),
         {"db1": grp(states={"n1": "error"}, last="n1", wanted=False), "db2": grp()},
         ["start db2 on n2 (startup)"]),
    Case("complete: a busy group that is stopping still takes its server", TWO_DBS,
         srv(up="n1 n2"),
         {"db1": grp(states={"n1": "stopping"}, last="n1", busy=True), "db2": grp()},
         ["start db2 on n2 (startup)"]),
    Case("complete: a normal exclusive group takes its server too",
         {"db1": pol("n1 n2", exclusive="normal"), "db2": pol("n1 n2", exclusive="complete")},
         srv(up="n1 n2"), {"db1": grp(on="n1"), "db2": grp()}, ["start db2 on n2 (startup)"]),
    Case("a non-exclusive group does not take a server",
         {"web": pol("n1 n2"), "db": pol("n1 n2", exclusive="complete")},
         srv(up="n1 n2"), {"web": grp(on="n1"), "db": grp()}, ["start db on n1 (startup)"]),
    Case("a non-exclusive group ignores exclusive ones",
         {"web": pol("n1 n2"), "db": pol("n1 n2", exclusive="complete")},
         srv(up="n1 n2"), {"web": grp(), "db": grp(on="n1")}, ["start web on n1 (startup)"]),
    Case("complete: a failed-on server is not eligible, the free one is taken: wait",
         TWO_DBS, srv(up="n1 n2"), {"db1": grp(on="n2"), "db2": grp(last="n1", failed="n1")},
         ["db2: every eligible server is taken by an exclusive group: n2 (db1)"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.summary for c in CASES])
def test_golden(case: Case) -> None:
    actions = decide(case.policies, case.servers, case.groups)
    assert [a.summary() for a in actions] == case.expected


def test_every_golden_case_has_its_own_summary() -> None:
    assert len({c.summary for c in CASES}) == len(CASES) >= 50


def test_actions_carry_structured_fields_not_only_text() -> None:
    actions = decide(
        {"web": pol("n1 n2"), "app": pol("n1 n2", failback="auto")},
        srv(up="n1 n2"),
        {"web": grp(states={"n1": "online", "n2": "online"}), "app": grp(on="n2")},
    )
    assert actions == [
        Stop("app", "n2", Reason.FAILBACK, to="n1"),
        DoubleActivation("web", ("n1", "n2"), keep="n1"),
        Stop("web", "n2", Reason.DOUBLE),
    ]
    assert decide(N12, srv(up="n2", fenced="n1"), {"web": grp(last="n1")}) == [
        Start("web", "n2", Reason.FAILOVER)
    ]
    assert decide(N12, srv(up="n2", down="n1"), {"web": grp(last="n1")}) == [
        Waiting("web", FENCE_N1.removeprefix("web: "))
    ]


def test_reasons_are_plain_strings_for_scripts_and_alerts() -> None:
    assert Start("web", "n1", Reason.FAILOVER).reason == "failover"


def test_a_group_without_a_policy_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="without a policy: web"):
        decide({}, srv(up="n1"), {"web": grp()})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"servers": ("n1",), "failover": "automatic"},
        {"servers": ("n1",), "failback": "Auto"},
        {"servers": ("n1",), "exclusive": "yes"},
        {"servers": ("n1", "n1")},
    ],
)
def test_a_malformed_policy_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)


def test_an_unknown_group_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown group states"):
        GroupFacts(states={"n1": "running"}, wanted=True)
