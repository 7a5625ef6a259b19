#!/bin/sh
# deps.sh install|ensure|ensure-bench|ensure-fuzz|list - the Debian packages fetchd needs to build, test,
# benchmark and fuzz.
#   install:      apt-get install all of them (root): what `make deps` runs.
#   ensure:       build + test packages, installed only when missing (root); else say what to install.
#   ensure-bench: the same, plus the benchmark's peers (libcurl, curl, wrk, aiohttp).
#   ensure-node:  Node.js and npm, for the tests' second WARC reader (npm's warcio), when missing.
#   ensure-fuzz:  build packages plus clang with libFuzzer and llvm-symbolizer (`make fuzz`); not needed
#                 by `make check` (the corpus replay builds with gcc).
set -eu
BUILD="gcc make libc6-dev liburing-dev libinih-dev libc-ares-dev libmbedtls-dev libssl-dev zlib1g-dev libhiredis-dev"
TEST="python3 redis-server redis-tools nginx-light libnginx-mod-http-echo dnsmasq-base valgrind openssl ca-certificates systemd tmux procps groff-base"
# Node.js and npm run the second WARC reader of the tests (npm's warcio: tests/lib/warccheck.mjs). They
# are not installed by `ensure` (Debian's npm brings hundreds of packages, and the first reader,
# tests/lib/warcread.py, needs only Python); `ensure-node` installs them when `node` or `npm` is missing
# (a Node.js installed another way is kept).
NODE="nodejs npm"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then NODE=""; fi
BENCH="libcurl4-openssl-dev curl wrk python3-aiohttp"
FUZZ="clang libclang-rt-14-dev llvm"
PKGS="$BUILD $TEST"

missing() {
	m=""
	for p in $1; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || m="$m $p"
	done
	echo "$m"
}

install() {
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing Debian packages:$1" >&2
		echo "deps: run as root: apt-get install$1   (or: sudo make deps)" >&2
		exit 1
	fi
	echo "deps: installing$1" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends $1 >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $1 >/dev/null; }
}

case "${1:-ensure}" in
	install)      install " $PKGS $BENCH" ;;
	ensure)       m=$(missing "$PKGS"); [ -z "$m" ] || install "$m" ;;
	ensure-bench) m=$(missing "$PKGS $BENCH"); [ -z "$m" ] || install "$m" ;;
	ensure-fuzz)  m=$(missing "$BUILD $FUZZ"); [ -z "$m" ] || install "$m" ;;
	ensure-node)  m=$(missing "$NODE"); [ -z "$m" ] || install "$m" ;;
	list)         echo "$PKGS $BENCH" ;;
	*)            echo "usage: deps.sh install|ensure|ensure-bench|ensure-fuzz|ensure-node|list" >&2; exit 2 ;;
esac
