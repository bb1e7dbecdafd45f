#!/usr/bin/env bash
# The steps of the test suite (`make test` runs it through scripts/test.sh), in two phases:
#  1. the build: cargo fmt --check, then one build of every binary and every test target with
#     clippy as the workspace's compiler wrapper (the lints of `cargo clippy --workspace
#     --all-targets -- -D warnings`, on the same compilation that the tests use, so the
#     dependencies are compiled once, not once for clippy and once for the tests); meanwhile the
#     pinned Python tools (.tools/venv) and the client tests' npm packages (.tools/node) install
#     in the background; then `make run` and Ctrl-C (scripts/make_run_test.sh);
#  2. with the tools (scripts/with-tools.sh: the venv and a moto server): cargo test, then side
#     by side the client tests, the template checks, the API description check and the API
#     fuzzing, each with its own log, printed when it ends.
# Each step's wall time and CPU time (user+sys) is printed at the end, also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
logs=$root/.tools/logs
mkdir -p "$logs"
timing=$logs/suite-steps.tsv

# A fresh build has nothing to reuse incrementally (CI=true in CI).
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi
# clippy-driver compiles the workspace's crates (what `cargo clippy` does, but producing code);
# phase 2's cargo test has the same wrapper, so it finds everything built.
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
export RUSTC_WORKSPACE_WRAPPER=$clippy_driver
export CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# User+sys time of this shell's finished children, in ms, into $cpu (`times` in this shell: in
# a command substitution's subshell it would count that subshell's children only).
cpu_now() {
    local f=$logs/.times.$BASHPID
    times > "$f"
    cpu=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] } printf "%d\n", s * 1000 }' "$f")
    rm -f "$f"
}
record() { # NAME WALL_MS CPU_MS STATUS
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$timing"
}
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
summary() {
    local total=$(($(now_ms) - SUITE_START_MS))
    printf '\n==> step times (wall, CPU = user+sys of the step'"'"'s processes; & = ran in the background, beside the steps around it)\n'
    printf '  %-66s %8s %8s\n' step wall CPU
    while IFS=$'\t' read -r name wall cpu status; do
        printf '  %-66s %7ss %7ss%s\n' "$name" "$(secs "$wall")" "$(secs "$cpu")" \
            "$([ "$status" = 0 ] || echo "  FAILED ($status)")"
    done < "$timing"
    printf '  %-66s %7ss\n' "total" "$(secs "$total")"
}

# run NAME CMD...: a step in the foreground (in a subshell, which counts its own processes' CPU
# time only, not that of the background steps that end meanwhile).
run() {
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    (
        w0=$(now_ms)
        rc=0
        "$@" || rc=$?
        cpu_now
        record "$name" $(($(now_ms) - w0)) "$cpu" $rc
        exit $rc
    )
}
# spawn NAME CMD...: a step in the background, its output in a log; collect prints it.
pids=()
names=()
spawn() {
    local name=$1
    shift
    local log=$logs/step-${#pids[@]}.log
    printf '\n==> %s: started in the background\n' "$name"
    (
        w0=$(now_ms)
        rc=0
        "$@" > "$log" 2>&1 < /dev/null || rc=$?
        cpu_now
        record "& $name" $(($(now_ms) - w0)) "$cpu" $rc
        exit $rc
    ) &
    pids+=($!)
    names+=("$name")
}
collect() {
    local i rc failed=0
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        printf '\n==> %s\n' "${names[$i]}"
        cat "$logs/step-$i.log"
        if [ $rc != 0 ]; then
            printf '%s: failed (exit %d)\n' "${names[$i]}" $rc
            failed=1
        fi
    done
    pids=()
    names=()
    return $failed
}

if [ -z "${CALLBRIDGE_TEST_VENV:-}" ]; then
    # Phase 1.
    export SUITE_START_MS=$(now_ms)
    : > "$timing"
    trap summary EXIT
    rm -f "$logs"/step-*.log
    spawn "pinned test tools into .tools/venv (scripts/with-tools.sh --install)" \
        bash scripts/with-tools.sh --install
    spawn "client tests' npm packages into .tools/node (scripts/clients_test.sh --install)" \
        bash scripts/clients_test.sh --install
    run "cargo fmt --check" cargo fmt --all -- --check
    run "cargo build: binaries, then every test target, clippy -D warnings on the workspace" \
        bash -c 'cargo build --workspace --bins --locked &&
            cargo test --workspace --all-targets --locked --no-run'
    run "make run, then Ctrl-C: make ends cleanly (scripts/make_run_test.sh)" \
        bash scripts/make_run_test.sh
    collect
    trap - EXIT
    exec bash scripts/with-tools.sh bash scripts/suite.sh
fi

# Phase 2. cargo test alone (its DynamoDB tests give moto, a Python server, 3 s per request:
# beside the Python checks on 2 cores they timed out), then the other checks side by side.
trap summary EXIT
py=$CALLBRIDGE_TEST_VENV/bin/python
test_rc=0
run "cargo test (every Rust test; the benchmarks once each in test mode)" \
    cargo test --workspace --all-targets --locked || test_rc=$?
spawn "clients: the JavaScript kit on stream-chat 8.61.0 and 9.53.0, the platform recipes (scripts/clients_test.sh)" \
    bash scripts/clients_test.sh
spawn "template checks: cfn-lint, sam validate --lint, scripts/check_template.py" \
    bash -c '"$CALLBRIDGE_TEST_VENV/bin/cfn-lint" template.yaml &&
        "$CALLBRIDGE_TEST_VENV/bin/sam" validate --lint &&
        "$CALLBRIDGE_TEST_VENV/bin/python" scripts/check_template.py'
spawn "API description: openapi.yaml against real responses (scripts/check_openapi.py)" \
    "$py" scripts/check_openapi.py
spawn "API fuzzing: schemathesis against the local server (scripts/fuzz_api.py)" \
    "$py" scripts/fuzz_api.py
collect_rc=0
collect || collect_rc=$?
[ $test_rc = 0 ] && [ $collect_rc = 0 ]
