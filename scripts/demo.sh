#!/usr/bin/env bash
# Sets everything up and runs the demo: a real node with its actors, one of them killed and
# restarted while you watch the bus, then a clean stop. (Issue #4 turns this into a two-server
# failover demo.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
HAVEN_STATE_DIR=$(mktemp -d /tmp/haven-demo.XXXXXX)
export HAVEN_STATE_DIR
node_pid=""
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid"; wait "$node_pid" || true
  fi
  rm -rf "$HAVEN_STATE_DIR"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Print a field of `haven status --json` (empty while the node is not answering yet).
field() {
  haven status --json --timeout 1 2>/dev/null |
    python -c "import json,sys
try: d = json.load(sys.stdin); print($1)
except ValueError: pass"
}

say "starting a node from config/examples/single.toml (state in $HAVEN_STATE_DIR)"
haven node run --config config/examples/single.toml --lab --log-format json \
  >"$HAVEN_STATE_DIR/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 100); do
  state=$(field 'd["node"]["state"]')
  [ "$state" = running ] && break
  sleep 0.1
done
haven status

victim=$(field 'd["actors"][0]["name"]')
pid=$(field 'd["actors"][0]["pid"]')
say "killing actor '$victim' (pid $pid) with SIGKILL; watching the bus"
haven bus tap "actor.$victim.state" --count 3 --timeout 10 &
tap=$!
sleep 0.3
kill -KILL "$pid"
wait "$tap" || true
haven status

say "stopping the node (SIGTERM): actors stop in reverse order"
kill -TERM "$node_pid"; wait "$node_pid" || true
node_pid=""
left=$(ls "$HAVEN_STATE_DIR/bus" | wc -l)
echo "node stopped; sockets left behind: $left"
