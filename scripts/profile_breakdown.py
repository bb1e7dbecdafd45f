#!/usr/bin/env python3
"""Where a profile of the server's CPU goes, by component and by mode.

Reads `perf script` output (a `perf record --call-graph` of callbridge-local, as
`scripts/storage_cpu.py --perf FILE` makes) on standard input, and prints each component's
share of the samples, split into kernel, C library (malloc, memcpy) and Rust user code; with
`--folded FILE` it also writes the stacks folded for a flamegraph (inferno-flamegraph), and
with `--top N` it prints the N symbols with the most samples of their own (leaf frames).

A sample belongs to the innermost component its stack passes through, read from the root to
the leaf: the local server's HTTP layer or the Lambda runtime client and adapter, Callbridge
(auth, use case, token), the AWS SDK (orchestrator, endpoint, signing, (de)serialisation,
retries), the HTTP clients (hyper: the SDK's, the Runtime API's), or the tokio runtime itself
(scheduling, waking another thread, parking in epoll, timers).

    perf script -i FILE | python3 scripts/profile_breakdown.py [--folded OUT] [--top N]
"""

import argparse
import collections
import re
import sys

# (component, pattern): scanned from the root frame to the leaf; the last match wins.
MARKERS = [
    ("local server HTTP (hyper server)", re.compile(r"callbridge_local|role::Server")),
    ("Lambda runtime and adapter (Runtime API, event, logs, EMF)",
     re.compile(r"lambda_runtime|callbridge_lambda")),
    ("Callbridge (auth, use case, token, JSON)", re.compile(r"^callbridge::|<callbridge::")),
    ("AWS SDK (orchestrator, endpoint, SigV4, serde, retry)", re.compile(r"^<?aws_(?!lc)")),
    ("HTTP clients (hyper: DynamoDB's, the Runtime API's)",
     re.compile(r"hyper_util::client|hyper::client|role::Client|aws_smithy_http_client")),
    # Waking, parking and driving: also where a component's wake of another worker ends up.
    ("tokio runtime (scheduler, wakes, park, timers)",
     re.compile(r"tokio::runtime::(scheduler|park|time|driver|io)")),
]
RUNTIME = MARKERS[-1][0]
OTHER = "other"


def mode(frame_dso, symbol):
    if frame_dso.startswith("[kernel") or symbol.startswith("[k]"):
        return "kernel"
    if "libc.so" in frame_dso or "libm.so" in frame_dso or "ld-linux" in frame_dso:
        return "libc"
    return "user"


FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$")


def samples(lines):
    """Yields (period, frames leaf-first as (symbol, dso))."""
    period, frames = None, []
    for line in lines:
        if not line.strip():
            if period is not None and frames:
                yield period, frames
            period, frames = None, []
            continue
        if not line[0].isspace():
            # "comm tid time: period event:" (period present with -F ...,period; else 1)
            m = re.search(r":\s+(\d+)\s+\S+:\s*$", line)
            period = int(m.group(1)) if m else 1
            continue
        m = FRAME.match(line)
        if m:
            symbol = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((symbol, m.group(2)))
    if period is not None and frames:
        yield period, frames


def classify(frames):
    component = None
    for symbol, _ in reversed(frames):
        for name, pattern in MARKERS:
            if pattern.search(symbol):
                component = name
    if component is None:
        if any("tokio::" in s for s, _ in frames):
            return RUNTIME
        return OTHER
    return component


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folded", metavar="OUT", help="write folded stacks to OUT")
    parser.add_argument("--top", type=int, default=0, metavar="N",
                        help="also print the N symbols with the most self samples")
    args = parser.parse_args()
    table = collections.defaultdict(collections.Counter)
    folded = collections.Counter()
    leaves = collections.Counter()
    total = 0
    for period, frames in samples(sys.stdin):
        total += period
        leaf_symbol, leaf_dso = frames[0]
        table[classify(frames)][mode(leaf_dso, leaf_symbol)] += period
        leaves[(leaf_symbol[:90], leaf_dso.rsplit("/", 1)[-1])] += period
        if args.folded:
            folded[";".join(s.replace(";", ":") for s, _ in reversed(frames))] += period
    if not total:
        sys.exit("no samples on standard input")
    print(f"{'component':58} {'all':>6} {'kernel':>7} {'libc':>6} {'user':>6}")
    for name, modes in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
        share = {k: 100 * v / total for k, v in modes.items()}
        print(f"{name:58} {sum(share.values()):5.1f}% {share.get('kernel', 0):6.1f}% "
              f"{share.get('libc', 0):5.1f}% {share.get('user', 0):5.1f}%")
    if args.top:
        print(f"\n{'self':>6}  top {args.top} symbols (leaf frames)")
        for (symbol, dso), period in leaves.most_common(args.top):
            print(f"{100 * period / total:5.1f}%  {symbol}  [{dso}]")
    if args.folded:
        with open(args.folded, "w") as out:
            for stack, count in folded.items():
                out.write(f"{stack} {count}\n")


if __name__ == "__main__":
    main()
