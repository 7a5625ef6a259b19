#!/bin/sh
# deps.sh install|ensure|list - the Debian packages fetchd needs to build and test.
#   install: apt-get install all of them (root).
#   ensure:  install only when something is missing (root), else say what to install and fail.
set -eu
BUILD="gcc make libc6-dev liburing-dev libinih-dev libc-ares-dev libmbedtls-dev zlib1g-dev"
TEST="python3 nginx-light libnginx-mod-http-echo dnsmasq-base valgrind"
PKGS="$BUILD $TEST"

missing() {
	m=""
	for p in $PKGS; do
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
	install) install " $PKGS" ;;
	ensure)  m=$(missing); [ -z "$m" ] || install "$m" ;;
	list)    echo "$PKGS" ;;
	*)       echo "usage: deps.sh install|ensure|list" >&2; exit 2 ;;
esac
