#!/bin/sh
# run-all.sh BUILD_DIR... - for each build (build/ is mbedTLS, build-openssl/ is OpenSSL): its unit test
# binaries (BUILD_DIR/test_*), then every integration suite (tests/integration/test_*.py) against that
# build's fetchd and fetchctl. Each suite ends with "N passed, N failed". Prints the sum as the last line
# and exits 1 when anything failed or a suite ended without its summary line.
# UNIT_ONLY=1 skips the integration suites.
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
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
for dir in "$@"; do
	tag=$(basename "$dir")
	for b in "$root/$dir"/test_*; do
		[ -x "$b" ] && run_one "$tag/$(basename "$b")" "$b"
	done
	[ -n "${UNIT_ONLY:-}" ] && continue
	for t in "$here"/integration/test_*.py; do
		[ -f "$t" ] || continue
		run_one "$tag/$(basename "$t")" env FETCHD_BIN="$root/$dir/fetchd" FETCHCTL_BIN="$root/$dir/fetchctl" \
			python3 "$t"
	done
done
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
