"""Supervisor restart latency: SIGKILL of an actor → its replacement's first beat on the bus.

A real node (supervisor + bus proxy + N echo actors, beat interval 0.1 s) runs in its own session.
For each kill: t0 = time.monotonic() just before os.kill(pid, SIGKILL); t1 = arrival, on a SUB
socket on the node's bus, of the first `actor.<name>.beat` whose body pid differs from the killed
one. That interval is what a crashed actor costs before it is live again: the supervisor's exit
detection (pidfd), its restart back-off (none for a first restart in the window), the
launch (fork of the pre-imported template, or a fresh interpreter with `launcher=spawn`), the
actor's start-up and its first publish through the proxy.

Each actor is killed once per run (one kill per actor, so every restart is the first in its
intensity window and is restarted at once), a fresh node per run. Figures: median/p10/p90 over
all kills of all runs, per launcher, and how many replacements lost their first beat (n=1): the
runtime waits for the proxy's subscriptions before starting an actor precisely so that none is
lost to ZeroMQ's slow joiner (which would cost one beat interval); this counter checks it.
"""

from __future__ import annotations

import os
import signal
import time

import common
import zmq


def one_run(launcher: str, kills: int, settle: float) -> tuple[list[float], int]:
    """Restart times in ms, and how many replacements' first beat (n=1) never arrived."""
    samples, lost_first = [], 0
    with common.NodeRunner(kills, launcher) as node:
        status = node.wait_running()
        ctx = zmq.Context()
        sub = common.subscriber(ctx, node.paths, "actor.")
        try:
            if common.receive(sub, timeout=5.0) is None:  # slow joiner: subscription is live
                raise RuntimeError("no beat seen on the bus within 5s")
            for actor in status["actors"]:
                name, old = actor["name"], actor["pid"]
                topic = f"actor.{name}.beat"
                while sub.poll(0, zmq.POLLIN):  # drain: t1 must not wait behind old messages
                    sub.recv_multipart()
                t0 = time.monotonic()
                os.kill(old, signal.SIGKILL)
                deadline = t0 + 15.0
                while True:
                    env = common.receive(sub, timeout=max(0.0, deadline - time.monotonic()))
                    if env is None:
                        raise RuntimeError(f"{name}: no beat from a new process within 15s")
                    if env.topic == topic and env.body.get("pid") != old:
                        samples.append((time.monotonic() - t0) * 1000.0)
                        lost_first += env.body.get("n") != 1
                        break
                time.sleep(settle)
        finally:
            sub.close()
            ctx.term()
    return samples, lost_first


def main() -> None:
    args = common.parse_args(
        __doc__,
        runs=3,
        kills=(int, 10, "kills per run (= actors in the node)"),
        settle=(float, 0.3, "pause in seconds after each restart"),
        launchers=(str, "template,spawn", "comma-separated launchers"),
    )
    report = common.Report(
        "restart", {"runs": args.runs, "kills": args.kills, "beat_interval": "0.1s"}
    )
    for launcher in args.launchers.split(","):
        samples: list[float] = []
        lost = 0
        for _ in range(args.runs):
            run_samples, run_lost = one_run(launcher, args.kills, args.settle)
            samples += run_samples
            lost += run_lost
        report.add(f"{launcher}: kill → new beat", "ms", samples)
        report.note(f"{launcher}: {lost}/{len(samples)} replacements lost their first beat (n=1)")
    report.emit(args.json)


if __name__ == "__main__":
    main()
