#!/bin/sh
# run.sh SECONDS NAME... - run the libFuzzer harnesses build-fuzz/fuzz_NAME one after another (the
# machine has 2 cores; one fuzzer at a time keeps the figures honest), each for SECONDS, what `make fuzz`
# does. Each reads its committed corpus tests/fuzz/NAME/ (never written to) and keeps what it finds in
# build-fuzz/corpus-NAME/; a crashing input lands in build-fuzz/artifacts-NAME/; the whole log is
# build-fuzz/fuzz-NAME.log. tests/fuzz/NAME.dict is used when it exists. Prints one line per harness,
# "fuzz_http1: 1234567 runs in 60 s, no crash", and exits 1 when any harness crashed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 2
secs=$1
shift
status=0
summary=""
for n in "$@"; do
	bin=build-fuzz/fuzz_$n
	corpus=build-fuzz/corpus-$n
	art=build-fuzz/artifacts-$n
	log=build-fuzz/fuzz-$n.log
	[ -x "$bin" ] || { echo "run.sh: $bin is not built (make fuzz-build)" >&2; exit 2; }
	mkdir -p "$corpus" "$art"
	set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/"
	[ -f "tests/fuzz/$n.dict" ] && set -- "$@" -dict="tests/fuzz/$n.dict"
	echo "== fuzz_$n: $secs s, corpus tests/fuzz/$n + $corpus, log $log"
	start=$(date +%s)
	"$bin" "$@" "$corpus" "tests/fuzz/$n" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	# "Done N runs in S second(s)" at the end of a clean run; the final stats after a crash too
	runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	s=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)
	[ -n "$s" ] && took=$s
	[ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs="?"
	new=$(find "$corpus" -type f | wc -l)
	if [ "$rc" = 0 ]; then
		line="fuzz_$n: $runs runs in $took s, no crash"
	else
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		line="fuzz_$n: $runs runs in $took s, CRASH (exit $rc): ${crash:-see $log}"
		status=1
		grep -E 'invariant broken|ERROR: |runtime error|SUMMARY|#[0-9]+ 0x' "$log" | head -n 30
	fi
	echo "$line (build-fuzz corpus: $new files)"
	summary="$summary$line
"
done
echo "== fuzz summary"
printf '%s' "$summary"
exit $status
