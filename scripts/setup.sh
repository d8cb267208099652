#!/usr/bin/env bash
# Sets up everything Haven needs on a fresh Debian machine: Debian packages (when missing and we
# are root) and a .venv with Haven installed in editable mode plus its development tools.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

PY=$(pick_python || true)
[ -n "$PY" ] || need_debs+=(python3 python3-venv)
if [ -n "$PY" ] && ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_debs+=(python3-venv)
fi
# What the node itself needs: without it nothing runs.
command -v ip >/dev/null 2>&1 || need_debs+=(iproute2)
# What the drivers and the tests use: a test whose tool is missing is skipped and names it, so
# these are installed when possible but a failure to install them (no mirror) is only a warning.
want_debs=()
command -v nft >/dev/null 2>&1 || want_debs+=(nftables)
command -v socat >/dev/null 2>&1 || want_debs+=(socat)
command -v faketime >/dev/null 2>&1 || want_debs+=(faketime)  # and libfaketime: clock jumps
command -v mkfs.ext4 >/dev/null 2>&1 || want_debs+=(e2fsprogs)  # disk: mkfs/fsck
command -v blockdev >/dev/null 2>&1 || want_debs+=(util-linux)  # disk, raw: blockdev
command -v vgchange >/dev/null 2>&1 || want_debs+=(lvm2)  # volume
command -v mount.nfs >/dev/null 2>&1 || want_debs+=(nfs-common)  # nas
[ -x /usr/lib/ocf/resource.d/heartbeat/Dummy ] || want_debs+=(resource-agents)  # ocf
command -v openssl >/dev/null 2>&1 || want_debs+=(openssl)  # mail tests: a test certificate
command -v rsyslogd >/dev/null 2>&1 || want_debs+=(rsyslog)  # alert.syslog: a real receiver
command -v snmptrapd >/dev/null 2>&1 || want_debs+=(snmptrapd)  # alert.snmp: the trap receiver
command -v snmptranslate >/dev/null 2>&1 || want_debs+=(snmp)  # alert.snmp: the MIB loads
command -v smilint >/dev/null 2>&1 || want_debs+=(smitools)  # alert.snmp: the MIB is SMIv2

if [ $((${#need_debs[@]} + ${#want_debs[@]})) -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    echo "setup: installing Debian packages: ${need_debs[*]} ${want_debs[*]}"
    apt-get update -qq || echo "setup: apt-get update failed; trying with the lists we have" >&2
    if [ ${#need_debs[@]} -gt 0 ]; then
      apt-get install -y -qq "${need_debs[@]}" >/dev/null
      PY=$(pick_python)
    fi
    if [ ${#want_debs[@]} -gt 0 ] &&
       ! apt-get install -y -qq "${want_debs[@]}" >/dev/null; then
      echo "setup: could not install ${want_debs[*]}: the tests that need them are skipped" >&2
    fi
  elif [ ${#need_debs[@]} -gt 0 ]; then
    echo "setup: please install: ${need_debs[*]} (needs root and apt-get)" >&2
    exit 1
  else
    echo "setup: not installed (needs root): ${want_debs[*]}; the tests that need them skip" >&2
  fi
fi

stamp=.venv/.haven-installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Haven and its tools into .venv (log: .venv/pip.log)"
  # vendor/wheels holds the few pure-Python wheels that are not on this workplace's local wheel
  # mirror, so that a PyPI outage does not stop a fresh clone from installing (see vendor/README).
  if ! .venv/bin/python -m pip install --retries 2 --find-links vendor/wheels -e '.[dev]' \
       >.venv/pip.log 2>&1; then
    tail -n 30 .venv/pip.log >&2
    echo "setup: pip install failed; the whole log is .venv/pip.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
