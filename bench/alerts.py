"""The alert log's spread and catch-up in a 3-server lab (issue #5).

A lab of three servers (node1..3, heartbeat 100 ms / 600 ms) with one `exec` alert destination
running /bin/true for the operator's test alerts only (`events = ["alert"]`), so that `haven
alerts test --count N` on a server raises N real alerts there (the sender's `test` request
publishes them like any alert; each runs /bin/true, which also shows the senders keep up).

1. Spread: node1 raises 500 alerts; time from the command's start until node2 and node3 both
   hold all of them (their `haven alerts --json`, polled every 0.2 s: the figure reads late by up
   to that plus one CLI call).
2. Catch-up: node3 is killed; node1 and node2 raise 2000 alerts each; node3 is started again;
   time from its node running until it holds all 4000 (what it learns by sync, not live).
3. The alertlog actor's memory on node1 afterwards (PSS: its own pages and its share of the
   template process's), beside the membership actor's for scale, and the alert log's size.

Every trial builds its own lab and takes it down, also on failure.

Usage: .venv/bin/python bench/alerts.py [--trials N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from lab import Lab  # noqa: E402

CONFIG = (
    """
[cluster]
name = "alert bench"
key_file = "cluster.key"

[timing]
heartbeat_interval = "100ms"
heartbeat_timeout = "600ms"

[[network]]
name = "public"
subnet = "198.18.0.0/24"
"""
    + "".join(
        f"""
[[server]]
name = "node{i}"
addresses = {{ public = "198.18.0.{10 + i}" }}
"""
        for i in (1, 2, 3)
    )
    + """
[node]
stop_timeout = "2s"

[[heartbeat]]
name = "lanhb1"
type = "lanhb"
network = "public"

[[np]]
name = "majority"
type = "majority"

[[alert]]
name = "hook"
type = "exec"
command = "/bin/true"
events = ["alert"]
"""
)
DEADLINE = 180.0


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def tests_held(lab: Lab, server: str) -> int:
    out = lab.exec(server, ["haven", "alerts", "-n", "10000", "--json"], timeout=30)
    if out.returncode != 0:
        return -1
    return sum('"alert_test"' in line for line in out.stdout.splitlines())


def raise_alerts(lab: Lab, server: str, count: int) -> None:
    while count:
        n = min(count, 1000)
        out = lab.exec(server, ["haven", "alerts", "test", "--count", str(n)], timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"alerts test on {server}: {out.stderr.strip()}")
        count -= n


def wait_held(lab: Lab, servers: list[str], count: int, since: float) -> float:
    while True:
        if all(tests_held(lab, s) >= count for s in servers):
            return time.monotonic() - since
        if time.monotonic() - since > DEADLINE:
            raise RuntimeError(f"{servers} did not hold {count} test alerts in {DEADLINE:g}s")
        time.sleep(0.2)


def pss_kib(lab: Lab, server: str, actor: str) -> int:
    """An actor's proportional set size (its own pages, plus its share of the template's)."""
    st = json.loads(lab.exec(server, ["haven", "status", "--json"], timeout=10).stdout)
    pid = next(a["pid"] for a in st["actors"] if a["name"] == actor)
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


def trial(n: int) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="hvbench-alerts-", dir="/tmp")
    lab = Lab(os.path.join(work, "lab"))
    try:
        config = os.path.join(work, "cluster.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        lab.up(config)
        started = time.monotonic()
        raise_alerts(lab, "node1", 500)
        spread = wait_held(lab, ["node2", "node3"], 500, started)
        log(f"trial {n}: 500 alerts on node1 held by node2 and node3 after {spread:.2f}s")
        lab.kill("node3")
        raise_alerts(lab, "node1", 2000)
        raise_alerts(lab, "node2", 2000)
        wait_held(lab, ["node1", "node2"], 4500, time.monotonic())
        lab.start("node3")
        back = time.monotonic()
        catch_up = wait_held(lab, ["node3"], 4500, back)
        log(f"trial {n}: node3 caught up 4000 missed alerts in {catch_up:.2f}s")
        pss = pss_kib(lab, "node1", "alertlog")
        baseline = pss_kib(lab, "node1", "membership")
        st = lab.status()
        state_dir = next(s["state_dir"] for s in st["servers"] if s["name"] == "node1")
        size = sum(
            os.path.getsize(os.path.join(state_dir, "alerts", f))
            for f in os.listdir(os.path.join(state_dir, "alerts"))
            if f.startswith("alerts.log")
        )
        return {
            "spread_500": spread,
            "catch_up_4000": catch_up,
            "pss_kib": pss,
            "membership_pss_kib": baseline,
            "log_bytes": size,
        }
    finally:
        try:
            lab.down()
        finally:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--json", help="write every trial's figures here")
    args = p.parse_args()
    results = [trial(i + 1) for i in range(args.trials)]
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"alert log, 3-server lab, {args.trials} trials (medians):")
    print(f"  500 alerts raised on node1 → held by both others   {med['spread_500']:.2f} s")
    print(f"  4000 alerts missed while down → caught up after start   {med['catch_up_4000']:.2f} s")
    print(
        f"  alertlog actor PSS on node1 with ~4500 records    {med['pss_kib'] / 1024:.1f} MiB "
        f"(membership actor: {med['membership_pss_kib'] / 1024:.1f} MiB)"
    )
    print(f"  alert log on disk                                 {med['log_bytes'] / 1024:.0f} KiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"trials": results, "medians": med}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
