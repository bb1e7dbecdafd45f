#!/usr/bin/env bash
# The whole test suite (`make test`): formatting, lints, every Rust test (unit, handler, local
# server, DynamoDB against moto, 100ms against a mock server, the function binaries under a
# Lambda Runtime API harness), the benchmarks in test mode, and the template and API
# description checks. Its tools are installed, pinned, into .tools/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/with-tools.sh bash scripts/suite.sh
