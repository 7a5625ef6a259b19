#!/bin/sh
# npm-deps.sh - install the Node packages of tests/lib (package.json, pinned by package-lock.json:
# warcio, for warccheck.mjs) into tests/lib/node_modules with `npm ci`, only when node_modules is
# missing or was installed from another package-lock.json. Needs node >= 18 and npm (Debian: nodejs
# npm, which `tools/deps.sh ensure` installs). Exits 0 when node_modules is ready, 1 with the reason on
# stderr when it cannot be.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/node_modules/.fetchd-lock-sha256"

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "npm-deps: '$tool' not found: install Node.js >= 18 and npm" \
			"(Debian: apt-get install nodejs npm; or tools/deps.sh ensure)" >&2
		exit 1
	fi
done
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 18 ]; then
	echo "npm-deps: node $(node --version 2>/dev/null) is too old: warcio needs node >= 18" >&2
	exit 1
fi

want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ -f "$here/node_modules/warcio/package.json" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi
echo "npm-deps: installing tests/lib/node_modules (npm ci)" >&2
if ! (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
	echo "npm-deps: npm ci failed in $here" >&2
	exit 1
fi
echo "$want" > "$stamp"
