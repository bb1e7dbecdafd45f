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

step "template checks: cfn-lint, sam validate --lint, scripts/check_template.py"
"$CALLBRIDGE_TEST_VENV/bin/cfn-lint" template.yaml
"$CALLBRIDGE_TEST_VENV/bin/sam" validate --lint
"$py" scripts/check_template.py

step "API description: openapi.yaml against real responses (scripts/check_openapi.py)"
"$py" scripts/check_openapi.py

step "API fuzzing: schemathesis against the local server"
"$py" scripts/fuzz_api.py
