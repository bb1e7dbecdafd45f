#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (unit, handler, local server, DynamoDB
# against moto, 100ms against a mock server, template checks) and the benchmarks in test mode.
# Installs its pinned tools into .tools/ (ignored by git) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
venv=$tools/venv
req=$root/scripts/requirements-test.txt

step() { printf '\n==> %s\n' "$*"; }

# 1. Pinned Python tools (moto server, cfn-lint), reinstalled when the pins change.
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    step "installing pinned test tools into .tools/venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi

# 2. moto server on a free loopback port, stopped however this script ends.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tools/logs"
moto_log=$tools/logs/moto.log
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$moto_log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; echo "moto server did not start" >&2; exit 1; }
    sleep 0.1
done

export CALLBRIDGE_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$port
export CALLBRIDGE_TEST_MOTO_SERVER=$venv/bin/moto_server
export CALLBRIDGE_TEST_TOOLS=$venv/bin
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo build --bins"
cargo build --workspace --bins --locked
step "cargo test"
cargo test --workspace --all-targets --locked
