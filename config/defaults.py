"""Every default value and allowed range of the configuration, in one place.

Values follow the original product (CLUSTERPRO X / EXPRESSCLUSTER X, see
shared/reference/clusterpro_reference.md) where it gives them; `[UNVERIFIED]` marks a value the
reference only recalls. Heartbeat timing is ours (DESIGN.md §9): named profiles, explicit values
override them. Durations are float seconds; ranges are inclusive `(low, high)`.
Type-specific parameter defaults live with their type in `config/catalog.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- names -----------------------------------------------------------------------------------
NAME_MAX_LENGTH = 1024  # names may contain spaces and be long (SPEC §12-20, §12-41/42)
ACTOR_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"  # node actors: their name is part of bus topics
MAX_SERVERS = 32  # 2-32 nodes in the original; one server is allowed for a single-node cluster

# --- timing (DESIGN.md §9) -------------------------------------------------------------------
DEFAULT_PROFILE = "default"
TIMING_PROFILES: dict[str, tuple[float, float]] = {
    # name: (heartbeat interval, heartbeat timeout)
    "default": (0.5, 2.0),
    "fast": (0.04, 0.2),
    "classic": (3.0, 90.0),  # the original: 3 s / 90 s
}
HEARTBEAT_INTERVAL_RANGE = (0.01, 30.0)
HEARTBEAT_TIMEOUT_RANGE = (0.05, 600.0)
HEARTBEAT_DELAY_WARNING = 50  # % of the timeout after which a late beat is a delay warning
HEARTBEAT_DELAY_WARNING_RANGE = (1, 100)  # 100: never warn
HEARTBEAT_SAFE_RATIO = 3  # timeout below 3 x interval: one late beat may cost a server (warning)
STARTUP_WAIT = 300.0  # wait for the other servers at cluster start [UNVERIFIED] 5 min
STARTUP_WAIT_RANGE = (0.0, 3600.0)

# --- ports of the original (SPEC §11): name -> (protocol, port) ------------------------------
PORTS: dict[str, tuple[str, int]] = {
    "link": ("tcp", 29001),  # internal communication between servers
    "transfer": ("tcp", 29002),  # data transfer between servers
    "alert_sync": ("udp", 29003),
    "web": ("tcp", 29003),
    "mirror_agent": ("tcp", 29004),
}
PORT_RANGE = (1, 65535)

# --- node supervision (OTP-style restart intensity) ------------------------------------------
NODE_MAX_RESTARTS = 5
NODE_MAX_RESTARTS_RANGE = (0, 1000)
NODE_RESTART_WINDOW = 30.0
NODE_RESTART_WINDOW_RANGE = (0.1, 86400.0)
NODE_BEAT_INTERVAL = 0.5
NODE_BEAT_INTERVAL_RANGE = (0.01, 60.0)
NODE_BEAT_TIMEOUT = 3.0
NODE_BEAT_TIMEOUT_RANGE = (0.03, 600.0)
NODE_BEAT_SAFE_RATIO = 3
NODE_STOP_TIMEOUT = 10.0
NODE_STOP_TIMEOUT_RANGE = (0.1, 600.0)
NODE_ON_CRITICAL_FAILURE = "stop_service"
NODE_ON_ISOLATION = "shutdown"  # the original's NP action: stop the service and shut down the OS
NODE_HOLD_AFTER_UNCLEAN_STOP = True  # the original suspends automatic start after a crash
RESTART_TYPES = ("permanent", "transient", "temporary")
ACTOR_RESTART = "permanent"
ACTOR_CRITICAL = False

# --- groups (reference §4) -------------------------------------------------------------------
GROUP_STARTUP = "auto"
GROUP_FAILOVER = "auto"
GROUP_FAILBACK = "manual"
AUTO_MANUAL = ("auto", "manual")
GROUP_EXCLUSIVE = "none"
EXCLUSIVE_MODES = ("none", "normal", "complete")
# A group found active on two servers at once (it must never be, but a partition healed the
# wrong way or a human can cause it): keep it on its best server and stop the other copies,
# stop it everywhere (an operator starts it again), or only raise the alert.
GROUP_ON_DOUBLE_ACTIVATION = "stop_others"
DOUBLE_ACTIVATION_ACTIONS = ("stop_others", "stop_all", "do_nothing")

# --- group resource activation / deactivation failure (reference §4) -------------------------
THRESHOLD_RANGE = (0, 99)
ACTIVATION_RETRY = 0  # [UNVERIFIED]
ACTIVATION_FAILOVER_THRESHOLD = 1  # [UNVERIFIED]
ACTIVATION_FINAL_ACTION = "do_nothing"  # code 1: no operation, do not start the next resources
DEACTIVATION_RETRY = 0  # [UNVERIFIED]
DEACTIVATION_FINAL_ACTION = "shutdown"  # code 4: stop the cluster service and shut down the OS

# --- monitors (reference §5) -----------------------------------------------------------------
MONITOR_INTERVAL = 60.0  # [UNVERIFIED]
MONITOR_INTERVAL_RANGE = (0.01, 3600.0)
MONITOR_TIMEOUT = 120.0  # [UNVERIFIED]
MONITOR_TIMEOUT_RANGE = (0.01, 3600.0)
MONITOR_RETRY = 1  # [UNVERIFIED]
MONITOR_RETRY_RANGE = (0, 999)
MONITOR_START_WAIT = 0.0  # [UNVERIFIED]
MONITOR_START_WAIT_RANGE = (0.0, 9999.0)
MONITOR_DELAY_WARNING = 80  # percent of the timeout [UNVERIFIED]
MONITOR_DELAY_WARNING_RANGE = (0, 100)
MONITORING_MODES = ("always", "while_active")
MONITOR_MONITORING = "always"
RECOVERY_TARGET_TYPES = ("resource", "group", "local_server")
MONITOR_REACTIVATION_THRESHOLD = 3
MONITOR_FAILOVER_THRESHOLD = 1
MONITOR_FINAL_ACTION = "do_nothing"

# --- alerts ----------------------------------------------------------------------------------
ALERT_LEVELS = ("info", "warning", "error")
ALERT_MIN_LEVEL = "info"


# --- final actions (SPEC §7): the one table of node- and group-level actions -----------------
@dataclass(frozen=True)
class FinalAction:
    description: str
    contexts: frozenset[str]  # where it may be used: activation, deactivation, monitor, node


def _action(description: str, *contexts: str) -> FinalAction:
    return FinalAction(description, frozenset(contexts))


_FAILURES = ("activation", "deactivation", "monitor")
FINAL_ACTIONS: dict[str, FinalAction] = {
    "ignore": _action("do nothing and go on with the next resources", "activation", "deactivation"),
    "do_nothing": _action("do nothing (the next resources are not started or stopped)", *_FAILURES),
    "stop_group": _action("stop the group", "activation", "monitor"),
    "stop_service": _action("stop the cluster service", "activation", "monitor", "node"),
    "shutdown": _action("stop the cluster service and shut down the OS", *_FAILURES, "node"),
    "reboot": _action("stop the cluster service and reboot the OS", *_FAILURES, "node"),
    "panic": _action("sysrq panic", *_FAILURES, "node"),
    "keepalive_reset": _action("keepalive reset", *_FAILURES),
    "keepalive_panic": _action("keepalive panic", *_FAILURES),
    "bmc_reset": _action("BMC reset", *_FAILURES),
    "bmc_power_off": _action("BMC power off", *_FAILURES),
    "bmc_power_cycle": _action("BMC power cycle", *_FAILURES),
    "bmc_nmi": _action("BMC NMI", *_FAILURES),
}
# A deactivation failure with one of these leaves the group stuck: warn (SPEC §5).
DO_NOTHING_ACTIONS = frozenset({"ignore", "do_nothing"})


def final_actions_for(context: str) -> tuple[str, ...]:
    """The final actions allowed in `context` (activation, deactivation, monitor, node)."""
    return tuple(name for name, action in FINAL_ACTIONS.items() if context in action.contexts)
