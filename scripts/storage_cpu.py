#!/usr/bin/env python3
"""CPU per request of the storage path: the release local server, or the Lambda functions.

Server mode (the default) runs callbridge-local (target/<profile>/, CARGO_TARGET_DIR honoured;
build it first: `cargo build --release -p callbridge-local`) on loopback with the in-memory
store and with DynamoDB at a canned HTTP endpoint in this script (GetItem answers the call asked
for, PutItem succeeds, both at once). It sends Create Call (each a new call) and Get Call Token
requests, one keep-alive connection, one at a time, and reads the server's CPU time (all its
threads, user and kernel: /proc/<pid>/task/*/schedstat) before and after each batch. It prints
CPU us per request on each store and the difference: the DynamoDB client's share.

`--lambda` runs the two function binaries (create-call, get-call-token) as Lambda runs them,
under a Runtime API emulator in this script, against the same canned DynamoDB, and prints CPU
us per invocation: the Runtime API round trips, the event, the handler, DynamoDB, the logs and
the metrics, all of the production path but the network.

`--node` adds the Node.js references in benches/node (`make compare` installs them) to every
round, interleaved with the Rust builds: in server mode the Node local server on its memory
store (a Map), with `--lambda` the Node handler under the same Runtime API emulator and canned
DynamoDB; it prints each Rust figure's ratio to Node's, computed round by round.

Rounds (`--rounds`, 3) are repeated and their median printed with the range: CPU time on a
shared virtual machine drifts by tens of percent. `--bin-dir` (repeatable) runs the binaries
of other builds, interleaved round by round, to compare them. `--perf FILE` records the
DynamoDB batches with `perf record` (DWARF call graphs; build with `--profile profiling` for
symbols); `scripts/profile_breakdown.py` and inferno turn that into a breakdown and a
flamegraph (`make storage-profile` does all of it). Only loopback addresses; stops by itself.
Python 3 standard library only.

    python3 scripts/storage_cpu.py [--lambda] [--requests 3000] [--rounds 3]
        [--profile release | --bin-dir DIR ...] [--node] [--warmup 50] [--perf FILE]
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import hs256  # scripts/hs256.py

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "benches" / "node"
# The Node.js references run in place of a binary directory's binaries.
NODE = Path("node")
# Requests before each measured batch (--warmup): connections, pools, first-use paths, and
# for Node its JIT compiler, which 50 requests leave half done.
WARMUP = 50
SECRET = "cpu-secret"
KEY = "cpu-key"


def user_token(user):
    return hs256.sign({"user_id": user}, SECRET)


def item(pk):
    return {
        "pk": {"S": pk}, "cid": {"S": "messaging:general"}, "call_type": {"S": "video"},
        "provider": {"S": "agora"}, "agora_channel": {"S": pk}, "created_by": {"S": "alice"},
        "created_at": {"N": "1800000000"}, "expires_at": {"N": "4102444800"},
    }


class CannedDynamo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer, sent at once: no Nagle, no delayed-ACK stalls on keep-alive.
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        target = self.headers.get("x-amz-target", "")
        if target.endswith(".GetItem"):
            answer = {"Item": item(request["Key"]["pk"]["S"])}
        else:
            answer = {}
        body = json.dumps(answer).encode()
        head = ("HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n"
                f"content-length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total


def command(bin_dir, name):
    """How to start `name` (callbridge-local, create-call, get-call-token) of a build, or the
    Node.js reference standing for it."""
    if bin_dir == NODE:
        script = "server.mjs" if name == "callbridge-local" else "lambda.mjs"
        return ["node", str(NODE_DIR / script)]
    return [str(bin_dir / name)]


def start_server(cmd, env):
    port = free_port()
    proc = subprocess.Popen(cmd, env={**env, "CALLBRIDGE_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("the server did not listen within 15 s")


def start_perf(pid, output):
    """`perf record` of the server (all threads, DWARF call graphs), until SIGINT."""
    perf = subprocess.Popen(["perf", "record", "-F", "2000", "--call-graph", "dwarf,16384",
                             "-p", str(pid), "-o", output, "-q"],
                            stdout=subprocess.DEVNULL)
    time.sleep(1)  # perf attaches
    if perf.poll() is not None:
        sys.exit(f"perf record exited with {perf.returncode}")
    return perf


def stop(perf, proc):
    """Ends the recording (perf writes its file on SIGINT), then the measured process."""
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    proc.terminate()
    proc.wait(timeout=10)


def batch(port, pid, requests, make):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    token = user_token("alice")
    headers = {"authorization": token, "stream-auth-type": "jwt",
               "content-type": "application/json"}
    # Warm-up: connections, pools, first-use paths.
    for i in range(WARMUP):
        path, body = make(f"warm{i}")
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, (resp.status, path)
    before = cpu_ns(pid)
    started = time.monotonic()
    for i in range(requests):
        path, body = make(str(i))
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 201:
            sys.exit(f"{path}: HTTP {resp.status}")
    elapsed = time.monotonic() - started
    used = cpu_ns(pid) - before
    conn.close()
    return used / requests / 1e3, requests / elapsed


def create(i):
    return (f"/channels/messaging/general/call?api_key={KEY}",
            json.dumps({"id": f"cpu-{i}-{os.getpid()}", "type": "video"}))


def get_token(i):
    return f"/calls/cpu-{i}?api_key={KEY}", "{}"


def seed(port, ids):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"authorization": user_token("alice"), "stream-auth-type": "jwt"}
    for i in ids:
        conn.request("POST", f"/channels/messaging/general/call?api_key={KEY}",
                     body=json.dumps({"id": f"cpu-{i}", "type": "video"}), headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
    conn.close()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """The Lambda Runtime API, as far as a function uses it: `next` hands out the events queued
    in `server.events` one at a time (and waits for one), `response` and `error` hand the
    outcome back through `server.outcomes`."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):  # noqa: N802
        if not self.path.endswith("/runtime/invocation/next"):
            return self.answer(404, b"{}")
        request_id, event = self.server.events.get()
        deadline = int(time.time() * 1000) + 30_000
        body = event.encode()
        head = ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"lambda-runtime-aws-request-id: {request_id}\r\n"
                f"lambda-runtime-deadline-ms: {deadline}\r\n"
                "lambda-runtime-invoked-function-arn: "
                "arn:aws:lambda:us-east-1:123456789012:function:callbridge-cpu\r\n"
                "lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\n"
                f"content-length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.answer(202, b"{}")
        self.server.outcomes.put((self.path, body))

    def answer(self, status, body):
        self.wfile.write((f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n\r\n")
                         .encode() + body)

    def log_message(self, *args):
        pass


def lambda_event(name, **change):
    event = json.loads((ROOT / "tests" / "events" / f"{name}.json").read_text())
    event.update(change)
    return event


def lambda_batch(cmd, env, requests, make, perf_output=None):
    """CPU per invocation of one function under the Runtime API above."""
    import queue
    name = Path(cmd[-1]).name
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    api.events, api.outcomes = queue.Queue(), queue.Queue()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    proc = subprocess.Popen(cmd,
                            env={**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_port}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def invoke(i):
        api.events.put((f"req-{i}", json.dumps(make(i))))
        try:
            path, body = api.outcomes.get(timeout=15)
        except queue.Empty:
            sys.exit(f"{name}: no outcome within 15 s (exit code {proc.poll()})")
        status = json.loads(body).get("statusCode") if path.endswith("/response") else None
        if status != 201:
            sys.exit(f"{name}: {path} {body[:300]!r}")

    perf = None
    try:
        for i in range(WARMUP):
            invoke(f"warm{i}")
        if perf_output:
            perf = start_perf(proc.pid, perf_output)
        before = cpu_ns(proc.pid)
        started = time.monotonic()
        for i in range(requests):
            invoke(str(i))
        elapsed = time.monotonic() - started
        used = cpu_ns(proc.pid) - before
    finally:
        stop(perf, proc)
        api.shutdown()
    return used / requests / 1e3, requests / elapsed


def lambda_create(i):
    event = lambda_event("create-call")
    event["body"] = json.dumps({"id": f"cpu-{i}-{os.getpid()}", "type": "video"})
    return event


def lambda_get_token(i):
    event = lambda_event("get-call-token")
    event["rawPath"] = f"/calls/cpu-{i}"
    event["requestContext"]["http"]["path"] = event["rawPath"]
    event["pathParameters"] = {"id": f"cpu-{i}"}
    return event


def lambda_round(bin_dir, requests, dynamo_env, perf=None):
    """One round of both functions: {function: (us, per second)}."""
    env = {
        # Logging as deployed (AWS_LAMBDA_LOG_LEVEL unset: info), not the server's warn.
        **{k: v for k, v in dynamo_env.items() if k != "RUST_LOG"},
        "STREAM_API_KEY": "callbridge-fixture-key", "STREAM_API_SECRET": "callbridge-fixture-secret",
        "AWS_LAMBDA_FUNCTION_NAME": "callbridge-cpu", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/callbridge-cpu",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0000", "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }
    results = {}
    for name, make in (("create-call", lambda_create), ("get-call-token", lambda_get_token)):
        # One recording per function: lambda.data -> lambda.create-call.data, ...
        output = perf and str(Path(perf).with_suffix(f".{name}{Path(perf).suffix}"))
        run_env = {**env, "CALLBRIDGE_OPERATION": name} if bin_dir == NODE else env
        results[name] = lambda_batch(command(bin_dir, name), run_env, requests, make, output)
    return results


def server_round(bin_dir, requests, stores, perf=None, perf_store="dynamodb"):
    """One round of the local server on each store: {(store, operation): (us, per second)}."""
    results = {}
    for store, env in stores.items():
        if bin_dir == NODE and store != "memory":
            continue  # the Node server keeps its calls in a Map
        proc, port = start_server(command(bin_dir, "callbridge-local"), env)
        recorder = None
        try:
            if perf and store == perf_store:
                recorder = start_perf(proc.pid, perf)
            results[(store, "CreateCall")] = batch(port, proc.pid, requests, create)
            if store == "memory":
                # Get Call Token needs its calls in the store: created first, not counted.
                seed(port, [f"warm{i}" for i in range(WARMUP)] + [str(i) for i in range(requests)])
            results[(store, "GetCallToken")] = batch(port, proc.pid, requests, get_token)
        finally:
            stop(recorder, proc)
    return results


def spread(values):
    values = sorted(values)
    return f"{statistics.median(values):6.1f} us ({values[0]:.0f}-{values[-1]:.0f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per batch (3000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per binary directory, interleaved; medians printed (3)")
    parser.add_argument("--profile", default="release",
                        help="the cargo profile whose binaries to run (release)")
    parser.add_argument("--bin-dir", action="append", type=Path, metavar="DIR",
                        help="run the binaries in DIR instead (repeat to compare builds: their "
                        "rounds interleave, so drift of the machine hits all alike)")
    parser.add_argument("--lambda", dest="functions", action="store_true",
                        help="measure the two Lambda function binaries instead, under a "
                        "Runtime API emulator (DynamoDB only)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="requests before each measured batch, not counted (50)")
    parser.add_argument("--node", action="store_true",
                        help="also run the Node.js references in benches/node (make compare "
                        "installs them), interleaved, and print the ratios")
    parser.add_argument("--perf", metavar="FILE",
                        help="also record the DynamoDB batches with `perf record` into FILE "
                        "(one round; with --lambda, one file per function: FILE's name "
                        "with the function's before its suffix)")
    parser.add_argument("--perf-store", choices=("memory", "dynamodb"), default="dynamodb",
                        help="in server mode, the store whose batches --perf records (dynamodb)")
    args = parser.parse_args()
    global WARMUP
    WARMUP = max(1, min(args.warmup, 100_000))
    requests = max(100, min(args.requests, 100_000))
    rounds = 1 if args.perf else max(1, min(args.rounds, 20))
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    dirs = args.bin_dir or [target / args.profile]
    names = ["create-call", "get-call-token"] if args.functions else ["callbridge-local"]
    if args.node:
        if not (NODE_DIR / "node_modules").is_dir():
            sys.exit("benches/node/node_modules not found: make compare installs it "
                     "(npm ci --prefix benches/node)")
        dirs = dirs + [NODE]
    for d in dirs:
        for name in names:
            if d != NODE and not (d / name).is_file():
                sys.exit(f"{d / name} not found: cargo build --profile {args.profile} "
                         f"-p {name}")

    dynamo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CannedDynamo)
    threading.Thread(target=dynamo.serve_forever, daemon=True).start()
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "STREAM_API_KEY": KEY, "STREAM_API_SECRET": SECRET, "CALLBRIDGE_MEMBERSHIP": "off",
        "AGORA_APP_ID": "970CA35de60c44645bbae8a215061b33",
        "AGORA_APP_CERTIFICATE": "5CFd2fd1755d40ecb72977518be15d3b",
        "RUST_LOG": "warn",
    }
    stores = {
        "memory": base,
        "dynamodb": {**base, "CALLBRIDGE_TABLE_NAME": "calls", "AWS_REGION": "us-east-1",
                     "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "cpu",
                     "AWS_EC2_METADATA_DISABLED": "true",
                     "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{dynamo.server_port}"},
    }
    runs = {d: [] for d in dirs}
    for _ in range(rounds):
        for d in dirs:
            if args.functions:
                runs[d].append(lambda_round(d, requests, stores["dynamodb"], args.perf))
            else:
                runs[d].append(server_round(d, requests, stores, args.perf, args.perf_store))
    dynamo.shutdown()

    if args.functions:
        print(f"function CPU per invocation (all threads; median and range of {rounds} rounds "
              f"of {requests}), under a Runtime API emulator, DynamoDB at a canned endpoint:")
    else:
        print(f"server CPU per request (all threads; median and range of {rounds} rounds of "
              f"{requests}, one connection):")
    def ratio(d, key):
        """Node's CPU over this build's, round by round: median and range."""
        if NODE not in runs or d == NODE:
            return ""
        values = sorted(n[key][0] / r[key][0] for r, n in zip(runs[d], runs[NODE]))
        return f"   Node/this {statistics.median(values):.1f}x ({values[0]:.1f}-{values[-1]:.1f})"

    for d in dirs:
        print(f" {'node (benches/node)' if d == NODE else d}")
        if args.functions:
            for name in names:
                print(f"  {name:15} {spread([r[name][0] for r in runs[d]])}{ratio(d, name)}")
            continue
        for op in ("CreateCall", "GetCallToken"):
            mem = [r[("memory", op)][0] for r in runs[d]]
            if d == NODE:
                print(f"  {op:13} memory {spread(mem)}")
                continue
            ddb = [r[("dynamodb", op)][0] for r in runs[d]]
            delta = [b - a for a, b in zip(mem, ddb)]
            print(f"  {op:13} memory {spread(mem)}{ratio(d, ('memory', op))}   "
                  f"dynamodb {spread(ddb)}   DynamoDB client {spread(delta)}")


if __name__ == "__main__":
    main()
