#!/usr/bin/env bash
# The whole test suite (`make test`): formatting, lints, every Rust test (unit, handler, local
# server, DynamoDB against moto, 100ms against a mock server, the function binaries under a
# Lambda Runtime API harness), the benchmarks in test mode, the client tests, and the template
# and API description checks. Its tools are installed, pinned, into .tools/ on first use
# (scripts/with-tools.sh, scripts/clients_test.sh); scripts/suite.sh runs the steps and prints
# each one's wall and CPU time at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/suite.sh
