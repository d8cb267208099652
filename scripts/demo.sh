#!/usr/bin/env bash
# Sets everything up and runs the demo: a two-server lab cluster (config/examples/two-node.toml)
# with group "web" — a floating IP and an HTTP server started by an exec resource. A client in
# the lab's router namespace asks the floating IP every 10 ms; node1, the active server, is
# killed (SIGKILL of its whole node, its NICs down: the machine died); node2 takes over and the
# client's outage is measured. Then the lab is taken down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
LAB=$(mktemp -d /tmp/haven-demo.XXXXXX)
rmdir "$LAB"  # `haven lab up` makes it
PROBE_OUT="$LAB.probe"
STOP_PROBE="$LAB.stop"
cleanup() {
  touch "$STOP_PROBE"
  sleep 0.3
  haven lab down --dir "$LAB" >/dev/null 2>&1 || true
  rm -f "$PROBE_OUT" "$STOP_PROBE"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local server=$1; shift; haven lab exec --dir "$LAB" "$server" -- "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

say "building the lab: 2 servers, a switch, a router (in $LAB)"
haven lab up --config config/examples/two-node.toml --dir "$LAB"

say "waiting for group web to come online"
for _ in $(seq 150); do
  state=$(on node1 haven status --json 2>/dev/null |
    json '[g for g in d["groups"] if g["name"]=="web"][0]["state"]' 2>/dev/null || true)
  [ "$state" = online ] && break
  sleep 0.2
done
on node1 haven status

router_if=$(haven lab status --dir "$LAB" --json | json 'd["router"]["interface"]')
router_ip=$(haven lab status --dir "$LAB" --json | json 'd["router"]["address"]')
say "a client in the router namespace asks http://198.18.0.100/ every 10 ms"
on router "$PWD/.venv/bin/python" -m lab.http_probe http://198.18.0.100/ \
  --interface "$router_if" --source "$router_ip" --out "$PROBE_OUT" --until-file "$STOP_PROBE" \
  --deadline 300 --timeout 0.2 &
probe=$!
for _ in $(seq 100); do
  grep -q '"answer": "hello from node1' "$PROBE_OUT" 2>/dev/null && break
  sleep 0.1
done
grep '"answer"' "$PROBE_OUT" | tail -1

say "killing node1, the active server (SIGKILL of its whole node; its NICs go down)"
killed_at=$(python3 -c 'import time; print(time.monotonic())')
haven lab kill --dir "$LAB" node1

say "waiting for node2 to take over (it first makes sure node1 is really gone: fencing)"
for _ in $(seq 900); do
  grep -q '"answer": "hello from node2' "$PROBE_OUT" 2>/dev/null && break
  sleep 0.1
done
touch "$STOP_PROBE"
wait "$probe" || true
python3 - "$PROBE_OUT" "$killed_at" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
killed = float(sys.argv[2])
summary = next(l["summary"] for l in lines if "summary" in l)
after = [l for l in lines if l.get("ok") and l["t"] > killed and "node2" in l["answer"]]
if not after:
    sys.exit("node2 never answered: see haven lab status / the node logs")
print(f"first answer from node2: {after[0]['answer']!r}")
print(f"outage seen by the client: {after[0]['t'] - killed:.2f} s after the kill "
      f"({summary['requests']} requests; MACs seen for the floating IP: "
      f"{', '.join(summary['macs'])}; windows with two MACs at once: "
      f"{summary['double_mac_windows']})")
PY
on node2 haven status
say "done: taking the lab down"
