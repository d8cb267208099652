"""The groups actor (the group manager): one per server, critical, started after the link.

Every server runs its own groups (`local.py`): it starts and stops them when told, keeps their
state in `state/groups/local.json`, and publishes every change as the cluster-wide
`group.<name>.state`. One server coordinates: the first live server in priority order. Each
round it gathers every live server's local state over the link, asks the pure decision core
(`placement.decide`) what to do, and carries that out, one action per group at a time. It acts
only when every server membership calls online has answered, so it never decides on a guess.

Safety rests on three rules: a server that vanished still owns its groups until membership says
it has fenced itself (#3's verdict); every change of intent is on every live server before the
coordinator acts on it (`intent.py`); a start or stop is accepted by a server only from an intent
at least as new as its own (a deposed coordinator cannot act).

Starts and stops run in the background on the server that owns them; the requests return at
once, and the coordinator follows their progress in the next rounds. Operator commands
(`operate`) go to the coordinator, which records the goal, and answer when the goal is reached,
fails, or the caller's time runs out. A command for a group that is busy with another goal is
refused with what it is busy with; the same command twice joins the first.

Requests: local_state, activate, deactivate, release, final_action, resource_op, intent_get,
intent_put, command (coordinator only), operate (from the CLI, on any server), status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any

from actors.base import Actor
from actors.groups import placement
from actors.groups.intent import GroupIntent, Intent
from actors.groups.local import (
    OFFLINE,
    ONLINE,
    OWNING,
    LocalGroup,
    LocalResource,
)
from actors.resources import base as rb
from actors.resources.exec_files import clean_stale_script_dirs
from actors.resources.registry import driver_class
from actors.state_file import read_json, write_json
from bus import topics
from bus.envelope import Envelope
from bus.rpc import Handler, RequestError

ROUND_INTERVAL = 0.5  # seconds between two coordination rounds (events make them sooner)
GATHER_TIMEOUT = 3.0
REQUEST_TIMEOUT = 5.0
COMMAND_TIMEOUT = 300.0  # the longest an operator's command may wait
HANDOVER_WAIT = 10.0  # seconds a command is passed on again while the coordinator changes
NODE_FINAL_ACTIONS = {  # final action → the supervisor's node action (lab: see node_actions)
    "stop_service": "stop_service",
    "shutdown": "shutdown",
    "reboot": "reboot",
    "panic": "panic",
    # No BMC and no keepalive driver exist on these machines: they fence as a panic does.
    "keepalive_reset": "panic",
    "keepalive_panic": "panic",
    "bmc_reset": "panic",
    "bmc_power_off": "panic",
    "bmc_power_cycle": "panic",
    "bmc_nmi": "panic",
}
EVENTS = {  # placement reason → CLP_EVENT of the start (the original: a move is a START)
    placement.Reason.STARTUP: rb.EVENT_START,
    placement.Reason.FAILOVER: rb.EVENT_FAILOVER,
    placement.Reason.MOVE: rb.EVENT_START,
    placement.Reason.FAILBACK: rb.EVENT_START,
}
ALERT_KINDS = {  # placement reason → the alerts of a start: group_<kind>_started|completed|failed
    placement.Reason.STARTUP: "start",
    placement.Reason.FAILOVER: "failover",
    placement.Reason.MOVE: "move",
    placement.Reason.FAILBACK: "failback",
}
FACTORS = {  # placement reason → CLP_FACTOR of the stop
    placement.Reason.STOP: rb.FACTOR_GROUPSTOP,
    placement.Reason.MOVE: rb.FACTOR_GROUPMOVE,
    placement.Reason.FAILBACK: rb.FACTOR_GROUPMOVE,
    placement.Reason.DOUBLE: rb.FACTOR_GROUPSTOP,
}


class GroupsActor(Actor):
    subscriptions = (topics.MEMBER_VIEW, topics.GROUP)
    concurrent_requests = True  # a command waits for its goal: never hold the others up

    async def on_start(self) -> None:
        a = self.args
        self.me = self.ctx.launch.server
        self.servers: list[str] = list(a["servers"])
        self.specs: dict[str, dict[str, Any]] = {g["name"]: g for g in a["groups"]}
        self.config_dir: str = a["config_dir"]
        self.has_link: bool = bool(a.get("link"))
        self.dir = os.path.join(self.ctx.paths.state_dir, "groups")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.local_file = os.path.join(self.dir, "local.json")
        self.intent_file = os.path.join(self.dir, "intent.json")
        self.run = self.ctx.launch.node_run
        self.accepting = True
        self.view: dict[str, Any] | None = None
        self.waiting: dict[str, str] = {}
        self.busy: set[str] = set()
        self.goals: dict[str, dict[str, Any]] = {}  # group → an operator's goal under way
        # every server's last answer (local_state): what commands decide and wait on
        self.last_local: dict[str, dict[str, Any]] = {}
        self.handled: set[tuple[str, str, int]] = set()  # activation failures dealt with
        self.alerted_double: set[tuple[str, tuple[str, ...]]] = set()
        self.left: set[str] = set()  # servers that stopped cleanly with every group released
        self.tasks: set[asyncio.Task[Any]] = set()
        self.round_lock = asyncio.Lock()
        self.last_states: dict[str, str] = {}
        self.groups = {name: self._build(spec) for name, spec in self.specs.items()}
        saved = read_json(self.local_file) or {}
        same_run = saved.get("node_run") == self.run
        if same_run:
            for name, group in self.groups.items():
                group.restore((saved.get("groups") or {}).get(name) or {})
            for group in self.groups.values():
                await group.recheck()
        else:
            await self._release_leftovers(saved)
        intent = read_json(self.intent_file) or {}
        self.intent = (
            Intent.from_dict(intent.get("intent"))
            if intent.get("node_run") == self.run
            else Intent()
        )
        self._save_local()
        # what was there before this actor started is nothing to tell the others about
        self.last_states = {name: g.state for name, g in self.groups.items()}
        if not same_run:
            self._clean_script_dirs()
            await self._standby()
        for group in self.groups.values():
            self._publish(group)
        if len(self.servers) > 1:
            try:  # the view now, not at membership's next publication (up to 5 s away)
                self.view = await self.ask("membership", "view", {}, 2.0)
            except RequestError as exc:
                self.log.info("no membership view yet", error=str(exc))
        self.every("round", ROUND_INTERVAL)
        self.log.info("groups started", groups=list(self.groups), restarted=same_run)

    def _build(self, spec: dict[str, Any]) -> LocalGroup:
        resources = []
        position = spec["servers"].index(self.me) + 1 if self.me in spec["servers"] else 0
        for r in spec["resources"]:
            state_dir = os.path.join(self.dir, "resources", _safe(spec["name"]), _safe(r["name"]))
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            ctx = rb.ResourceContext(
                server=self.me,
                group=spec["name"],
                resource=r["name"],
                params=dict(r["params"]),
                priority=position,
                state_dir=state_dir,
                config_dir=self.config_dir,
                log=self.log.bind(group=spec["name"], resource=r["name"]),
            )
            resources.append(LocalResource(r, driver_class(r["type"])(ctx)))
        return LocalGroup(
            spec, resources, self._changed, self.log.bind(group=spec["name"]), self.alert
        )

    async def _release_leftovers(self, saved: dict[str, Any]) -> None:
        """A new node run: whatever an earlier run left started here is stopped first (a crash
        may have left an address or a mount behind; the cluster has moved on without it)."""
        for name, entry in (saved.get("groups") or {}).items():
            group = self.groups.get(name)
            if group is None or entry.get("state", OFFLINE) == OFFLINE:
                continue
            group.restore(entry)
            self.log.warning("releasing what an earlier run left started", group=name)
            failure = await group.deactivate(rb.Why(factor=rb.FACTOR_CLUSTERSHUTDOWN))
            if failure is not None:
                self.log.error(
                    "could not release a leftover group", group=name, error=failure.error
                )

    def _clean_script_dirs(self) -> None:
        """Script folders of exec resources no longer configured go (SPEC §5: the original left
        them behind); anything a person put there stays (see exec_files)."""
        scripts = os.path.join(self.config_dir, "scripts")
        groups = {n: {r["name"] for r in g["resources"]} for n, g in self.specs.items()}
        try:
            removed = clean_stale_script_dirs(scripts, groups)
        except OSError as exc:
            self.log.warning("stale script folders not cleaned", error=str(exc))
            return
        for path in removed:
            self.log.info("stale script folder removed", path=path)

    async def _standby(self) -> None:
        for group in self.groups.values():
            if group.state != OFFLINE:
                continue
            for r in group.resources:
                try:
                    await r.driver.standby()
                except Exception as exc:
                    self.log.warning("standby preparation failed", resource=r.name, error=str(exc))

    async def on_stop(self) -> None:
        """The node stops: release every group started here, in reverse order."""
        self.accepting = False
        self.cancel_timer("round")
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task
        for group in self.groups.values():  # a start or stop under way ends first
            if group.busy and group.task is not None:
                group.task.cancel()
                with contextlib.suppress(BaseException):
                    await group.task
        for group in self.groups.values():
            if group.state != OFFLINE:
                failure = await group.deactivate(rb.Why(factor=rb.FACTOR_CLUSTERSHUTDOWN))
                if failure is not None:
                    self.log.error("group not released at stop", group=group.name)
        if all(g.state == OFFLINE for g in self.groups.values()):
            await self._say_leaving()
        for group in self.groups.values():
            for r in group.resources:
                with contextlib.suppress(Exception):
                    await r.driver.close()

    async def _say_leaving(self) -> None:
        """Tell the others this server released everything and stops: no need to wait for it
        to fence itself before its groups start elsewhere (a planned stop fails over fast)."""
        others = [s for s in self._online() if s != self.me]
        for s in others:
            with contextlib.suppress(RequestError):
                await self._call(s, "leaving", {"server": self.me, "run": self.run}, 2.0)

    # events ------------------------------------------------------------------------------------
    async def on_receive(self, env: Envelope) -> None:
        if env.topic == topics.MEMBER_VIEW:
            self.view = env.body
            self.left -= set(self._online())  # back again: it may own groups from now on
        if self._coordinator() == self.me:
            self._spawn(self._round())

    async def on_timer(self, name: str) -> None:
        if self._coordinator() == self.me:
            await self._round()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("groups task failed", error=repr(task.exception()))

    def _changed(self, group: LocalGroup) -> None:
        self._save_local()
        self._publish(group)
        previous = self.last_states.get(group.name)
        self.last_states[group.name] = group.state
        if group.state != previous and self._tells_others(group):
            if group.state == ONLINE:
                self._spawn(self._tell_others(group, "start"))
            elif group.state == OFFLINE and previous is not None:
                self._spawn(self._tell_others(group, "stop"))

    def _tells_others(self, group: LocalGroup) -> bool:
        return any(
            r.spec["params"].get("start_on_others") or r.spec["params"].get("stop_on_others")
            for r in group.resources
        )

    async def _tell_others(self, group: LocalGroup, verb: str) -> None:
        """`start_on_others` / `stop_on_others`: the other live servers of the group's policy
        run their part (best effort: a server that misses it is only logged)."""
        others = [s for s in self.specs[group.name]["servers"] if s != self.me]
        for s in others:
            if s not in self._online():
                continue
            try:
                await self._call(s, "others", {"group": group.name, "verb": verb}, 60.0)
            except RequestError as exc:
                self.log.warning("others not told", group=group.name, server=s, error=str(exc))

    def _save_local(self) -> None:
        write_json(
            self.local_file,
            {"node_run": self.run, "groups": {n: g.saved() for n, g in self.groups.items()}},
        )

    def _publish(self, group: LocalGroup) -> None:
        self.publish(
            topics.group_state(group.name),
            {"group": group.name, "server": self.me, **group.snapshot()},
        )

    # who coordinates -----------------------------------------------------------------------------
    def _online(self) -> list[str]:
        if self.view is None:
            return [self.me] if len(self.servers) == 1 else []
        states = self.view.get("servers") or {}
        return [s for s in self.servers if (states.get(s) or {}).get("state") == "online"]

    def _coordinator(self) -> str | None:
        if self.view is not None and self.view.get("fencing"):
            return None
        online = self._online()
        return online[0] if online else None

    # the coordinator's round ---------------------------------------------------------------------
    async def _round(self) -> None:
        if self.round_lock.locked():
            return  # one round at a time; the next tick comes soon
        async with self.round_lock:
            await self._coordinate()

    async def _coordinate(self) -> None:
        view = self.view
        if view is None and len(self.servers) > 1:
            return
        if view is not None and view.get("startup") == "waiting":
            return
        online = self._online()
        answers = await self._gather("local_state", {}, GATHER_TIMEOUT)
        silent = [s for s in online if not (answers.get(s) or {}).get("ok")]
        # what commands wait on: the freshest word of every server that answered
        self.last_local = {s: answers[s]["result"] for s in online if s not in silent}
        if silent:
            self._wait_all(f"waiting for the groups service of {', '.join(silent)} to answer")
            return
        local = {s: answers[s]["result"] for s in online}
        await self._adopt_newest(local)
        if self.intent.version == 0:
            await self._cluster_start()
        behind = [
            s for s in online if int(local[s]["intent"].get("version", 0)) < self.intent.version
        ]
        if behind:
            await self._replicate(behind)
        if self.intent.suspended:
            self._wait_all("the cluster is suspended (haven cluster resume)")
            return
        servers = {
            s: placement.ServerFacts(
                live=s in online,
                fenced=s in self.left
                or bool(((view or {}).get("servers") or {}).get(s, {}).get("fenced")),
                accepting=s in online and bool(local[s].get("accepting")),
            )
            for s in self.servers
        }
        facts = {}
        for name, spec in self.specs.items():
            states = {s: local[s]["groups"].get(name, {}).get("state", OFFLINE) for s in online}
            gi = self.intent.group(name)
            facts[name] = placement.GroupFacts(
                states=states,
                wanted=gi.wanted,
                target=gi.target,
                last_owner=gi.last_owner,
                failed_on=frozenset(gi.failed_on),
                busy=name in self.busy,
            )
            await self._after_activation(name, spec, local, gi)
        policies = {
            name: placement.Policy(
                servers=tuple(spec["servers"]),
                failover=spec["failover"],
                failback=spec["failback"],
                exclusive=spec["exclusive"],
            )
            for name, spec in self.specs.items()
        }
        waiting: dict[str, str] = {}
        for action in placement.decide(policies, servers, facts):
            on_double = self.specs[action.group].get("on_double_activation", "stop_others")
            if isinstance(action, placement.Waiting):
                waiting[action.group] = action.why
            elif isinstance(action, placement.Stop) and action.reason == placement.Reason.DOUBLE:
                if on_double != "do_nothing":
                    await self._carry_out(action)
            elif action.group not in self.busy or isinstance(action, placement.DoubleActivation):
                await self._carry_out(action)
        for group, why in waiting.items():
            if self.waiting.get(group) != why:
                self.log.info("group waiting", group=group, why=why)
        self.waiting = waiting

    def _wait_all(self, why: str) -> None:
        if set(self.waiting.values()) != {why}:
            self.log.info(why)
        self.waiting = dict.fromkeys(self.specs, why)

    async def _adopt_newest(self, local: dict[str, dict[str, Any]]) -> None:
        for answer in local.values():
            theirs = Intent.from_dict(answer.get("intent"))
            if theirs.newer_than(self.intent):
                self._store_intent(theirs)

    async def _cluster_start(self) -> None:
        """No live server holds an intent: the cluster is starting. Auto groups are wanted."""
        groups = {
            name: GroupIntent(wanted=spec["startup"] == "auto", origin="startup")
            for name, spec in self.specs.items()
        }
        self._store_intent(Intent(1, self.me, groups))
        wanted = [n for n, g in groups.items() if g.wanted]
        self.alert("groups_startup", names=wanted)
        await self._replicate()

    async def _change(self, group: str, **changes: Any) -> None:
        """A new intent version, on every live server before anything acts on it."""
        self._store_intent(self.intent.with_group(self.me, group, **changes))
        await self._replicate()

    async def _replicate(self, servers: list[str] | None = None) -> None:
        body = {"intent": self.intent.to_dict()}
        for s in servers or self._online():
            if s == self.me:
                continue
            try:
                await self._call(s, "intent_put", body, REQUEST_TIMEOUT)
            except RequestError as exc:
                self.log.warning("intent not replicated", server=s, error=str(exc))

    def _store_intent(self, intent: Intent) -> None:
        self.intent = intent
        write_json(self.intent_file, {"node_run": self.run, "intent": intent.to_dict()})

    async def _after_activation(
        self, name: str, spec: dict[str, Any], local: dict[str, Any], gi: GroupIntent
    ) -> None:
        """Deal once with each activation failure: fail over below the threshold, else the
        final action; a group that came online starts its failover count anew."""
        for s, answer in local.items():
            entry = answer["groups"].get(name) or {}
            if entry.get("state") == ONLINE and gi.failovers and gi.last_owner == s:
                await self._change(name, failovers=0)
            failure = entry.get("failure")
            if entry.get("state") != "error" or not failure or failure.get("handled"):
                continue
            if failure.get("phase") != "activation" or not failure.get("resource"):
                continue
            key = (s, name, int(failure.get("serial", 0)))
            if key in self.handled or name in self.busy:
                continue
            self.handled.add(key)
            resource = next(r for r in spec["resources"] if r["name"] == failure["resource"])
            threshold = int(resource["activation"]["failover_threshold"])
            gi = self.intent.group(name)
            if gi.failovers < threshold:
                self.alert(
                    "group_activation_failover",
                    group=name,
                    server=s,
                    error=failure["error"],
                    attempt=gi.failovers + 1,
                    threshold=threshold,
                )
                await self._change(
                    name,
                    failovers=gi.failovers + 1,
                    failed_on=tuple(sorted({*gi.failed_on, s})),
                    target=None,
                )
                await self._request(
                    s, "release", {"group": name, "factor": rb.FACTOR_GROUPFAILOVER}
                )
            else:
                action = failure.get("final_action") or "do_nothing"
                self.alert(
                    "group_activation_failed",
                    group=name,
                    server=s,
                    error=failure["error"],
                    final_action=action,
                )
                if action == "stop_group":
                    await self._change(name, wanted=False, target=None)
                    await self._request(
                        s, "release", {"group": name, "factor": rb.FACTOR_GROUPSTOP}
                    )
                else:
                    await self._request(s, "final_action", {"group": name, "action": action})

    async def _carry_out(self, action: placement.Action) -> None:
        if isinstance(action, placement.DoubleActivation):
            on_double = self.specs[action.group].get("on_double_activation", "stop_others")
            key = (action.group, action.servers)
            if key not in self.alerted_double:
                self.alerted_double.add(key)
                what = {
                    "stop_others": f"keeping it on {action.keep}, stopping the others",
                    "stop_all": "stopping it everywhere (start it again when resolved)",
                    "do_nothing": "left as it is (on_double_activation = do_nothing)",
                }[on_double]
                self.alert(
                    "double_activation",
                    group=action.group,
                    servers=list(action.servers),
                    what=what,
                    action=on_double,
                )
            if on_double == "stop_all" and self.intent.group(action.group).wanted:
                await self._change(action.group, wanted=False, target=None)
            return
        self.busy.add(action.group)
        try:
            if isinstance(action, placement.Start):
                gi = self.intent.group(action.group)
                # An operator's target stays while the group runs there (an automatic failback
                # would otherwise undo the move); a start elsewhere means it could not be kept.
                target = gi.target if gi.target == action.server else None
                await self._change(action.group, last_owner=action.server, target=target)
                kind = ALERT_KINDS.get(action.reason, "start")
                self.alert(
                    f"group_{kind}_started",
                    group=action.group,
                    server=action.server,
                    reason=str(action.reason),
                )
                await self._request(
                    action.server,
                    "activate",
                    {
                        "group": action.group,
                        "event": EVENTS.get(action.reason, rb.EVENT_START),
                        "kind": kind,
                        "version": self.intent.version,
                    },
                )
            elif isinstance(action, placement.Stop):
                if action.to is not None and action.reason == placement.Reason.FAILBACK:
                    await self._change(action.group, target=action.to)
                self.alert(
                    "group_stop_started",
                    group=action.group,
                    server=action.server,
                    reason=str(action.reason) + (f" to {action.to}" if action.to else ""),
                )
                await self._request(
                    action.server,
                    "deactivate",
                    {
                        "group": action.group,
                        "factor": FACTORS.get(action.reason, rb.FACTOR_GROUPSTOP),
                        "version": self.intent.version,
                    },
                )
        finally:
            self.busy.discard(action.group)

    async def _request(self, server: str, method: str, body: dict[str, Any]) -> Any:
        try:
            return await self._call(server, method, body, REQUEST_TIMEOUT)
        except RequestError as exc:
            self.log.warning("request failed", server=server, method=method, error=str(exc))
            return None

    # transport: this server directly, the others over the link -----------------------------------
    async def _call(self, server: str, method: str, body: dict[str, Any], timeout: float) -> Any:
        if server == self.me:
            return await _maybe_await(self.requests()[method](body))
        if not self.has_link:
            raise RequestError(f"server {server} is not reachable: this node runs no link")
        return await self.ask(
            "link",
            "call",
            {
                "server": server,
                "service": self.name,
                "method": method,
                "body": body,
                "timeout": timeout,
            },
            timeout + 2.0,
        )

    async def _gather(self, method: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.has_link:
            try:
                result = await self._call(self.me, method, body, timeout)
                return {self.me: {"ok": True, "result": result}}
            except RequestError as exc:
                return {self.me: {"ok": False, "error": str(exc)}}
        try:
            return await self.ask(
                "link",
                "gather",
                {"service": self.name, "method": method, "body": body, "timeout": timeout},
                timeout + 2.0,
            )
        except RequestError as exc:
            self.log.warning("gather failed", method=method, error=str(exc))
            return {}

    # requests --------------------------------------------------------------------------------
    def requests(self) -> dict[str, Handler]:
        return {
            "local_state": self._local_state,
            "activate": self._activate,
            "deactivate": self._deactivate,
            "release": self._release,
            "final_action": self._final_action,
            "resource_op": self._resource_op,
            "intent_get": lambda body: self.intent.to_dict(),
            "intent_put": self._intent_put,
            "command": self._command,
            "leaving": self._leaving,
            "others": self._others,
            "operate": self._operate,
            "status": self._status,
        }

    def _local_state(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "server": self.me,
            "node_run": self.run,
            "accepting": self.accepting,
            "intent": self.intent.to_dict(),
            "groups": {n: g.snapshot() for n, g in self.groups.items()},
            "waiting": self.waiting if self._coordinator() == self.me else {},
        }

    async def _others(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        verb = body.get("verb")
        if verb not in ("start", "stop"):
            raise RequestError(f"unknown verb {verb!r} (start, stop)")
        why = rb.Why(home=False) if verb == "start" else rb.Why(home=False, factor="GROUPSTOP")
        errors = []
        for r in group.resources:
            try:
                await r.driver.on_others(verb, why)
            except rb.ResourceError as exc:
                errors.append(f"{r.name}: {exc}")
                self.log.warning("script on the others failed", resource=r.name, error=str(exc))
        return {"server": self.me, "errors": errors}

    def _leaving(self, body: dict[str, Any]) -> dict[str, Any]:
        server = body.get("server")
        if isinstance(server, str) and server in self.servers and server != self.me:
            self.left.add(server)
            self.log.info("server stops with every group released", server=server)
        return {"noted": True}

    def _intent_put(self, body: dict[str, Any]) -> dict[str, Any]:
        theirs = Intent.from_dict(body.get("intent"))
        if theirs.newer_than(self.intent) or theirs == self.intent:
            self._store_intent(theirs)
            return {"stored": True, "version": theirs.version}
        return {"stored": False, "version": self.intent.version}

    def _group(self, body: dict[str, Any]) -> LocalGroup:
        name = body.get("group")
        group = self.groups.get(name) if isinstance(name, str) else None
        if group is None:
            raise RequestError(f"no group {name!r} on server {self.me}")
        return group

    def _check_version(self, body: dict[str, Any]) -> None:
        version = int(body.get("version") or 0)
        if version < self.intent.version:
            raise RequestError(
                f"refused: an older coordinator's order (intent {version} < {self.intent.version})"
            )

    def _activate(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        self._check_version(body)
        if not self.accepting:
            raise RequestError(f"server {self.me} is shutting down: it takes no groups")
        if group.busy:
            raise RequestError(f"group {group.name} is busy on {self.me}")
        if group.state == ONLINE:
            return {"state": group.state}
        spec = self.specs[group.name]
        why = rb.Why(
            event=str(body.get("event") or rb.EVENT_START),
            home=bool(spec["servers"]) and spec["servers"][0] == self.me,
        )
        kind = body.get("kind") if body.get("kind") in ALERT_KINDS.values() else "start"
        group.set_state("starting")  # before answering: the next round sees an owner here
        group.task = asyncio.ensure_future(self._start_group(group, why, kind))
        return {"state": group.state}

    def _deactivate(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        self._check_version(body)
        return self._stop_in_background(group, str(body.get("factor") or rb.FACTOR_GROUPSTOP))

    def _release(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        return self._stop_in_background(group, str(body.get("factor") or rb.FACTOR_GROUPSTOP))

    def _stop_in_background(self, group: LocalGroup, factor: str) -> dict[str, Any]:
        if group.busy:
            raise RequestError(f"group {group.name} is busy on {self.me}")
        if group.state == OFFLINE:
            return {"state": group.state}
        group.set_state("stopping")
        group.task = asyncio.ensure_future(self._stop_group(group, rb.Why(factor=factor)))
        return {"state": group.state}

    async def _start_group(self, group: LocalGroup, why: rb.Why, kind: str) -> None:
        if await group.activate(why):
            self.alert(f"group_{kind}_completed", group=group.name)
        else:
            failure = group.failure
            error = failure.error if failure is not None else "unknown"
            self.alert(f"group_{kind}_failed", group=group.name, error=error)

    async def _stop_group(self, group: LocalGroup, why: rb.Why) -> None:
        failure = await group.deactivate(why)
        if failure is None:
            self.alert("group_stop_completed", group=group.name)
            return
        self.alert(
            "group_stop_failed",
            group=group.name,
            error=failure.error,
            final_action=failure.final_action,
        )
        await self._apply_node_action(failure.final_action, failure.error)

    async def _final_action(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        action = str(body.get("action") or "do_nothing")
        if group.failure is not None:
            group.failure.handled = True  # the group stays in error here: nothing more to do
            self._changed(group)
        await self._apply_node_action(action, f"group {group.name}: final action")
        return {"action": action}

    async def _apply_node_action(self, action: str, reason: str) -> None:
        node_action = NODE_FINAL_ACTIONS.get(action)
        if node_action is None:
            return  # do nothing / ignore / stop_group (the coordinator's)
        self.log.error("final action on this server", action=action, node_action=node_action)
        try:
            await self.ask("node", "node_action", {"action": node_action, "reason": reason}, 5.0)
        except RequestError as exc:
            self.log.error("the supervisor did not take the final action", error=str(exc))

    async def _resource_op(self, body: dict[str, Any]) -> dict[str, Any]:
        group = self._group(body)
        name, op = body.get("resource"), body.get("op")
        r = group.resource(name) if isinstance(name, str) else None
        if r is None or op not in ("start", "stop"):
            raise RequestError(f"no resource {name!r} in group {group.name}, or no op {op!r}")
        if group.state != ONLINE:
            raise RequestError(
                f"group {group.name} is {group.state} on {self.me}: resources are started and "
                "stopped one by one only where their group is online"
            )
        if group.busy:
            raise RequestError(f"group {group.name} is busy on {self.me}")
        deps = {x.name: x.spec.get("depends_on") or [] for x in group.resources}
        if op == "stop":
            users = [x for x, d in deps.items() if name in d and group.resource(x).state == ONLINE]
            if users:
                raise RequestError(
                    f"resource {name} cannot stop: {', '.join(users)} depend on it (stop them "
                    "first)"
                )
            error = await group.stop_resource(name, rb.Why(factor=rb.FACTOR_RESOURCERESTART))
        else:
            missing = [d for d in deps[name] if group.resource(d).state != ONLINE]
            if missing:
                raise RequestError(
                    f"resource {name} cannot start: it depends on {', '.join(missing)}, which "
                    "are not online"
                )
            error = await group.start_resource(name, rb.Why(event=rb.EVENT_START))
        if error:
            raise RequestError(error)
        return {"resource": name, "state": r.state, "server": self.me}

    # operator commands ---------------------------------------------------------------------------
    async def _operate(self, body: dict[str, Any]) -> dict[str, Any]:
        """From the CLI on any server: forwarded to the coordinator."""
        coordinator = self._coordinator()
        if coordinator is None:
            raise RequestError(
                "no coordinator: membership has not seen any server online yet (is the cluster "
                "starting?)"
            )
        timeout = min(float(body.get("timeout") or 60.0), COMMAND_TIMEOUT)
        # Around a change of coordinator (a server just came back: membership sees it before
        # its link or its view is up) the command is passed on again for a few seconds.
        deadline = time.monotonic() + HANDOVER_WAIT
        while True:
            try:
                return await self._call(coordinator, "command", body, timeout + 2.0)
            except RequestError as exc:
                text = str(exc)
                handover = "does not coordinate now" in text or "not reachable" in text
                if not handover or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)
            coordinator = self._coordinator() or coordinator

    async def _command(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._coordinator() != self.me:
            raise RequestError(f"server {self.me} does not coordinate now: try again")
        op = body.get("op")
        if op in ("suspend", "resume", "cluster_start"):
            return await self._cluster_command(op)
        if self.intent.suspended:
            raise RequestError("the cluster is suspended: resume it first (haven cluster resume)")
        name = body.get("group")
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self.specs)) or "(none)"
            raise RequestError(f"no group {name!r} (groups: {known})")
        server = body.get("server")
        if server is not None and server not in spec["servers"]:
            raise RequestError(
                f"server {server!r} is not in group {name}'s failover policy "
                f"({', '.join(spec['servers'])})"
            )
        if server is not None and server not in self._online():
            raise RequestError(f"server {server} is not online")
        timeout = min(float(body.get("timeout") or 60.0), COMMAND_TIMEOUT)
        await self._refresh()
        current = self.goals.get(name)
        if current is not None and (
            current["goal"]["op"] != op or server not in (None, current["goal"]["server"])
        ):
            raise RequestError(
                f"group {name} is busy: {_describe_goal(current['goal'])} is under way "
                f"(asked {time.monotonic() - current['since']:.0f}s ago); try again when it is done"
            )
        if current is not None:  # the same command again: wait with the first
            goal = current["goal"]
            current["waiters"] += 1
            try:
                return await self._wait_goal(name, goal, timeout)
            finally:
                current["waiters"] -= 1
        where = self._where(name)
        if op == "start":
            goal = {"op": "start", "server": server}
        elif op == "stop":
            goal = {"op": "stop", "server": None}
        elif op == "move":
            if where is None:
                raise RequestError(f"group {name} is not online: start it instead of moving it")
            server = server or self._next_server(spec, where)
            if server is None:
                raise RequestError(f"group {name} has no other online server to move to")
            if server == where:
                return {"group": name, "server": where, "state": ONLINE, "changed": False}
            goal = {"op": "move", "server": server}
        else:
            raise RequestError(f"unknown group operation {op!r} (start, stop, move)")
        if self._reached(name, goal):
            return {"group": name, "server": where, "state": self._state_of(name), "changed": False}
        failed = self._servers_in(name, "error")
        if failed and op != "stop":
            raise RequestError(
                f"group {name} is in error on {', '.join(failed)}: stop it first "
                f"(haven group stop {name})"
            )
        self.goals[name] = current = {"goal": goal, "since": time.monotonic(), "waiters": 1}
        origin = uuid.uuid4().hex[:8]
        if op == "stop":
            await self._change(name, wanted=False, target=None, origin=origin)
            for s in failed:  # an operator's stop is the way out of an error
                await self._request(s, "release", {"group": name, "factor": rb.FACTOR_GROUPSTOP})
        else:
            await self._change(
                name, wanted=True, target=server, failed_on=(), failovers=0, origin=origin
            )
        self._spawn(self._round())
        try:
            return await self._wait_goal(name, goal, timeout)
        finally:
            current["waiters"] -= 1
            if current["waiters"] <= 0 and self.goals.get(name) is current:
                del self.goals[name]

    async def _cluster_command(self, op: str) -> dict[str, Any]:
        """suspend: no more decisions (groups keep running where they are); resume: decide
        again; cluster_start: resume, and every group with automatic startup is wanted again."""
        if self.intent.version == 0:
            raise RequestError("the cluster has not started its groups yet: try again")
        if op == "suspend":
            changed = not self.intent.suspended
            self._store_intent(self.intent.with_suspended(self.me, True))
        else:
            changed = self.intent.suspended
            self._store_intent(self.intent.with_suspended(self.me, False))
            if op == "cluster_start":
                for name, spec in self.specs.items():
                    if spec["startup"] == "auto" and not self.intent.group(name).wanted:
                        changed = True
                        self._store_intent(self.intent.with_group(self.me, name, wanted=True))
        await self._replicate()
        if changed:
            self.alert(
                {"suspend": "cluster_suspended", "resume": "cluster_resumed"}.get(
                    op, "cluster_started"
                )
            )
        self._spawn(self._round())
        return {"op": op, "changed": changed, "suspended": self.intent.suspended}

    async def _refresh(self) -> None:
        """A command decides on what the servers say now, not on the last round's word."""
        online = self._online()
        answers = await self._gather("local_state", {}, GATHER_TIMEOUT)
        self.last_local = {
            s: answers[s]["result"] for s in online if (answers.get(s) or {}).get("ok")
        }

    async def _wait_goal(self, name: str, goal: dict[str, Any], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        failure_seen = None
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if self._reached(name, goal):
                return {"group": name, "server": self._where(name), "state": self._state_of(name)}
            if goal.get("server") and goal["server"] not in self._online():
                raise RequestError(
                    f"group {name}: server {goal['server']} went down during the "
                    f"{goal['op']}; the group is placed by its policy again (see haven status)"
                )
            failure_seen = self._failure(name) or failure_seen
            if self.waiting.get(name) and goal["op"] != "stop" and failure_seen:
                raise RequestError(
                    f"group {name} failed to start: {failure_seen}; {self.waiting[name]}"
                )
        why = self.waiting.get(name)
        raise RequestError(
            f"group {name}: {_describe_goal(goal)} not done within {timeout:g}s"
            + (f" ({why})" if why else "")
            + " — it goes on in the background; see haven status"
        )

    def _entries(self, name: str) -> dict[str, dict[str, Any]]:
        """The group as each server last reported it."""
        return {s: a["groups"].get(name) or {} for s, a in self.last_local.items()}

    def _states(self, name: str) -> dict[str, str]:
        return {s: e.get("state", OFFLINE) for s, e in self._entries(name).items()}

    def _servers_in(self, name: str, state: str) -> list[str]:
        return [s for s, st in self._states(name).items() if st == state]

    def _where(self, name: str) -> str | None:
        return next(iter(self._servers_in(name, ONLINE)), None)

    def _state_of(self, name: str) -> str:
        states = set(self._states(name).values())
        for state in ("error", "stopping", "starting", "online"):
            if state in states:
                return state
        return OFFLINE

    def _failure(self, name: str) -> str | None:
        for s, entry in self._entries(name).items():
            if entry.get("failure"):
                return f"on {s}: {entry['failure'].get('error')}"
        return None

    def _reached(self, name: str, goal: dict[str, Any]) -> bool:
        states = self._states(name)
        if goal["op"] == "stop":
            return bool(states) and all(st == OFFLINE for st in states.values())
        online = [s for s, st in states.items() if st == ONLINE]
        others = [s for s, st in states.items() if st in OWNING and st != ONLINE]
        if len(online) != 1 or others:
            return False
        return goal["server"] is None or online[0] == goal["server"]

    def _next_server(self, spec: dict[str, Any], where: str) -> str | None:
        online = self._online()
        order = list(spec["servers"])
        start = order.index(where) + 1 if where in order else 0
        for s in order[start:] + order[:start]:
            if s != where and s in online:
                return s
        return None

    async def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        """The cluster's groups as every live server reports them (for `haven status`)."""
        answers = await self._gather("local_state", {}, GATHER_TIMEOUT)
        groups: dict[str, Any] = {}
        waiting: dict[str, str] = {}
        for a in answers.values():
            if a.get("ok"):
                waiting.update(a["result"].get("waiting") or {})
        for name, spec in self.specs.items():
            per_server = {}
            for s, a in answers.items():
                if a.get("ok"):
                    per_server[s] = (a["result"]["groups"].get(name) or {}).get("state", OFFLINE)
                else:
                    per_server[s] = "unknown"
            where = [s for s, st in per_server.items() if st == ONLINE]
            active = next((s for s, st in per_server.items() if st in OWNING), None)
            entry = (
                answers[active]["result"]["groups"][name]
                if active
                else {"state": OFFLINE, "resources": {}}
            )
            state = entry["state"] if active else OFFLINE
            groups[name] = {
                "state": state if len(where) <= 1 else "double",
                "server": active,
                "servers": per_server,
                "policy": list(spec["servers"]),
                "resources": entry.get("resources")
                or {r["name"]: {"type": r["type"], "state": OFFLINE} for r in spec["resources"]},
                "wanted": self.intent.group(name).wanted,
                **({"waiting": waiting[name]} if name in waiting else {}),
                **({"failure": entry["failure"]} if entry.get("failure") else {}),
            }
        return {
            "groups": groups,
            "coordinator": self._coordinator(),
            "server": self.me,
            "suspended": self.intent.suspended,
        }


def _describe_goal(goal: dict[str, Any]) -> str:
    if goal["op"] == "stop":
        return "a stop"
    where = f" to {goal['server']}" if goal.get("server") else ""
    return f"a {goal['op']}{where}"


def _safe(name: str) -> str:
    """A group or resource name as one path component (names may hold spaces or slashes)."""
    return name.replace("/", "%2F").replace("\0", "") or "_"


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value
