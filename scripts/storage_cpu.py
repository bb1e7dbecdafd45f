#!/usr/bin/env python3
"""CPU per request of the storage path, measured on the release local server.

Runs target/release/callbridge-local (CARGO_TARGET_DIR honoured; build it first:
`cargo build --release -p callbridge-local`) twice on loopback: with the in-memory store, and
with DynamoDB at a canned HTTP endpoint in this script (GetItem answers the call asked for,
PutItem succeeds, both at once). Sends a bounded number of Create Call (each a new call) and
Get Call Token requests, one keep-alive connection, one at a time, and reads the server's CPU
time (all its threads, /proc/<pid>/task/*/schedstat, nanoseconds) before and after each batch.
Prints CPU us per request for each store and the difference: the DynamoDB client's share.
Only loopback addresses; stops by itself. Python 3 standard library only.

    python3 scripts/storage_cpu.py [--requests 3000]
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cpu-secret"
KEY = "cpu-key"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_token(user):
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"user_id": user}).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


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


def start_server(binary, env):
    port = free_port()
    proc = subprocess.Popen([str(binary)], env={**env, "CALLBRIDGE_PORT": str(port)},
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


def batch(port, pid, requests, make):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    token = user_token("alice")
    headers = {"authorization": token, "stream-auth-type": "jwt",
               "content-type": "application/json"}
    # Warm-up: connections, pools, first-use paths.
    for i in range(50):
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    requests = max(100, min(args.requests, 100_000))
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    binary = target / "release" / "callbridge-local"
    if not binary.is_file():
        sys.exit(f"{binary} not found: cargo build --release -p callbridge-local")

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
    results = {}
    for store, env in stores.items():
        proc, port = start_server(binary, env)
        try:
            results[(store, "CreateCall")] = batch(port, proc.pid, requests, create)
            if store == "memory":
                # Get Call Token needs its calls in the store: created first, not counted.
                seed(port, [f"warm{i}" for i in range(50)] + [str(i) for i in range(requests)])
            results[(store, "GetCallToken")] = batch(port, proc.pid, requests, get_token)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    dynamo.shutdown()

    print(f"server CPU per request (all threads), {requests} requests each, one connection:")
    for op in ("CreateCall", "GetCallToken"):
        mem, mem_rate = results[("memory", op)]
        ddb, ddb_rate = results[("dynamodb", op)]
        print(f"  {op:13} memory {mem:6.1f} us ({mem_rate:.0f}/s)   dynamodb {ddb:6.1f} us "
              f"({ddb_rate:.0f}/s)   DynamoDB client {ddb - mem:+6.1f} us")


if __name__ == "__main__":
    main()
