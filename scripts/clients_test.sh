#!/usr/bin/env bash
# The client tests: the JavaScript kit (clients/js) with stream-chat 8.61.0 and 9.x, and each
# platform's documented request (README "Clients"), against the local server binary. Installs
# clients/js/test/package-lock.json into .tools/node with `npm ci` on first use and whenever
# the lock changes. Needs callbridge-local built (cargo build --workspace --bins).
# `clients_test.sh --install` only installs the packages (the suite does that while it compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/.tools/node
spec=$root/clients/js/test

stamp=$dir/.lock.sha256
want=$(cat "$spec/package.json" "$spec/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -d "$dir/node_modules/stream-chat-8" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    printf '\n==> installing the client tests'"'"' pinned npm packages into .tools/node\n'
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$spec/package.json" "$spec/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi
# The kit as an installed package, for the banner's `require('callbridge-stream-chat')`.
ln -sfn "$root/clients/js" "$dir/node_modules/callbridge-stream-chat"
if [ "${1:-}" = --install ]; then
    exit 0
fi

bin=${CALLBRIDGE_BIN_DIR:-$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")/debug}/callbridge-local
if [ ! -x "$bin" ]; then
    echo "clients_test: $bin is missing; run cargo build -p callbridge-local first" >&2
    exit 1
fi

"$dir/node_modules/.bin/tsc" -p "$spec/tsconfig.json"
CALLBRIDGE_LOCAL_BIN=$bin CALLBRIDGE_NODE_MODULES=$dir/node_modules \
    node --test --test-force-exit --test-reporter=spec "$spec"/*.test.mjs
