"""`[node]`: how each server supervises its own actor processes, and `[[node.actor]]` extras.

Restart intensity works as in OTP supervisors: at most `max_restarts` restarts within
`restart_window`, then escalate; a critical actor escalates to `on_critical_failure`. An actor's
`kind` must be a key of the actor registry (`actors.registry.ACTOR_KINDS`), imported only when a
configuration has `[[node.actor]]` entries and the caller passed no kinds of its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from config import defaults as d
from config.model import NodeActor, NodeSettings
from config.policies import read_final_action
from config.reader import Reader, quoted, suggest, unique_names
from config.timing import check_ratio


def registry_kinds() -> tuple[Collection[str], str | None]:
    """(the actor kinds of `actors.registry`, None) or ((), why they are unavailable)."""
    try:
        from actors.registry import ACTOR_KINDS
    except Exception as exc:  # a missing or broken registry must not crash validation
        return (), f"cannot import actors.registry ({type(exc).__name__}: {exc})"
    return tuple(ACTOR_KINDS), None


def read_node(top: Reader, actor_kinds: Collection[str] | None) -> NodeSettings:
    r = top.optional("node")
    max_restarts = r.integer("max_restarts", d.NODE_MAX_RESTARTS, d.NODE_MAX_RESTARTS_RANGE)
    window = r.duration("restart_window", d.NODE_RESTART_WINDOW, d.NODE_RESTART_WINDOW_RANGE)
    interval = r.duration("beat_interval", None, d.NODE_BEAT_INTERVAL_RANGE)
    timeout = r.duration("beat_timeout", None, d.NODE_BEAT_TIMEOUT_RANGE)
    if not (
        (r.has("beat_interval") and interval is None) or (r.has("beat_timeout") and timeout is None)
    ):
        check_ratio(
            r,
            (
                "beat_interval",
                d.NODE_BEAT_INTERVAL if interval is None else interval,
                interval is None,
            ),
            ("beat_timeout", d.NODE_BEAT_TIMEOUT if timeout is None else timeout, timeout is None),
            "the default",
            d.NODE_BEAT_SAFE_RATIO,
        )
    stop_timeout = r.duration("stop_timeout", d.NODE_STOP_TIMEOUT, d.NODE_STOP_TIMEOUT_RANGE)
    action = read_final_action(r, "on_critical_failure", "node", d.NODE_ON_CRITICAL_FAILURE)
    on_isolation = read_final_action(r, "on_isolation", "node", d.NODE_ON_ISOLATION)
    hold = r.boolean("hold_after_unclean_stop", d.NODE_HOLD_AFTER_UNCLEAN_STOP)
    actors = _read_actors(r, stop_timeout, actor_kinds)
    r.finish()
    return NodeSettings(
        max_restarts=max_restarts,
        restart_window=window,
        beat_interval=d.NODE_BEAT_INTERVAL if interval is None else interval,
        beat_timeout=d.NODE_BEAT_TIMEOUT if timeout is None else timeout,
        stop_timeout=stop_timeout,
        on_critical_failure=action,
        on_isolation=on_isolation,
        hold_after_unclean_stop=hold,
        actors=actors,
    )


def _read_actors(
    node: Reader, stop_timeout: float, actor_kinds: Collection[str] | None
) -> tuple[NodeActor, ...]:
    readers = node.elements("actor", "actor")
    if not readers:
        return ()
    problem = None
    if actor_kinds is None:
        actor_kinds, problem = registry_kinds()
    actors = []
    for r, name in unique_names(readers, "actor"):
        if name is not None and not re.fullmatch(d.ACTOR_NAME_PATTERN, name):
            r.error(
                "name", f'"{name}" is not a valid actor name: use 1-64 letters, digits, "_" or "-"'
            )
            name = None
        kind = r.string("kind", required=True)
        if kind is not None and kind not in actor_kinds:
            if problem:
                r.error("kind", f"actor kinds are unavailable: {problem}")
            else:
                hint = (
                    suggest(kind, actor_kinds) or f" (known kinds: {quoted(sorted(actor_kinds))})"
                )
                r.error("kind", f'unknown actor kind "{kind}"{hint}')
            kind = None
        critical = r.boolean("critical", d.ACTOR_CRITICAL)
        restart = r.choice("restart", d.RESTART_TYPES, d.ACTOR_RESTART)
        own_stop = r.duration("stop_timeout", stop_timeout, d.NODE_STOP_TIMEOUT_RANGE)
        args = r.table("args", {})
        odd = _not_plain(args)
        if odd is not None:
            r.error(
                "args",
                f"{odd}: only strings, numbers, booleans, arrays and tables can be "
                "passed to an actor",
            )
            args = {}
        r.finish()
        if name is not None and kind is not None:
            actors.append(NodeActor(name, kind, critical, restart, own_stop, args))
    return tuple(actors)


def _not_plain(value: object, where: str = "args") -> str | None:
    """The place of the first value an actor cannot receive (TOML dates and times), or None."""
    if isinstance(value, dict):
        for k, v in value.items():
            found = _not_plain(v, f"{where}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _not_plain(v, f"{where}[{i}]")
            if found:
                return found
    elif not isinstance(value, (str, int, float, bool)):
        return f"{where} is a {type(value).__name__}"
    return None
