#!/usr/bin/env bash
# make storage-profile: where the CPU of the storage path goes, on the local server and on the
# Lambda functions, as a breakdown by component and as flamegraphs.
#
# Builds the `profiling` profile (release with symbols and line tables), records the DynamoDB
# batches of scripts/storage_cpu.py with `perf record` (DWARF call graphs), and the local
# server's memory store batches, prints scripts/profile_breakdown.py's table and top ten
# symbols for each, and writes folded stacks and SVG flamegraphs
# (inferno, pinned, installed on first use under .tools/inferno) to
# $CARGO_TARGET_DIR/profiling/storage-profile/ (target/ by default). Needs `perf` (Debian:
# linux-perf) and permission to record (kernel.perf_event_paranoid <= 2 for one's own process).
set -euo pipefail
cd "$(dirname "$0")/.."

INFERNO_VERSION=0.12.8
target=${CARGO_TARGET_DIR:-$PWD/target}
out=$target/profiling/storage-profile
mkdir -p "$out"

command -v perf >/dev/null || { echo "storage-profile: perf not found (apt-get install linux-perf)" >&2; exit 2; }
if [ ! -x .tools/inferno/bin/inferno-flamegraph ]; then
    cargo install --locked --quiet inferno --version "$INFERNO_VERSION" --root .tools/inferno
fi

cargo build --profile profiling -p callbridge-local -p create-call -p get-call-token

python3 scripts/storage_cpu.py --profile profiling --requests 2000 --perf "$out/server.data"
python3 scripts/storage_cpu.py --profile profiling --requests 2000 --perf "$out/server-memory.data" \
    --perf-store memory
python3 scripts/storage_cpu.py --profile profiling --requests 2000 --lambda --perf "$out/lambda.data"

for data in server-memory server lambda.create-call lambda.get-call-token; do
    echo
    case $data in
        server-memory) echo "== $data (share of the memory store batches' samples)" ;;
        *) echo "== $data (share of the DynamoDB batches' samples)" ;;
    esac
    perf script -i "$out/$data.data" -F comm,tid,time,period,event,ip,sym,dso 2>/dev/null \
        | python3 scripts/profile_breakdown.py --top 10 --folded "$out/$data.folded"
    .tools/inferno/bin/inferno-flamegraph --title "callbridge $data, DynamoDB at a canned endpoint" \
        < "$out/$data.folded" > "$out/$data.svg"
done
echo
echo "flamegraphs: $out/*.svg"
