#!/usr/bin/env bash
# `make run`, then Ctrl-C, ends the way Ctrl-C ends make: status 130 (make re-raises SIGINT)
# and no "make: ***" line (before scripts/run.sh, about 1 run in 4 ended "make: *** wait: No
# child processes. Stop." with status 2). Starts `make run` RUNS times (default 10) in a
# process group of its own on a free port, waits for the banner, sends SIGINT to the group as
# a terminal's Ctrl-C does, and checks the status and stderr. The race it guards against is
# timing-dependent: before the fix, 1 to 2 runs in 8 failed on the 2-core machine, so a
# passing run of this script is evidence, not proof. Needs callbridge-local built. Prints
# `N passed, M failed` last.
set -uo pipefail
cd "$(dirname "$0")/.."
set -m # each background job in a process group of its own, SIGINT not ignored
runs=${RUNS:-10}
passed=0
failed=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT
for i in $(seq "$runs"); do
    # SIGINT back to its default for make, as in a terminal, even where this script was started
    # with it ignored (a background job's lot): make then installs its handler.
    CALLBRIDGE_PORT=0 python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' make --no-print-directory run > /dev/null 2> "$err" < /dev/null &
    pid=$!
    up=
    for _ in $(seq 2400); do
        if grep -q "listening on" "$err"; then
            up=1
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -INT -- -"$pid" 2>/dev/null
    wait "$pid"
    status=$?
    if [ -n "$up" ] && [ "$status" = 130 ] && ! grep -q "^make.*\*\*\*" "$err"; then
        passed=$((passed + 1))
        echo "run $i: status 130, no make error: ok"
    else
        failed=$((failed + 1))
        echo "run $i: FAILED: started=${up:-no} status=$status; stderr ends:"
        tail -n 5 "$err" | sed 's/^/    /'
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
