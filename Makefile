# The two commands a newcomer needs:
#   make run    start the local server (sandbox credentials unless STREAM_API_KEY is set)
#   make test   run the whole test suite (installs its pinned tools into .tools/)
#
# Everything else is optional:
#   make bench          criterion benchmarks (token build, handlers, DynamoDB adapter)
#   make cold-start     cold start and peak RSS of get-call-token under the Runtime API harness,
#                       beside a hello-world lambda_runtime function's
#   make storage-cpu    server CPU per request, memory store vs DynamoDB at a canned endpoint,
#                       and the Lambda functions' CPU per invocation under a Runtime API emulator
#   make storage-profile  the same under perf: breakdown by component and flamegraphs
#   make sdk-instructions instructions per request (valgrind) of the DynamoDB client, per SDK option
#   make compare        storage-cpu beside the Node.js references in benches/node (a Node local
#                       server on a Map, a Node Lambda handler on the canned DynamoDB), in one run
#   make agora-check    Agora's official Node parser (agora-token 2.0.6) on tokens built here
#   make lambda-tools   install cargo-lambda and zig (pinned) into .tools/lambda
#   make lambda         build the four functions for Lambda (arm64) with cargo-lambda
#   make lambda-x86     the same for x86_64
#   make sam-build      sam build (runs cargo-lambda per function)
#   make smoke API=<ApiUrl> STREAM_API_KEY=... STREAM_API_SECRET=...
#                       smoke test of a deployed stack as a client (scripts/smoke.py, Python 3
#                       stdlib only; the test suite runs it against the local server)
.PHONY: run test bench cold-start storage-cpu storage-profile sdk-instructions compare agora-check node-reference lambda-tools lambda lambda-x86 sam-cli sam-build smoke

LAMBDA_VENV := .tools/lambda
LAMBDA_PATH := $(CURDIR)/$(LAMBDA_VENV)/bin:$(PATH)

# Through scripts/run.sh so that Ctrl-C ends make cleanly (see there).
run:
	@bash scripts/run.sh

test:
	bash scripts/test.sh

bench:
	cargo bench -p callbridge

# Release binaries where cargo puts them: CARGO_TARGET_DIR when set, else target/.
RELEASE_DIR := $(abspath $(or $(CARGO_TARGET_DIR),$(CURDIR)/target))/release

# get-call-token and a hello-world lambda_runtime function (the yardstick), same profile; the
# other functions' release binaries beside them.
cold-start:
	cargo build --release -p create-call -p get-call-token -p end-call -p provider-events
	cargo build --release -p callbridge-lambda --example hello-lambda
	CALLBRIDGE_BIN_DIR=$(RELEASE_DIR) bash scripts/with-tools.sh \
		cargo test -p callbridge-tests --test api -- --ignored --nocapture lambda_runtime::cold_start

storage-cpu:
	cargo build --release -p callbridge-local -p create-call -p get-call-token
	python3 scripts/storage_cpu.py
	python3 scripts/storage_cpu.py --lambda

storage-profile:
	bash scripts/storage_profile.sh

sdk-instructions:
	cargo build --profile bench -p callbridge --example sdk_instructions
	python3 scripts/sdk_instructions.py

# The Node.js references' pinned packages (benches/node/package-lock.json), installed under
# benches/node/node_modules (ignored). Neither target is part of make test.
node-reference:
	test -d benches/node/node_modules || npm ci --prefix benches/node --no-audit --no-fund

compare: node-reference
	cargo build --release -p callbridge-local -p create-call -p get-call-token
	python3 scripts/storage_cpu.py --node --rounds 5 --warmup 2000
	python3 scripts/storage_cpu.py --node --rounds 5 --warmup 2000 --lambda

agora-check: node-reference
	cargo run --quiet -p callbridge --example agora_tokens -- 500 | node benches/node/verify_agora_tokens.mjs

lambda-tools:
	test -x $(LAMBDA_VENV)/bin/cargo-lambda || { python3 -m venv $(LAMBDA_VENV) && \
		$(LAMBDA_VENV)/bin/pip install --quiet cargo-lambda==1.9.2 ziglang==0.13.0.post1; }

lambda: lambda-tools
	rustup target add aarch64-unknown-linux-gnu
	PATH=$(LAMBDA_PATH) cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 -p create-call -p get-call-token -p end-call -p provider-events

lambda-x86: lambda-tools
	PATH=$(LAMBDA_PATH) cargo lambda build --release -p create-call -p get-call-token -p end-call -p provider-events

# The SAM CLI on PATH, else the pinned one make test installs.
SAM := $(or $(shell command -v sam 2>/dev/null),$(wildcard $(CURDIR)/.tools/venv/bin/sam))

sam-cli:
	@test -n "$(SAM)" || { echo "sam-build: no SAM CLI: install the AWS SAM CLI, or run make test once (it installs a pinned one into .tools/venv)" >&2; exit 1; }

sam-build: sam-cli lambda-tools
	rustup target add aarch64-unknown-linux-gnu
	PATH=$(LAMBDA_PATH) SAM_CLI_TELEMETRY=0 $(SAM) build

# The key and secret reach the script through the environment (make exports command-line
# variables), never through its command line or this recipe's echo.
smoke:
	@test -n "$(API)" || { echo "smoke: give API=<ApiUrl> (the stack's output), STREAM_API_KEY and STREAM_API_SECRET" >&2; exit 2; }
	python3 scripts/smoke.py --api "$(API)"
