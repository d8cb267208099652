#!/bin/sh
# Stop script of the example's exec resource "httpd": CLP_PID is the server start.sh left running.
echo "httpd: stopping pid ${CLP_PID:-none} (${CLP_FACTOR:-?})"
if [ -n "${CLP_PID:-}" ]; then
  kill "$CLP_PID" 2>/dev/null || true
fi
