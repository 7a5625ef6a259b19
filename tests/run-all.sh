#!/bin/sh
# run-all.sh BUILD_DIR... - for each build (build/ is mbedTLS, build-openssl/ is OpenSSL): its unit test
# binaries (BUILD_DIR/test_*), then every integration suite (tests/integration/test_*.py) against that
# build's fetchd and fetchctl. Each suite ends with "N passed, N failed". Prints the sum as the last line
# and exits 1 when anything failed or a suite ended without its summary line.
# A build dir named *asan* is a sanitizer build: its reports go to files, and any report is a failure.
# build-fuzz/ holds the corpus replays of the fuzz harnesses (replay_*, built with gcc+ASan+UBSan).
# UNIT_ONLY=1 skips the integration suites.
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# The second WARC reader (npm's warcio), installed once for every suite; FETCHD_WARCIO says how it went.
if [ -z "${UNIT_ONLY:-}" ] && [ -z "${FETCHD_WARCIO:-}" ]; then
	if why=$("$here/lib/npm-deps.sh" 2>&1); then
		export FETCHD_WARCIO=ok
	else
		export FETCHD_WARCIO="$(printf '%s\n' "$why" | tail -n 1)"
		echo "NOTE: warcio is not available ($FETCHD_WARCIO): WARC files are checked by tests/lib/warcread.py alone"
	fi
fi
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
san_check() {  # dir: fail for every sanitizer report the runs left
	for r in "$1"/report.*; do
		[ -f "$r" ] || continue
		echo "== sanitizer report $r"; head -n 40 "$r"
		total_f=$((total_f + 1))
	done
}
for dir in "$@"; do
	tag=$(basename "$dir")
	unset ASAN_OPTIONS UBSAN_OPTIONS FETCHD_SAN
	case "$tag" in *asan*)
		sandir="$root/$dir/san"; rm -rf "$sandir"; mkdir -p "$sandir"
		export ASAN_OPTIONS="log_path=$sandir/report:detect_leaks=1:abort_on_error=0"
		export UBSAN_OPTIONS="log_path=$sandir/report:print_stacktrace=1:halt_on_error=1"
		export FETCHD_SAN=asan ;;
	esac
	case "$tag" in build-fuzz)  # the fuzz harnesses' corpus replays (make fuzz-replay-build)
		for b in "$root/$dir"/replay_*; do
			[ -x "$b" ] && run_one "$tag/$(basename "$b")" "$b"
		done
		continue ;;
	esac
	for b in "$root/$dir"/test_*; do
		[ -x "$b" ] && run_one "$tag/$(basename "$b")" "$b"
	done
	[ -n "${UNIT_ONLY:-}" ] && continue
	for t in "$here"/integration/test_*.py; do
		[ -f "$t" ] || continue
		run_one "$tag/$(basename "$t")" env FETCHD_BIN="$root/$dir/fetchd" FETCHCTL_BIN="$root/$dir/fetchctl" \
			python3 "$t"
	done
	case "$tag" in *asan*) san_check "$sandir" ;; esac
done
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
