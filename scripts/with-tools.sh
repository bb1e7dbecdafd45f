#!/usr/bin/env bash
# Runs a command with the test tools ready: the pinned Python tools in .tools/venv (installed on
# first use, reinstalled when scripts/requirements-test.txt changes) and a moto server on a free
# loopback port, stopped however the command ends. Exports CALLBRIDGE_TEST_* for the tests.
# `with-tools.sh --install` only installs the tools (the suite does that while it compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
venv=$tools/venv
req=$root/scripts/requirements-test.txt

stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    printf '\n==> installing pinned test tools into .tools/venv\n'
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi
if [ "${1:-}" = --install ]; then
    exit 0
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tools/logs"
moto_log=$tools/logs/moto.log
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$moto_log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ready=
for _ in $(seq 1 200); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    cat "$moto_log" >&2
    echo "moto server did not start" >&2
    exit 1
fi

export CALLBRIDGE_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$port
export CALLBRIDGE_TEST_MOTO_SERVER=$venv/bin/moto_server
export CALLBRIDGE_TEST_VENV=$venv
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB

"$@"
