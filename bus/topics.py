"""Every bus topic in one place. Dot-separated, most general first, so a prefix subscribes a family.

Later issues add their families here (hb., member., np., group., rsc., mon., alert., mirror.).
"""

from __future__ import annotations

ACTOR = "actor."  # actor.<name>.beat, actor.<name>.state


def actor_beat(name: str) -> str:
    return f"actor.{name}.beat"


def actor_state(name: str) -> str:
    return f"actor.{name}.state"


NODE_STATE = "node.state"

MEMBER_VIEW = "member.view"  # the whole membership view, on every change and periodically

ALERT = "alert."  # alert.<level>: an operator-relevant event for the alert service to route


def alert(level: str) -> str:
    return f"alert.{level}"


ALERT_RECORD = "alertlog.record"  # an alert as its server's alert log numbered it (actors/alertlog)


NP = "np."  # np.<np>.result: an NP resource's state changed


def np_result(name: str) -> str:
    return f"np.{name}.result"


HEARTBEAT_STALL = "hbstall."  # hbstall.<heartbeat>: our own heartbeat was not sent for a timeout


def heartbeat_stall(heartbeat: str) -> str:
    return f"hbstall.{heartbeat}"


HEARTBEAT = "hb."  # hb.<heartbeat>.<server>: a peer's state on one heartbeat path changed


def heartbeat_path(heartbeat: str, server: str) -> str:
    return f"hb.{heartbeat}.{server}"


LINK = "link."  # link.<server>.state: the link to that server came up or went down


def link_state(server: str) -> str:
    return f"link.{server}.state"


GROUP = "group."  # group.<name>.state: a group's state on the sending server changed


def group_state(name: str) -> str:
    return f"group.{name}.state"


# The families the link carries to every other server. Each server forwards only the events that
# arose on it, and republishes what it receives under the original sender ("server/actor").
CLUSTER_WIDE = (ALERT_RECORD, GROUP)  # an alert travels as its record (actors/alertlog.py)


def echo_tick(name: str) -> str:
    """Published by the trivial `echo` actor on each tick (tests and the demo watch it)."""
    return f"echo.{name}.tick"


ECHO_PING = "echo.ping"


def echo_pong(name: str) -> str:
    return f"echo.{name}.pong"
