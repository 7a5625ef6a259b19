#!/bin/sh
# run-all.sh BIN... - run every unit test binary given, then every integration suite
# (tests/integration/test_*.py); each ends with "N passed, N failed". Prints the sum as the last line and
# exits 1 when anything failed or a suite ended without its summary line.
here=$(cd "$(dirname "$0")" && pwd)
total_p=0 total_f=0
run_one() {  # name, command...
	name=$1; shift
	echo "== $name"
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 40
	last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$last" ]; then
		echo "$name: no summary line (exit $rc)"; total_f=$((total_f + 1)); return
	fi
	p=${last%% passed*}; f=${last#*, }; f=${f%% failed*}
	[ "$rc" != 0 ] && [ "$f" = 0 ] && { echo "$name: exit $rc"; f=1; }
	echo "$name: $last"
	total_p=$((total_p + p)); total_f=$((total_f + f))
}
for b in "$@"; do run_one "$(basename "$b")" "$b"; done
if [ -z "${UNIT_ONLY:-}" ]; then
	for t in "$here"/integration/test_*.py; do
		[ -f "$t" ] || continue
		run_one "$(basename "$t")" python3 "$t"
	done
fi
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
