#!/bin/sh
# run-unit.sh BIN... - the unit binaries alone (no integration suites).
UNIT_ONLY=1 exec "$(dirname "$0")/run-all.sh" "$@"
