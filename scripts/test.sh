#!/usr/bin/env bash
# Sets everything up and runs the test suite (what CI runs). Extra arguments go to pytest.
# The slow lab scenarios are skipped unless HAVEN_TESTS=all; a representative set marked
# `ci` runs every time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check --quiet .
marker='not slow or ci'
[ "${HAVEN_TESTS:-}" = all ] && marker=''
exec .venv/bin/python -m pytest -q ${marker:+-m "$marker"} "$@"
