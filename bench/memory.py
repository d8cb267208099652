"""Per-node memory (PSS) with 20 trivial echo actors: template-forked vs freshly spawned actors.

DESIGN §3 makes memory per node a measured goal: actors are forked from a pre-imported template
(`gc.freeze()`d) so that twenty actors do not cost twenty interpreters. This starts a real node
(supervisor + bus proxy + 20 `echo` actors) in its own session, waits until every actor runs and a
little longer (so start-up garbage is gone), then sums `Pss:` from /proc/PID/smaps_rollup over
every process of the node's session (found by session id, /proc/PID/stat field 6): the
supervisor, the template process (launcher=template only) and the actors. PSS splits shared pages
between the processes sharing them, so the sum is the node's real cost.

Figures (medians over runs, a fresh node each run): total MB, supervisor MB, template MB, median
actor MB (and its private part, USS = Private_Clean + Private_Dirty), for launcher=template and
launcher=spawn, and the spawn/template ratios.
"""

from __future__ import annotations

import statistics
import time

import common

LABELS = {
    "total": "total",
    "supervisor": "supervisor",
    "template": "template",
    "actor": "median actor",
    "actor_uss": "median actor private (USS)",
}


def one_run(launcher: str, actors: int, settle: float) -> dict[str, float]:
    with common.NodeRunner(actors, launcher) as node:
        status = node.wait_running()
        time.sleep(settle)
        actor_pids = {a["pid"] for a in status["actors"]}
        rollup = {pid: common.smaps_rollup_kb(pid) for pid in common.session_pids(node.sid)}
        pss = {pid: r.get("Pss", 0) / 1024.0 for pid, r in rollup.items()}
        uss = {
            pid: (r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / 1024.0
            for pid, r in rollup.items()
        }
        others = set(pss) - actor_pids - {node.sid}
        return {
            "total": sum(pss.values()),
            "supervisor": pss.get(node.sid, 0.0),
            "template": sum(pss[p] for p in others),
            "actor": statistics.median(pss.get(p, 0.0) for p in actor_pids),
            "actor_uss": statistics.median(uss.get(p, 0.0) for p in actor_pids),
            "processes": len(pss),
        }


def main() -> None:
    args = common.parse_args(
        __doc__,
        runs=3,
        actors=(int, 20, "echo actors in the node"),
        settle=(float, 2.0, "seconds to wait after the node is running"),
    )
    report = common.Report("memory", {"runs": args.runs, "actors": args.actors, "unit": "PSS"})
    medians: dict[str, dict[str, float]] = {}
    for launcher in ("template", "spawn"):
        runs = [one_run(launcher, args.actors, args.settle) for _ in range(args.runs)]
        for key, label in LABELS.items():
            report.add(f"{launcher}: {label}", "MB", [r[key] for r in runs])
        medians[launcher] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        report.note(f"{launcher}: {medians[launcher]['processes']:.0f} processes in the session")
    t, s = medians["template"], medians["spawn"]
    report.note(
        f"spawn/template ratio: total {s['total'] / t['total']:.2f}x, "
        f"per actor {s['actor'] / t['actor']:.2f}x"
    )
    report.emit(args.json)


if __name__ == "__main__":
    main()
