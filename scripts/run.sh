#!/usr/bin/env bash
# `make run`: builds the local server and runs it in the foreground until Ctrl-C.
#
# Ctrl-C reaches make, this script and the server at once (one process group). The server
# shuts down gracefully within milliseconds; had make's child (before this script, the server
# itself, as `cargo run` execs it) already ended when make took the signal, make's SIGINT
# handler found no child left to wait for and ended with "make: *** wait: No child processes.
# Stop." and status 2 (a race, about 1 run in 4 here). So after the server ends on Ctrl-C this
# script waits (at most 2 s) until make is in its handler (SIGINT blocked in its signal mask),
# and only then ends: make then reaps it and ends as on any Ctrl-C (status 130, no message).
# scripts/make_run_test.sh checks it.
set -uo pipefail
cd "$(dirname "$0")/.."

interrupted=
# A handler, not an ignore: the server (and cargo) get SIGINT's default action and their own.
trap 'interrupted=1' INT

finish() {
    if [ -n "$interrupted" ] && [ "$(cat "/proc/$PPID/comm" 2>/dev/null)" = make ]; then
        local blk
        for _ in $(seq 40); do
            blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$PPID/status" 2>/dev/null)
            [ -n "$blk" ] || break
            (((16#$blk & 2) != 0)) && break
            sleep 0.05
        done
    fi
    exit "$1"
}

# Every binary, as `make test` builds them: the same dependency features, so neither rebuilds
# what the other built (`-p callbridge-local` alone would compile some dependencies again).
cargo build --quiet --workspace --bins || finish $?
"$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/callbridge-local" "$@"
finish $?
