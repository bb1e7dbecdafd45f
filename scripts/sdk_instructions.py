#!/usr/bin/env python3
"""Instructions per request of the storage path, per SDK option: a count that does not drift.

CPU time on a shared virtual machine moves by tens of percent between runs, more than most
SDK options change; instruction counts under valgrind (callgrind) move by less than 0.1%.
Runs shared/examples/sdk_instructions.rs (build it first: `cargo build --profile bench -p
callbridge --example sdk_instructions`; CARGO_TARGET_DIR honoured) under callgrind for two
request counts per variant and operation, and prints the difference per request: the
in-memory store, the production DynamoDB client (canned answers, no network), and the SDK
options Callbridge keeps (retries, timeouts) or could turn off (account-based endpoints),
each against production. Needs valgrind.

    python3 scripts/sdk_instructions.py [--requests 200]
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["memory_store", "production", "no_retries", "no_timeouts",
            "account_id_endpoints_disabled"]


def instructions(binary, variant, operation, n):
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         str(binary), variant, operation, str(n)],
        capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        sys.exit(f"{variant} {operation} {n}: exit {run.returncode}\n{run.stderr[-2000:]}")
    m = re.search(r"Collected : (\d+)", run.stderr)
    if not m:
        sys.exit(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
    return int(m.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    n = max(20, min(args.requests, 5000))
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    binary = target / "release" / "examples" / "sdk_instructions"
    if not binary.is_file():
        sys.exit(f"{binary} not found: cargo build --profile bench -p callbridge "
                 "--example sdk_instructions")
    print(f"instructions per request (callgrind; {n} requests minus 10, per request):")
    for operation, label in (("get", "Get Call Token"), ("create", "Create Call (new)")):
        per = {}
        for variant in VARIANTS:
            per[variant] = (instructions(binary, variant, operation, n + 10)
                            - instructions(binary, variant, operation, 10)) / n
        print(f" {label}")
        for variant in VARIANTS:
            note = ""
            if variant == "production":
                note = f"   DynamoDB client {per[variant] - per['memory_store']:+,.0f}"
            elif variant != "memory_store":
                note = f"   vs production {per[variant] - per['production']:+,.0f}"
            print(f"  {variant:31} {per[variant]:>10,.0f}{note}")


if __name__ == "__main__":
    main()
