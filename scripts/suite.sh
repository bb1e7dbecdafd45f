#!/usr/bin/env bash
# The steps of the test suite; run through scripts/with-tools.sh (see scripts/test.sh).
set -euo pipefail
step() { printf '\n==> %s\n' "$*"; }
py=$CALLBRIDGE_TEST_VENV/bin/python

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo build --bins"
cargo build --workspace --bins --locked
step "cargo test"
cargo test --workspace --all-targets --locked

step "clients: the JavaScript kit on stream-chat 8.61.0 and 9.53.0, the platform recipes (scripts/clients_test.sh)"
clients_start=$(date +%s%N)
bash scripts/clients_test.sh
clients_ms=$(( ($(date +%s%N) - clients_start) / 1000000 ))
printf 'clients step: %d.%03d s wall time\n' $((clients_ms / 1000)) $((clients_ms % 1000))

step "template checks: cfn-lint, sam validate --lint, scripts/check_template.py"
"$CALLBRIDGE_TEST_VENV/bin/cfn-lint" template.yaml
"$CALLBRIDGE_TEST_VENV/bin/sam" validate --lint
"$py" scripts/check_template.py

step "API description: openapi.yaml against real responses (scripts/check_openapi.py)"
"$py" scripts/check_openapi.py

step "API fuzzing: schemathesis against the local server"
"$py" scripts/fuzz_api.py
