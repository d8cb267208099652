"""Run every benchmark with modest defaults and print all figures (about 4.5 min on 2 cores).

Usage: .venv/bin/python bench/run_all.py [--runs N] [--json] [--only NAME[,NAME]]

Each benchmark runs as its own process with a deadline; past it the benchmark gets SIGTERM (it then
stops its nodes and removes its directories), then SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# name → (runs, extra arguments, deadline in seconds)
BENCHMARKS = {
    "bus_rpc": (3, ["--requests", "3000"], 120),
    "bus_pubsub": (3, ["--messages", "100000"], 120),
    "restart": (3, [], 240),
    "memory": (3, [], 240),
    "detection": (3, ["--load-seconds", "60"], 360),
    "link": (3, [], 240),
}


def run(name: str, runs: int, extra: list[str], deadline: float, as_json: bool) -> int:
    argv = [sys.executable, os.path.join(HERE, f"{name}.py"), "--runs", str(runs), *extra]
    if as_json:
        argv.append("--json")
    proc = subprocess.Popen(argv, cwd=os.path.dirname(HERE), stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(f"!! {name}: stopped after its {deadline}s deadline", file=sys.stderr)
    if as_json:
        try:
            print(json.dumps(json.loads(out)) if out.strip() else "null")
        except json.JSONDecodeError:
            print(json.dumps({"benchmark": name, "error": "no JSON output"}))
    else:
        print(out, end="")
    return proc.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, help="override every benchmark's run count")
    p.add_argument("--json", action="store_true", help="one JSON object per line per benchmark")
    p.add_argument("--only", help="comma-separated benchmark names")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    failed = []
    start = time.monotonic()
    for name in names:
        runs, extra, deadline = BENCHMARKS[name]
        if run(name, args.runs or runs, extra, deadline, args.json) != 0:
            failed.append(name)
    if not args.json:
        print(f"all benchmarks: {time.monotonic() - start:.0f}s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
