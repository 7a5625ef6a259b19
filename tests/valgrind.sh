#!/bin/sh
# valgrind.sh [SUITE...] - the integration suites with every fetchd under valgrind memcheck (make
# valgrind). Each fetchd writes its report to build/valgrind/vg.PID; any error or definite leak in
# one fails the run. Slow (valgrind runs the daemon 20-50x slower), so not part of make check; suites
# whose timings valgrind distorts may fail on their own - their reports still count.
# Prints "N passed, N failed" last: the suites' own sums plus one failure per bad report.
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$root/build/valgrind"
rm -rf "$out"
mkdir -p "$out"
export FETCHD_WRAP="valgrind -q --log-file=$out/vg.%p --leak-check=full --errors-for-leak-kinds=definite --track-origins=yes"
suites=${*:-test_fetch test_errors test_crawl}
total_p=0 total_f=0
for s in $suites; do
	res=$(cd "$root" && python3 "tests/integration/$s.py" 2>&1 | tail -n 1)
	echo "$s: $res"
	case "$res" in *" passed, "*" failed") ;; *) total_f=$((total_f + 1)); continue ;; esac
	p=${res%% passed*}; f=${res#*, }; f=${f%% failed*}
	total_p=$((total_p + p)); total_f=$((total_f + f))
done
bad=0
for r in "$out"/vg.*; do
	[ -s "$r" ] || continue
	echo "== valgrind report $r"; head -n 40 "$r"
	bad=$((bad + 1))
done
echo "valgrind: $(ls "$out" | wc -l) fetchd runs, $bad with errors or definite leaks"
total_f=$((total_f + bad))
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
