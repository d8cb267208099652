"""Final actions and what a group resource does when it fails to start or stop.

`[group.resource.activation]`: retry, failover_threshold, final_action.
`[group.resource.deactivation]`: retry, final_action. A deactivation final action that does
nothing leaves the group stuck where it is; it is allowed, with a warning (SPEC §5).
"""

from __future__ import annotations

from config import defaults as d
from config.model import FailurePolicy
from config.reader import MISSING, Reader, describe, quoted, suggest

_CONTEXT_LABELS = {
    "activation": "an activation",
    "deactivation": "a deactivation",
    "monitor": "a monitor",
    "node": "a node-level",
}


def read_final_action(r: Reader, key: str, context: str, default: str) -> str:
    """A final action allowed in `context` (see `config.defaults.FINAL_ACTIONS`)."""
    allowed = d.final_actions_for(context)
    value = r.raw(key, MISSING)
    if value is MISSING:
        return default
    if not isinstance(value, str):
        r.error(key, f"expected one of {quoted(allowed, 20)}, got {describe(value)}")
    elif value in allowed:
        return value
    elif value in d.FINAL_ACTIONS:
        r.error(
            key,
            f'"{value}" cannot be {_CONTEXT_LABELS[context]} final action '
            f"(allowed: {quoted(allowed, 20)})",
        )
    else:
        hint = suggest(value, allowed) or f" (allowed: {quoted(allowed, 20)})"
        r.error(key, f'unknown final action "{value}"{hint}')
    return default


def read_failure_policy(resource: Reader, key: str) -> FailurePolicy:
    """`activation` or `deactivation` of a group resource."""
    r = resource.optional(key)
    if key == "activation":
        retry = r.integer("retry", d.ACTIVATION_RETRY, d.THRESHOLD_RANGE)
        failover = r.integer(
            "failover_threshold", d.ACTIVATION_FAILOVER_THRESHOLD, d.THRESHOLD_RANGE
        )
        action = read_final_action(r, "final_action", key, d.ACTIVATION_FINAL_ACTION)
    else:
        retry = r.integer("retry", d.DEACTIVATION_RETRY, d.THRESHOLD_RANGE)
        failover = 0
        action = read_final_action(r, "final_action", key, d.DEACTIVATION_FINAL_ACTION)
        if r.has("final_action") and action in d.DO_NOTHING_ACTIONS:
            r.warning(
                "final_action",
                f'"{action}" after a failed deactivation leaves the group stuck on this server '
                '(it can neither stop nor fail over); consider "shutdown" or "reboot"',
            )
    r.finish()
    return FailurePolicy(retry, failover, action)
