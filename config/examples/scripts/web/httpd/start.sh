#!/bin/sh
# Start script of the example's exec resource "httpd" (asynchronous: Haven keeps the PID of what
# this script leaves running and gives it to stop.sh as CLP_PID).
# Serves "hello from <server> (<event>)" on port 80 of every address, the floating IP included.
set -eu
root="${TMPDIR:-/tmp}/haven-web-${HAVEN_SERVER:-$(hostname)}"
mkdir -p "$root"
echo "hello from ${HAVEN_SERVER:-$(hostname)} (${CLP_EVENT:-START})" > "$root/index.html"
echo "httpd: starting on ${HAVEN_SERVER:-?} (event ${CLP_EVENT:-?}, priority ${CLP_PRIORITY:-?})"
exec python3 -m http.server 80 --bind 0.0.0.0 --directory "$root"
