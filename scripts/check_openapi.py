#!/usr/bin/env python3
"""Checks openapi.yaml against the real handlers.

1. openapi.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator), and every example in
   it matches its schema.
2. The real local server (target/debug/callbridge-local) is started three times on free
   loopback ports, each with a cleaned environment (PATH plus its own settings):
   - the sandbox (Agora, demo credentials), exactly as `make run` starts it;
   - a 100ms deployment whose HMS_API_BASE_URL points at a mock 100ms REST API run here (rooms,
     and the end-room of End Call, which fails for some rooms);
   - an Agora deployment on DynamoDB whose endpoint is a mock run here that throttles, fails
     or answers according to the call id (for 429, 503 and the store's 201/404).
   Real requests for success and error cases of the three operations are sent; every answer's
   status must be documented for its operation, its body must validate against the documented
   schema for that status, its documented headers (Retry-After, Allow) must be present and
   valid. Requests the server accepts must be valid for the spec, and requests it refuses for
   their body or path must be invalid for it.

Run from the repository root with the test venv (it has PyYAML, jsonschema,
openapi-spec-validator):

    .tools/venv/bin/python scripts/check_openapi.py [unittest options, e.g. -k hms]

With another interpreter it re-runs itself with .tools/venv/bin/python when that exists.
CALLBRIDGE_OPENAPI=<file> checks another copy of the document; CALLBRIDGE_LOCAL_BIN=<file>
another server binary. Prints `N passed, M failed` last; exits non-zero on any failure.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

import hs256  # scripts/hs256.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".tools", "venv", "bin", "python")

try:
    import yaml
    from openapi_schema_validator import OAS31Validator
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate as validate_spec
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
except ImportError as missing:  # pragma: no cover - depends on the interpreter
    if os.path.exists(VENV_PYTHON) and os.path.realpath(sys.executable) != os.path.realpath(
        VENV_PYTHON
    ):
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__), *sys.argv[1:]])
    print(
        f"check_openapi: {missing}; run with .tools/venv/bin/python (`make test` installs it)",
        file=sys.stderr,
    )
    print("0 passed, 1 failed")
    sys.exit(2)

SPEC_PATH = os.environ.get("CALLBRIDGE_OPENAPI") or os.path.join(ROOT, "openapi.yaml")
BINARY = os.environ.get("CALLBRIDGE_LOCAL_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug", "callbridge-local"
)
SPEC_URI = "urn:callbridge:openapi"

# The sandbox's demo settings (functions/local/src/lib.rs, SANDBOX_GROUPS).
SANDBOX_KEY = "callbridge-sandbox-key"
SANDBOX_SECRET = b"callbridge-sandbox-secret-not-for-production"
SANDBOX_AGORA_APP_ID = "0" * 32

# The 100ms deployment.
HMS_STREAM_KEY = "openapi-check-hms-key"
HMS_STREAM_SECRET = b"openapi-check-hms-stream-secret"
HMS_ACCESS_KEY = "6470b7a5e3f47d5e9a1c0f11"
HMS_SECRET = b"openapi-check-hms-app-secret"
HMS_TEMPLATE = "6470b7a5e3f47d5e9a1c0f33"
HMS_ROLE = "guest"

# The DynamoDB deployment.
MEMBERS_STREAM_KEY = "openapi-check-members-key"
MEMBERS_STREAM_SECRET = b"openapi-check-members-stream-secret"
DDB_STREAM_KEY = "openapi-check-ddb-key"
DDB_STREAM_SECRET = b"openapi-check-ddb-stream-secret"
DDB_AGORA_APP_ID = "970ca35de60c44645bbae8a215061b33"

MAX_BODY = 64 * 1024

# The providers' event secrets of the deployments that take events.
HMS_WEBHOOK_SECRET = "openapi-check-hms-webhook-secret"
AGORA_NCS_SECRET = b"openapi-check-agora-ncs-secret"


def agora_signature(body, secret=AGORA_NCS_SECRET):
    """Agora-Signature-V2: lowercase hex HMAC-SHA256 of the raw body (independent of the
    server's implementation: Python's hmac)."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def hms_event(kind, room_id, room_name, event_id, *, peer="peer-1", session="sess-1",
              at="2030-01-01T00:00:10Z", **data):
    """A 100ms webhook body of the documented shape (100ms docs, configure-webhooks/webhook.md)."""
    d = {"room_id": room_id, "room_name": room_name, "session_id": session,
         "session_started_at": "2030-01-01T00:00:05Z"}
    if kind.startswith("peer."):
        d.update({"peer_id": peer, "user_id": "alice", "user_name": "Alice", "role": "guest"})
        d["joined_at" if kind == "peer.join.success" else "left_at"] = at
    if kind == "session.close.success":
        d["session_stopped_at"] = at
    d.update(data)
    return {"version": "2.0", "id": event_id, "account_id": "6470b7a5e3f47d5e9a1c0f00",
            "app_id": "6470b7a5e3f47d5e9a1c0f01", "timestamp": at, "type": kind, "data": d}


def agora_event(event_type, channel, notice_id, *, uid=735577802, ts=None, seq=1, product=1):
    """An Agora NCS body of the documented shape (AgoraIO/Docs-Source,
    shared/notification-center-service)."""
    ts = int(time.time()) if ts is None else ts
    payload = {"channelName": channel, "ts": ts}
    if event_type not in (101, 102):
        payload.update({"uid": uid, "platform": 1, "clientSeq": seq})
    return {"noticeId": notice_id, "productId": product, "eventType": event_type,
            "notifyMs": ts * 1000, "payload": payload}

# ---------------------------------------------------------------------------------------------
# The document

with open(SPEC_PATH, encoding="utf-8") as f:
    SPEC = yaml.safe_load(f)

REGISTRY = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def esc(token):
    return token.replace("~", "~0").replace("/", "~1")


def node_at(pointer):
    node = SPEC
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def deref(node, pointer):
    """Follows OpenAPI `$ref`s (responses, parameters, headers): (node, its pointer)."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise AssertionError(f"unsupported or circular $ref {ref!r} at {pointer}")
        seen.add(ref)
        pointer = ref[1:]
        node = node_at(pointer)
    return node, pointer


def schema_errors(pointer, instance):
    """Errors of `instance` against the schema at `pointer` in the document, refs resolved."""
    validator = OAS31Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=OAS31Validator.FORMAT_CHECKER,
    )
    out = []
    for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{where}: {e.message}")
    return out


class Operation:
    def __init__(self, path, method="post"):
        self.path = path
        self.path_pointer = "/paths/" + esc(path)
        self.pointer = f"{self.path_pointer}/{method}"
        self.path_item = SPEC["paths"][path]
        self.node = self.path_item[method]
        self.id = self.node["operationId"]

    def parameters(self):
        """(name, location) -> (parameter node, pointer), path-level first."""
        out = {}
        for base, params in (
            (self.path_pointer, self.path_item.get("parameters", [])),
            (self.pointer, self.node.get("parameters", [])),
        ):
            for i, p in enumerate(params):
                p, ptr = deref(p, f"{base}/parameters/{i}")
                out[(p["name"], p["in"])] = (p, ptr)
        return out

    def response(self, status):
        responses = self.node.get("responses", {})
        key = str(status)
        if key not in responses:
            return None, None
        return deref(responses[key], f"{self.pointer}/responses/{key}")


CREATE = Operation("/channels/{type}/{id}/call")
TOKEN = Operation("/calls/{id}")
END = Operation("/calls/{id}/end")
HMS_EVENTS = Operation("/webhooks/100ms")
AGORA_EVENTS = Operation("/webhooks/agora")
OPERATIONS = {CREATE.id: CREATE, TOKEN.id: TOKEN, END.id: END, HMS_EVENTS.id: HMS_EVENTS,
              AGORA_EVENTS.id: AGORA_EVENTS}
WEBHOOKS = (HMS_EVENTS, AGORA_EVENTS)

RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")


def unix(ts):
    """Unix seconds of an RFC 3339 UTC time as the server writes it."""
    import calendar
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


# ---------------------------------------------------------------------------------------------
# Tokens and helpers


jwt = hs256.sign


def jwt_claims(token, secret):
    """Claims of an HS256 token after checking its signature."""
    h, p, s = token.split(".")
    if not hmac.compare_digest(hs256.signature(f"{h}.{p}", secret), s):
        raise AssertionError("token signature does not verify")
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    if header.get("alg") != "HS256":
        raise AssertionError(f"token header {header}")
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def agora_uid(user_id):
    d = hashlib.sha256(user_id.encode()).digest()
    return (int.from_bytes(d[:4], "big") & 0x7FFFFFFF) % 2147483647 + 1


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lowercased names
        self.body = body
        self._json = None

    def json(self):
        if self._json is None:
            self._json = json.loads(self.body)
        return self._json

    def __repr__(self):
        return f"<{self.status} {self.body[:400]!r}>"


def http_request(port, method, url, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        try:
            conn.request(method, url, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (413) before it read the whole body; its answer is there.
            pass
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


UNSET = object()


# ---------------------------------------------------------------------------------------------
# Servers and mocks


class LocalServer:
    """One callbridge-local process on a free loopback port, in a cleaned environment."""

    PATTERN = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")

    def __init__(self, name, env):
        self.name = name
        self.lines = []
        self.port = None
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CALLBRIDGE_PORT": "0"}
        full_env.update(env)
        self.proc = subprocess.Popen(
            [BINARY],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                m = self.PATTERN.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.drainer = threading.Thread(target=drain, name=f"{name}-stderr", daemon=True)
        self.drainer.start()
        if not ready.wait(30) or self.port is None:
            self.stop()
            raise RuntimeError(
                f"{name}: callbridge-local did not start:\n" + "\n".join(self.lines[-40:])
            )

    def log_tail(self, n=20):
        return "\n".join(self.lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # The server has exited, so its stderr ends: let the reader finish before the pipe is
        # closed under it (closing first made it raise in its thread).
        self.drainer.join(5)
        if self.proc.stderr:
            self.proc.stderr.close()


class MockServer:
    """A tiny HTTP server in a thread on a free loopback port."""

    def __init__(self, handler_cls):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, obj, content_type="application/json"):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def hms_mock_handler():
    """The part of 100ms's REST API Callbridge uses: POST /v2/rooms and
    POST /v2/active-rooms/{room_id}/end-room. Room names starting with hms-400, hms-403,
    hms-429 or hms-500 get that status from /rooms; every other name gets its room. End-room
    answers 500 for rooms whose name starts with hms-end-500 while `state["end_fails"]` is
    true, 403 for hms-end-403 (refused credentials), 404 (no active session) for
    hms-end-idle, and 200 otherwise."""
    state = {"rooms": [], "lock": threading.Lock(), "count": 0, "by_id": {}, "ended": [],
             "end_fails": True}
    end_room = re.compile(r"^/v2/active-rooms/([^/]+)/end-room$")

    class Handler(QuietHandler):
        def do_POST(self):
            raw = self.read_body()
            auth = self.headers.get("Authorization", "")
            try:
                claims = jwt_claims(auth.removeprefix("Bearer "), HMS_SECRET)
                assert claims["type"] == "management" and claims["access_key"] == HMS_ACCESS_KEY
            except Exception:
                return self.answer(401, {"code": 401, "message": "invalid management token"})
            m = end_room.match(self.path)
            if m:
                return self.end(m.group(1), raw)
            if self.path != "/v2/rooms":
                return self.answer(404, {"code": 404, "message": "not found"})
            try:
                req = json.loads(raw)
                name = req["name"]
            except Exception:
                return self.answer(400, {"code": 400, "message": "bad request body"})
            with state["lock"]:
                state["rooms"].append(req)
                state["count"] += 1
                n = state["count"]
            for prefix, status, body in (
                ("hms-400", 400, {"code": 400, "message": "template not found",
                                  "details": ["no template with this id"]}),
                ("hms-403", 403, {"code": 403, "message": "access denied"}),
                ("hms-429", 429, {"code": 429, "message": "too many requests"}),
                ("hms-500", 500, {"code": 500, "message": "internal error"}),
            ):
                if name.startswith(prefix):
                    return self.answer(status, body)
            room = {
                "id": f"6470b7a5e3f47d5e9a1c{n:04x}",
                "name": name,
                "enabled": True,
                "description": req.get("description", ""),
                "customer_id": "6470b7a5e3f47d5e9a1c0f00",
                "app_id": "6470b7a5e3f47d5e9a1c0f01",
                "recording_info": {"enabled": False},
                "template_id": req.get("template_id"),
                "template": "default_videoconf",
                "region": req.get("region", "in"),
                "size": req.get("size", 0),
                "max_duration_seconds": req.get("max_duration_seconds", 43200),
                "large_room": req.get("large_room", False),
                "created_at": "2026-11-29T03:00:00.000Z",
                "updated_at": "2026-11-29T03:00:00.000Z",
            }
            with state["lock"]:
                state["by_id"][room["id"]] = name
            return self.answer(200, room)

        def end(self, room_id, raw):
            with state["lock"]:
                name = state["by_id"].get(room_id)
                state["ended"].append((name, json.loads(raw or b"{}")))
            if name is None:
                return self.answer(404, {"code": 404, "message": "room not found"})
            if name.startswith("hms-end-500") and state["end_fails"]:
                return self.answer(500, {"code": 500, "message": "internal error"})
            if name.startswith("hms-end-403"):
                return self.answer(403, {"code": 403, "message": "access denied"})
            if name.startswith("hms-end-idle"):
                return self.answer(404, {"code": 404, "message": "no active session"})
            return self.answer(200, {"message": "session termination is in progress"})

    Handler.state = state
    return Handler


def dynamodb_mock_handler():
    """DynamoDB's JSON protocol, just enough: call ids starting with `throttle` are throttled,
    `ok` succeed (PutItem stores nothing, GetItem finds nothing), anything else fails (500)."""
    state = {"requests": []}

    class Handler(QuietHandler):
        def do_POST(self):
            raw = self.read_body()
            target = self.headers.get("X-Amz-Target", "")
            try:
                req = json.loads(raw or b"{}")
            except ValueError:
                req = {}
            pk = (req.get("Item") or req.get("Key") or {}).get("pk", {}).get("S", "")
            state["requests"].append((target, pk))
            ctype = "application/x-amz-json-1.0"
            if pk.startswith("throttle"):
                return self.answer(400, {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded.",
                }, ctype)
            if pk.startswith("ok"):
                return self.answer(200, {}, ctype)
            return self.answer(500, {
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": "Internal server error",
            }, ctype)

    Handler.state = state
    return Handler


def stream_mock_handler():
    """Stream Chat's query-members operation (GET /members?api_key=&payload=), as Stream's
    server SDKs call it: alice is a member of messaging:general, the channel messaging:nope does
    not exist (404, code 16), every other user is no member; a user id starting with
    `stream-500` gets a 500."""
    state = {"requests": []}

    class Handler(QuietHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            payload = json.loads(query.get("payload", "{}"))
            user = payload.get("filter_conditions", {}).get("id", {}).get("$eq", "")
            state["requests"].append((url.path, payload))
            if payload.get("id") == "nope":
                return self.answer(404, {
                    "code": 16, "StatusCode": 404, "duration": "0.30ms", "details": [],
                    "message": 'QueryMembers failed with error: "channel messaging:nope does not exist"',
                    "more_info": "https://getstream.io/chat/docs/api_errors_response"})
            if user.startswith("stream-500"):
                return self.answer(500, {"code": -1, "message": "internal", "StatusCode": 500})
            member = payload.get("id") == "general" and user == "alice"
            members = [{"user_id": user, "user": {"id": user}}] if member else []
            return self.answer(200, {"members": members, "duration": "0.50ms"})

    Handler.state = state
    return Handler


def ensure_binary():
    if os.path.exists(BINARY):
        return
    subprocess.run(["cargo", "build", "-p", "callbridge-local"], cwd=ROOT, check=True,
                   timeout=1800)


# ---------------------------------------------------------------------------------------------
# The check itself


class SpecCheck(unittest.TestCase):
    """Sends requests and checks the answers against the document."""

    maxDiff = None
    server = None  # LocalServer
    api_key = None
    secret = None
    hms = False  # options are checked against HmsRoomOptions
    default_user = "alice"

    # -- requests ---------------------------------------------------------------------------

    def token(self, user_id=None, **claims):
        c = {"user_id": user_id or self.default_user}
        c.update(claims)
        c = {k: v for k, v in c.items() if v is not None}
        return jwt(c, self.secret)

    def send(self, op, params, *, method="POST", body=None, token=UNSET, query=UNSET,
             headers=UNSET, raw_path=None, spec_rejects=False):
        """Sends one request, checks the answer against the document, returns it.

        `params`: decoded path parameters (percent-encoded here). `body`: dict/list (sent as
        JSON), str/bytes (sent as is) or None (no body). `spec_rejects`: the request is invalid
        for its path parameters or body, and the document must say so too."""
        if token is UNSET:
            token = self.token()
        if query is UNSET:
            query = {"api_key": self.api_key, "user_id": self.default_user,
                     "connection_id": "c0ffee"}
        if headers is UNSET:
            headers = {"stream-auth-type": "jwt", "Content-Type": "application/json"}
        headers = dict(headers)
        if token is not None:
            headers["Authorization"] = token
        if raw_path is None:
            path = op.path
            for name, value in params.items():
                path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        else:
            path = raw_path
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        resp = http_request(self.server.port, method, url, headers, data)
        self.check_response(op, resp, f"{method} {url}")
        dropped = op in WEBHOOKS and resp.status == 200 and resp.json().get("reason") == "malformed"
        if method == "POST" and resp.status in (200, 201) and not dropped:
            problems = self.request_problems(op, params, data)
            self.assertEqual(problems, [], f"the server accepted {data!r} but the document "
                                           f"refuses it")
        if spec_rejects:
            problems = self.request_problems(op, params, data)
            self.assertNotEqual(problems, [], f"the server refused {data!r} for {params} "
                                              f"({resp.json().get('message')}) but the "
                                              f"document accepts it")
        return resp

    def request_problems(self, op, params, data):
        """What the document says is wrong with these path parameters and body."""
        problems = []
        declared = op.parameters()
        for name, value in params.items():
            p, ptr = declared[(name, "path")]
            problems += [f"path {name}: {e}" for e in schema_errors(ptr + "/schema", value)]
        rb, rb_ptr = deref(op.node.get("requestBody", {}), op.pointer + "/requestBody")
        if data is None or not data.strip():
            if rb.get("required"):
                problems.append("body: required")
            return problems
        try:
            value = json.loads(data.decode("utf-8"))
        except ValueError as e:  # UnicodeDecodeError is a ValueError
            return problems + [f"body: not JSON ({e})"]
        problems += [f"body {e}" for e in
                     schema_errors(rb_ptr + "/content/application~1json/schema", value)]
        if self.hms and op is CREATE and isinstance(value, dict) \
                and value.get("options") is not None:
            problems += [f"body options {e}" for e in
                         schema_errors("/components/schemas/HmsRoomOptions", value["options"])]
        return problems

    def check_response(self, op, resp, what):
        """The answer's status is documented for `op`; its body and headers match."""
        doc, ptr = op.response(resp.status)
        if doc is None:
            self.fail(f"{what}: status {resp.status} is not documented for {op.id} "
                      f"(documented: {sorted(op.node.get('responses', {}))}); body "
                      f"{resp.body[:300]!r}")
        content = doc.get("content") or {}
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if content:
            self.assertIn(ctype, content, f"{what}: Content-Type {ctype!r} not documented "
                                          f"for {resp.status}")
            try:
                body = json.loads(resp.body)
            except ValueError:
                self.fail(f"{what}: {resp.status} body is not JSON: {resp.body[:200]!r}")
            errors = schema_errors(f"{ptr}/content/{esc(ctype)}/schema", body)
            if errors:
                self.fail(f"{what}: {resp.status} body does not match the document:\n  "
                          + "\n  ".join(errors) + f"\nbody: {resp.body[:600]!r}")
        else:
            self.assertEqual(resp.body, b"", f"{what}: undocumented {resp.status} body")
        for name, h in (doc.get("headers") or {}).items():
            h, h_ptr = deref(h, f"{ptr}/headers/{esc(name)}")
            value = resp.headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    self.fail(f"{what}: {resp.status} lacks the documented header {name}")
                continue
            schema = h.get("schema", {})
            if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
                value = int(value)
            errors = schema_errors(f"{h_ptr}/schema", value)
            if errors:
                self.fail(f"{what}: header {name}: {value!r}: {errors}")

    # -- assertions -------------------------------------------------------------------------

    def assertError(self, resp, status, code, *, contains=None):
        self.assertEqual(resp.status, status, resp)
        body = resp.json()
        self.assertEqual(body["code"], code, resp)
        if contains:
            self.assertIn(contains, body["message"])
        return body

    def create(self, call_id, channel=("messaging", "general"), call_type="video", **kw):
        body = kw.pop("body", UNSET)
        if body is UNSET:
            body = {"type": call_type}
            if call_id is not None:
                body["id"] = call_id
        return self.send(CREATE, {"type": channel[0], "id": channel[1]}, body=body, **kw)

    def get_token(self, call_id, body=UNSET, **kw):
        return self.send(TOKEN, {"id": call_id}, body={} if body is UNSET else body, **kw)

    def end_call(self, call_id, body=UNSET, **kw):
        return self.send(END, {"id": call_id}, body={} if body is UNSET else body, **kw)

    def send_event(self, op, body, *, secret=UNSET, signature=UNSET, method="POST"):
        """Sends a provider event as the provider does: the raw body, its secret header (100ms)
        or signature (Agora), no Stream credentials. `body`: dict (JSON) or bytes."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        headers = {"Content-Type": "application/json"}
        if op is HMS_EVENTS:
            secret = HMS_WEBHOOK_SECRET if secret is UNSET else secret
            if secret is not None:
                headers["X-Callbridge-Webhook-Secret"] = secret
        else:
            if signature is UNSET:
                signature = agora_signature(data or b"")
            if signature is not None:
                headers["Agora-Signature-V2"] = signature
        return self.send(op, {}, method=method, body=data, token=None, query=None,
                         headers=headers)

    def assertEvent(self, resp, result, reason=None):
        self.assertEqual(resp.status, 200, resp)
        b = resp.json()
        self.assertEqual((b["result"], b.get("reason")), (result, reason), b)
        return b

    def session_of(self, call_id, channel=("messaging", "general")):
        """The call's session record, as Create Call of the existing id answers it."""
        r = self.create(call_id, channel=channel)
        self.assertEqual(r.status, 201, r)
        return r.json()["call"]["session"]

    def assertEnded(self, resp, call_id, by, reason=None):
        """A 200 End Call answer for this call, ended by `by`."""
        self.assertEqual(resp.status, 200, resp)
        b = resp.json()
        call = b["call"]
        self.assertEqual((call["id"], call["state"], call["ended_by"], call["ended_reason"]),
                         (call_id, "ended", by, reason))
        self.assertRegex(call["ended_at"], RFC3339)
        self.assertLessEqual(abs(unix(call["ended_at"]) - time.time()), 120)
        self.assertLessEqual(unix(call["created_at"]), unix(call["ended_at"]))
        return b

    # -- common cases for every deployment --------------------------------------------------

    def check_401s(self, op, params, body):
        now = int(time.time())
        cases = [
            ("no api_key", dict(query={"user_id": "alice"}), 2),
            ("wrong api_key", dict(query={"api_key": "nope"}), 2),
            ("no Authorization", dict(token=None), 5),
            ("empty Authorization", dict(token="Bearer "), 5),
            ("garbled token", dict(token="not-a-jwt"), 5),
            ("anonymous", dict(token=None, headers={"stream-auth-type": "anonymous"}), 5),
            ("other auth type", dict(headers={"stream-auth-type": "basic"}), 5),
            ("token without user_id", dict(token=jwt({"role": "user"}, self.secret)), 5),
            ("expired", dict(token=self.token(exp=now - 3600)), 40),
            ("not valid yet", dict(token=self.token(nbf=now + 3600)), 41),
            ("issued in the future", dict(token=self.token(iat=now + 3600)), 42),
            ("other secret", dict(token=jwt({"user_id": "alice"}, b"someone-elses")), 43),
            ("alg none", dict(token=jwt({"user_id": "alice"}, b"", {"alg": "none"})
                              .rsplit(".", 1)[0] + "."), 43),
            ("alg HS512", dict(token=jwt({"user_id": "alice"}, self.secret,
                                         {"alg": "HS512", "typ": "JWT"})), 43),
        ]
        for label, kw, code in cases:
            with self.subTest(label):
                r = self.send(op, params, body=body, **kw)
                self.assertError(r, 401, code)

    def check_405_and_413(self, op, params):
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            with self.subTest(method=method):
                r = self.send(op, params, method=method, body=None)
                self.assertError(r, 405, 4, contains=f"method {method} is not allowed")
                self.assertEqual(r.headers.get("allow"), "POST")
        with self.subTest("413"):
            big = b'{"pad":"' + b"a" * MAX_BODY + b'"}'
            r = self.send(op, params, body=big)
            self.assertError(r, 413, 22)
        with self.subTest("64 KiB exactly is not too large"):
            pad = MAX_BODY - len(b'{"type":"video","pad":""}')
            r = self.send(op, params, body=b'{"type":"video","pad":"' + b"a" * pad + b'"}')
            self.assertNotEqual(r.status, 413, r)


class LiveServer(SpecCheck):
    server_env = None  # set by subclasses
    mocks = ()

    @classmethod
    def start_mocks(cls):
        return {}

    @classmethod
    def setUpClass(cls):
        ensure_binary()
        env = cls.start_mocks()
        cls.server = LocalServer(cls.__name__, env)
        cls.addClassCleanup(cls.server.stop)


# ---------------------------------------------------------------------------------------------


class Document(unittest.TestCase):
    def test_is_valid_openapi_3_1(self):
        self.assertTrue(str(SPEC.get("openapi", "")).startswith("3.1."), SPEC.get("openapi"))
        validate_spec(SPEC, cls=OpenAPIV31SpecValidator)

    def test_describes_the_five_operations_and_only_them(self):
        ops = {(p, m) for p, item in SPEC["paths"].items() for m in item
               if m in ("get", "put", "post", "delete", "options", "head", "patch", "trace")}
        self.assertEqual(ops, {("/channels/{type}/{id}/call", "post"), ("/calls/{id}", "post"),
                               ("/calls/{id}/end", "post"), ("/webhooks/100ms", "post"),
                               ("/webhooks/agora", "post")})
        self.assertEqual(set(OPERATIONS), {"createCall", "getCallToken", "endCall", "hmsEvent",
                                           "agoraEvent"})

    def test_webhooks_use_the_providers_authentication_only(self):
        schemes = SPEC["components"]["securitySchemes"]
        for op, scheme, header in ((HMS_EVENTS, "hmsWebhookSecret", "X-Callbridge-Webhook-Secret"),
                                   (AGORA_EVENTS, "agoraSignature", "Agora-Signature-V2")):
            with self.subTest(op.id):
                self.assertEqual(op.node.get("security"), [{scheme: []}])
                self.assertEqual((schemes[scheme]["type"], schemes[scheme]["in"],
                                  schemes[scheme]["name"]), ("apiKey", "header", header))
                self.assertEqual(op.parameters(), {}, "no Stream parameters")
        self.assertEqual(SPEC.get("security"), [{"streamJwt": []}])
        for op in (CREATE, TOKEN, END):
            self.assertNotIn("security", op.node, f"{op.id}: Stream's JWT (the default)")

    def test_documents_every_error_status_and_its_headers(self):
        expected = {
            "createCall": {"201", "400", "401", "403", "404", "405", "413", "429", "500", "502",
                           "503"},
            "getCallToken": {"201", "400", "401", "403", "404", "405", "413", "429", "500",
                             "502", "503"},
            "endCall": {"200", "400", "401", "403", "404", "405", "413", "429", "500", "502",
                        "503"},
            "hmsEvent": {"200", "401", "405", "413", "429", "500", "502", "503"},
            "agoraEvent": {"200", "401", "405", "413", "429", "500", "502", "503"},
        }
        for op in OPERATIONS.values():
            with self.subTest(op.id):
                self.assertEqual(set(op.node["responses"]), expected[op.id])
                for status in op.node["responses"]:
                    doc, _ = op.response(status)
                    headers = {k.lower(): deref(v, "")[0] for k, v in
                               (doc.get("headers") or {}).items()}
                    if status == "429":
                        self.assertTrue(headers.get("retry-after", {}).get("required"), status)
                    if status in ("502", "503"):
                        self.assertIn("retry-after", headers, status)
                    if status == "405":
                        self.assertTrue(headers.get("allow", {}).get("required"), status)
                    if status not in ("200", "201"):
                        schema = json.dumps(doc["content"]["application/json"]["schema"])
                        self.assertIn(f"#/components/schemas/Status{status}", schema)
                        name = ("ProviderEvent" if op in WEBHOOKS
                                else f"{op.id[0].upper()}{op.id[1:]}")
                        self.assertIn(f"#/components/schemas/{name}Error", schema)
                if op in WEBHOOKS:
                    continue
                params = {k for k in op.parameters()}
                self.assertIn(("api_key", "query"), params)
                self.assertTrue(op.parameters()[("api_key", "query")][0]["required"])
                self.assertIn(("stream-auth-type", "header"), params)
                self.assertIn(("user_id", "query"), params)
                self.assertIn(("connection_id", "query"), params)
        scheme = SPEC["components"]["securitySchemes"]["streamJwt"]
        self.assertEqual((scheme["type"], scheme["in"], scheme["name"]),
                         ("apiKey", "header", "Authorization"))

    def test_examples_match_their_schemas(self):
        checked = 0

        def media(node, ptr):
            nonlocal checked
            for ctype, m in (node.get("content") or {}).items():
                mptr = f"{ptr}/content/{esc(ctype)}"
                samples = []
                if "example" in m:
                    samples.append(("example", m["example"]))
                for name, ex in (m.get("examples") or {}).items():
                    ex, _ = deref(ex, f"{mptr}/examples/{esc(name)}")
                    samples.append((name, ex["value"]))
                for name, value in samples:
                    with self.subTest(pointer=mptr, example=name):
                        self.assertEqual(schema_errors(f"{mptr}/schema", value), [])
                        checked += 1

        def with_schema(node, ptr):
            nonlocal checked
            if "example" in node:
                with self.subTest(pointer=ptr):
                    value = node["example"]
                    self.assertEqual(schema_errors(f"{ptr}/schema", value), [])
                    checked += 1

        for op in OPERATIONS.values():
            rb, rb_ptr = deref(op.node.get("requestBody", {}), op.pointer + "/requestBody")
            media(rb, rb_ptr)
            for status in op.node["responses"]:
                doc, ptr = op.response(status)
                media(doc, ptr)
                for name, h in (doc.get("headers") or {}).items():
                    with_schema(*deref(h, f"{ptr}/headers/{esc(name)}"))
            for p, ptr in op.parameters().values():
                with_schema(p, ptr)
        for name, schema in SPEC["components"]["schemas"].items():
            for i, value in enumerate(schema.get("examples", [])):
                with self.subTest(schema=name, example=i):
                    self.assertEqual(schema_errors(f"/components/schemas/{esc(name)}", value),
                                     [])
                    checked += 1
        self.assertGreater(checked, 20)

    def test_the_check_fails_on_answers_the_document_does_not_allow(self):
        """The check itself: undocumented statuses, extra or missing fields all fail."""
        t = SpecCheck()
        ok = {"duration": "0.31ms", "token": "007eJxTYA==", "agora_uid": 1,
              "agora_app_id": "0" * 32}
        err = {"code": 16, "message": 'GetCallToken failed with error: "call "x" does not exist"',
               "StatusCode": 404, "duration": "0.10ms",
               "more_info": "https://getstream.io/chat/docs/api_errors_response", "details": []}
        good = [(201, ok), (404, err)]
        bad = [
            (418, err),  # undocumented status
            (200, ok),  # undocumented status
            (201, {**ok, "expires_at": 1}),  # extra property
            (201, {k: v for k, v in ok.items() if k != "agora_app_id"}),  # half the Agora pair
            (201, {**ok, "duration": "0.3ms"}),
            (404, {**err, "code": 4}),  # wrong code for the status
            (404, {**err, "details": ["x"]}),
            (404, {k: v for k, v in err.items() if k != "more_info"}),
            (404, {**err, "message": 'CreateCall failed with error: "x"'}),  # other operation
        ]
        for status, body in good:
            r = Response(status, {"content-type": "application/json"}, json.dumps(body).encode())
            t.check_response(TOKEN, r, "good")
        for status, body in bad:
            with self.subTest(status=status, body=body):
                r = Response(status, {"content-type": "application/json"},
                             json.dumps(body).encode())
                with self.assertRaises(AssertionError):
                    t.check_response(TOKEN, r, "bad")
        with self.subTest("429 without Retry-After"):
            body = {**err, "code": 9, "StatusCode": 429}
            r = Response(429, {"content-type": "application/json"}, json.dumps(body).encode())
            with self.assertRaises(AssertionError):
                t.check_response(TOKEN, r, "bad")
            r.headers["retry-after"] = "1"
            t.check_response(TOKEN, r, "good")

    def test_the_check_fails_on_webhook_answers_the_document_does_not_allow(self):
        t = SpecCheck()
        err = {"code": 5, "message": 'ProviderEvent failed with error: "x"', "StatusCode": 401,
               "duration": "0.02ms",
               "more_info": "https://getstream.io/chat/docs/api_errors_response", "details": []}
        good = [(200, {"duration": "0.10ms", "result": "recorded"}),
                (200, {"duration": "0.10ms", "result": "ignored", "reason": "malformed"}),
                (401, err)]
        for op in WEBHOOKS:
            for status, body in good:
                r = Response(status, {"content-type": "application/json"},
                             json.dumps(body).encode())
                t.check_response(op, r, "good")
        bad = [
            (201, good[0][1]),  # events answer 200
            (200, {"duration": "0.10ms", "result": "ignored"}),  # ignored without a reason
            (200, {"duration": "0.10ms", "result": "recorded", "reason": "x"}),
            (200, {"duration": "0.10ms", "result": "accepted"}),
            (200, {"result": "recorded"}),
            (401, {**err, "code": 2}),  # webhooks refuse with code 5 only
            (401, {**err, "message": 'CreateCall failed with error: "x"'}),
            (404, {**err, "code": 16, "StatusCode": 404}),
        ]
        for op in WEBHOOKS:
            for status, body in bad:
                with self.subTest(op=op.id, status=status, body=body):
                    r = Response(status, {"content-type": "application/json"},
                                 json.dumps(body).encode())
                    with self.assertRaises(AssertionError):
                        t.check_response(op, r, "bad")

    def test_the_check_fails_on_end_call_answers_the_document_does_not_allow(self):
        t = SpecCheck()
        call = {"id": "standup", "provider": "agora", "type": "video",
                "agora": {"channel": "standup"}, "hms": {"room_id": "", "room_name": ""},
                "state": "ended", "created_at": "2026-12-06T08:44:34Z", "created_by": "alice",
                "ended_at": "2026-12-06T09:00:00Z", "ended_by": "alice", "ended_reason": None,
                "session": {"state": "idle", "started_at": "2026-12-06T08:45:00Z",
                            "ended_at": "2026-12-06T08:59:00Z", "duration_seconds": 840,
                            "participants": 0, "max_participants": 3, "sessions": 1}}
        removed = {"duration": "0.31ms", "call": call, "participants_removed": True}
        kept = {**removed, "participants_removed": False,
                "tokens_valid_until": "2026-12-06T10:00:00Z", "note": "tokens stay valid"}
        for body in (removed, kept, {**removed, "call": {**call, "ends_at": call["ended_at"]}}):
            r = Response(200, {"content-type": "application/json"}, json.dumps(body).encode())
            t.check_response(END, r, "good")
        active = {**call, "state": "active", "ended_at": None, "ended_by": None}
        bad = [
            (201, removed),  # End Call answers 200
            (200, {**removed, "call": active}),  # the answered call is ended
            (200, {**removed, "call": {**call, "ended_at": None}}),  # ended without a time
            (200, {**removed, "call": {**call, "ended_at": "2026-12-06 09:00:00"}}),
            (200, {**removed, "call": {k: v for k, v in call.items() if k != "state"}}),
            (200, {**removed, "call": {**call, "ended_reason": "r" * 256}}),
            (200, {k: v for k, v in kept.items() if k != "note"}),  # not removed, no note
            (200, {**removed, "note": "x"}),  # removed, yet a note
            (200, {**removed, "participants_removed": "yes"}),
            (200, {**removed, "token": "007x"}),  # extra property
            (200, {**removed, "call": {k: v for k, v in call.items() if k != "session"}}),
            (200, {**removed, "call": {**call, "session": {**call["session"], "state": "open"}}}),
            (200, {**removed, "call": {**call, "session": {**call["session"],
                                                           "participants": -1}}}),
        ]
        for status, body in bad:
            with self.subTest(status=status, body=body):
                r = Response(status, {"content-type": "application/json"},
                             json.dumps(body).encode())
                with self.assertRaises(AssertionError):
                    t.check_response(END, r, "bad")
        # Create Call answers an active call.
        created = {"duration": "0.31ms", "token": "007eJxTYA==", "agora_uid": 1,
                   "agora_app_id": "0" * 32, "call": active}
        r = Response(201, {"content-type": "application/json"}, json.dumps(created).encode())
        t.check_response(CREATE, r, "good")
        r = Response(201, {"content-type": "application/json"},
                     json.dumps({**created, "call": call}).encode())
        with self.assertRaises(AssertionError):
            t.check_response(CREATE, r, "bad")


class AgoraSandbox(LiveServer):
    """The sandbox `make run` starts: Agora, demo credentials, in-memory store."""

    api_key = SANDBOX_KEY
    secret = SANDBOX_SECRET

    @classmethod
    def start_mocks(cls):
        return {}  # PATH and CALLBRIDGE_PORT only: the sandbox fills in the rest

    def assertAgoraCall(self, resp, call_id, user="alice", call_type="video"):
        self.assertEqual(resp.status, 201, resp)
        b = resp.json()
        self.assertEqual(b["call"]["id"], call_id)
        self.assertEqual(b["call"]["provider"], "agora")
        self.assertEqual(b["call"]["type"], call_type)
        self.assertEqual(b["agora_uid"], agora_uid(user))
        self.assertEqual(b["agora_app_id"], SANDBOX_AGORA_APP_ID)
        self.assertTrue(b["token"].startswith("007"))
        return b

    # Create Call

    def test_create_call_201(self):
        b = self.assertAgoraCall(self.create("Standup-Agora"), "standup-agora")
        self.assertEqual(b["call"]["agora"], {"channel": "standup-agora"})
        self.assertEqual(b["call"]["hms"], {"room_id": "", "room_name": ""})

    def test_create_call_201_bearer_generated_id_audio(self):
        r = self.create(None, call_type="audio", token="Bearer " + self.token())
        b = self.assertAgoraCall(r, r.json()["call"]["id"], call_type="audio")
        self.assertRegex(b["call"]["id"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        r = self.create(None, body={"id": None, "type": "video"})
        self.assertEqual(r.status, 201, r)

    def test_create_call_201_existing_same_channel_403_other_channel(self):
        self.assertAgoraCall(self.create("shared-id", channel=("messaging", "one")), "shared-id")
        r = self.create("SHARED-ID", channel=("messaging", "one"), call_type="audio",
                        token=self.token("bob"))
        self.assertAgoraCall(r, "shared-id", user="bob", call_type="video")
        r = self.create("shared-id", channel=("messaging", "two"))
        self.assertError(r, 403, 17, contains="already used by a call in another channel")

    def test_create_call_201_64_character_id(self):
        long_id = "a" * 40 + ":" + "b" * 23
        b = self.assertAgoraCall(self.create(long_id), long_id)
        channel = b["call"]["agora"]["channel"]
        self.assertEqual(len(channel), 63)
        self.assertEqual(channel[:42], long_id[:41] + "~")

    def test_create_call_201_agora_ignores_options(self):
        for i, options in enumerate(({}, None, {"template": "x", "size": -5}, {"a": [1]})):
            with self.subTest(options=options):
                r = self.create(None, body={"id": f"opt-{i}", "type": "video",
                                            "options": options})
                self.assertAgoraCall(r, f"opt-{i}")

    def test_create_call_channel_characters_and_percent_encoding(self):
        r = self.create("pe:1", channel=("team-chat_1", "!general@x.y:z_-"))
        self.assertAgoraCall(r, "pe:1")
        r = self.send(CREATE, {"type": "messaging", "id": "general"},
                      raw_path="/channels/messaging/gen%65ral/call",
                      body={"id": "pe%3A2", "type": "video"}, spec_rejects=True)
        self.assertError(r, 400, 4, contains="call id contains '%'")

    def test_create_call_201_server_token(self):
        server = jwt({"server": True}, self.secret)
        r = self.create(None, body={"id": "srv-1", "type": "video", "user_id": "bob"},
                        token=server)
        self.assertAgoraCall(r, "srv-1", user="bob")
        r = self.create(None, body={"id": "srv-2", "type": "video",
                                    "user": {"id": "carol", "role": "admin"}}, token=server)
        self.assertAgoraCall(r, "srv-2", user="carol")
        for body in ({"id": "srv-3", "type": "video"},
                     {"id": "srv-3", "type": "video", "user_id": 5},
                     {"id": "srv-3", "type": "video", "user_id": ""},
                     {"id": "srv-3", "type": "video", "user": {"id": "x", "role": ""}}):
            with self.subTest(body=body):
                r = self.create(None, body=body, token=server, spec_rejects="user" in body
                                or "user_id" in body)
                self.assertError(r, 400, 4)

    def test_create_call_201_dev_token_in_sandbox(self):
        dev = jwt({"user_id": "dev"}, b"").rsplit(".", 1)[0] + ".devtoken"
        r = self.create("dev-call", token=dev)
        self.assertAgoraCall(r, "dev-call", user="dev")

    def test_create_call_400(self):
        g = ("messaging", "general")
        cases = [
            ("bad type", g, {"id": "c1", "type": "screen"}, "type must be video or audio"),
            ("missing type", g, {"id": "c1"}, "type is required"),
            ("type not a string", g, {"id": "c1", "type": 1}, "type must be the string"),
            ("bad id", g, {"id": "bad id!", "type": "video"}, "call id contains"),
            ("id too long", g, {"id": "x" * 65, "type": "video"}, "limit is 64"),
            ("empty id", g, {"id": "", "type": "video"}, "must not be empty"),
            ("id not a string", g, {"id": 7, "type": "video"}, "id must be a string"),
            ("malformed JSON", g, '{"id": "c1", "type": ', "not valid JSON"),
            ("not an object", g, '["video"]', "must be a JSON object"),
            ("empty body", g, None, "request body is required"),
            ("blank body", g, "  \n", "request body is required"),
            ("not UTF-8", g, b'{"id":"\xff","type":"video"}', "not valid UTF-8"),
            ("options not an object", g, {"id": "c1", "type": "video", "options": []},
             "options must be an object"),
            ("bad channel type", ("messaging!", "general"), {"id": "c1", "type": "video"},
             "channel type"),
            ("channel type too long", ("m" * 65, "general"), {"id": "c1", "type": "video"},
             "channel type"),
            ("bad channel id", ("messaging", "gen eral"), {"id": "c1", "type": "video"},
             "channel id"),
            ("channel id with a slash", ("messaging", "a/b"), {"id": "c1", "type": "video"},
             "channel id"),
        ]
        for label, channel, body, needle in cases:
            with self.subTest(label):
                r = self.create(None, channel=channel, body=body, spec_rejects=True)
                self.assertError(r, 400, 4, contains=needle)
                self.assertTrue(r.json()["message"].startswith('CreateCall failed with error: "'))

    def test_create_call_401(self):
        self.check_401s(CREATE, {"type": "messaging", "id": "general"},
                        {"id": "auth", "type": "video"})

    def test_create_call_403_role_without_permission(self):
        r = self.create("guest-call", token=self.token("gus", role="guest"))
        self.assertError(r, 403, 17, contains="not allowed to perform action create-call")
        # The permission is checked before the body's id, type and options.
        r = self.create(None, body={"id": "bad id", "type": "screen"},
                        token=self.token("gus", role="guest"))
        self.assertError(r, 403, 17)

    def test_webhooks_401_without_their_secrets(self):
        r = self.send_event(HMS_EVENTS, hms_event("peer.join.success", "r", "x", "e-1"))
        self.assertError(r, 401, 5, contains="HMS_WEBHOOK_SECRET is not set")
        r = self.send_event(AGORA_EVENTS, agora_event(101, "x", "n-1"))
        self.assertError(r, 401, 5, contains="AGORA_NCS_SECRET is not set")

    def test_create_call_405_413(self):
        self.check_405_and_413(CREATE, {"type": "messaging", "id": "general"})

    # Get Call Token

    def test_get_call_token_201(self):
        self.assertAgoraCall(self.create("call-messaging:general"), "call-messaging:general")
        bodies = [
            ("no body", None), ("blank", " "), ("{}", {}),
            ("callId", {"callId": "call-messaging:general"}),
            ("unknown keys", {"callId": 5, "foo": {"bar": [1]}, "user_id": "mallory"}),
        ]
        for label, body in bodies:
            with self.subTest(label):
                r = self.get_token("call-messaging:general", body=body,
                                   token=self.token("bob"))
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["agora_uid"], agora_uid("bob"))
                self.assertEqual(r.json()["agora_app_id"], SANDBOX_AGORA_APP_ID)
        with self.subTest("upper case, Bearer, no stream-auth-type"):
            r = self.get_token("CALL-Messaging:General", token="bearer " + self.token(),
                               headers={})
            self.assertEqual(r.status, 201, r)

    def test_get_call_token_201_server_token(self):
        self.assertAgoraCall(self.create("srv-token"), "srv-token")
        server = jwt({"server": True}, self.secret)
        r = self.get_token("srv-token", body={"user_id": "bob"}, token=server)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["agora_uid"], agora_uid("bob"))
        r = self.get_token("srv-token", body={"user": {"id": "carol"}}, token=server)
        self.assertEqual(r.json()["agora_uid"], agora_uid("carol"))
        r = self.get_token("srv-token", body=None, token=server)
        self.assertError(r, 400, 4, contains="must name the user")

    def test_get_call_token_400(self):
        cases = [
            ("bad id", "bad id", {}, "call id contains"),
            ("id too long", "y" * 65, {}, "limit is 64"),
            ("malformed JSON", "fine", "{", "not valid JSON"),
            ("array body", "fine", "[]", "must be a JSON object"),
            ("string body", "fine", '"x"', "must be a JSON object"),
        ]
        for label, call_id, body, needle in cases:
            with self.subTest(label):
                r = self.get_token(call_id, body=body, spec_rejects=True)
                self.assertError(r, 400, 4, contains=needle)
                self.assertTrue(r.json()["message"].startswith(
                    'GetCallToken failed with error: "'))

    def test_get_call_token_401(self):
        self.check_401s(TOKEN, {"id": "auth"}, {})

    def test_get_call_token_403_role_without_permission(self):
        self.assertAgoraCall(self.create("guest-join"), "guest-join")
        r = self.get_token("guest-join", token=self.token("gus", role="guest"))
        self.assertError(r, 403, 17, contains="not allowed to perform action join-call")

    def test_get_call_token_404_unknown_call(self):
        r = self.get_token("no-such-call")
        self.assertError(r, 404, 16, contains='call "no-such-call" does not exist')

    def test_get_call_token_405_413(self):
        self.check_405_and_413(TOKEN, {"id": "anything"})

    # End Call

    def test_end_call_200_without_agora_credentials_then_404_has_ended(self):
        created = self.assertAgoraCall(self.create("end-agora"), "end-agora")
        self.assertEqual(created["call"]["state"], "active")
        self.assertIsNone(created["call"]["ended_at"])
        self.assertNotIn("ends_at", created["call"])
        r = self.get_token("end-agora", token=self.token("bob"))
        self.assertEqual(r.status, 201, r)
        for label, body in (("no body", None), ("blank", " "), ("{}", {})):
            with self.subTest(label):
                b = self.assertEnded(self.end_call("end-agora", body=body), "end-agora", "alice")
                # The sandbox has no Agora RESTful API credentials: tokens stay valid.
                self.assertIs(b["participants_removed"], False)
                self.assertIn("AGORA_CUSTOMER_ID", b["note"])
                until = unix(b["tokens_valid_until"])
                self.assertLessEqual(until, unix(b["call"]["ended_at"]) + 3600)
                self.assertGreater(until, time.time())
                self.assertEqual(b["call"]["created_at"], created["call"]["created_at"])
        r = self.get_token("end-agora", token=self.token("bob"))
        self.assertError(r, 404, 16, contains='call "end-agora" has ended')
        # The id of an ended call starts a new call.
        r = self.create("end-agora", token=self.token("bob"))
        again = self.assertAgoraCall(r, "end-agora", user="bob")
        self.assertEqual((again["call"]["state"], again["call"]["created_by"]), ("active", "bob"))
        self.assertEqual(self.get_token("end-agora").status, 201)

    def test_end_call_200_twice_answers_the_same_end(self):
        self.assertAgoraCall(self.create("end-twice"), "end-twice")
        first = self.assertEnded(self.end_call("end-twice", body={"reason": "done"}),
                                 "end-twice", "alice", "done")
        admin = self.token("ada", role="admin")
        second = self.assertEnded(self.end_call("END-TWICE", body={"reason": "other"},
                                                token=admin), "end-twice", "alice", "done")
        self.assertEqual(second["call"], first["call"])
        self.assertEqual(second["tokens_valid_until"], first["tokens_valid_until"])

    def test_end_call_200_who_may_end(self):
        server = jwt({"server": True}, self.secret)
        cases = [
            ("the creator", "end-who-1", self.token("alice"), {}, "alice"),
            ("an admin (end-call)", "end-who-2", self.token("ada", role="admin"), {}, "ada"),
            ("a server token", "end-who-3", server, {"user_id": "bob"}, "bob"),
            ("a server token, user object", "end-who-4", server,
             {"user": {"id": "carol", "role": "guest"}, "reason": None}, "carol"),
        ]
        for label, call_id, token, body, by in cases:
            with self.subTest(label):
                self.assertAgoraCall(self.create(call_id), call_id)
                self.assertEnded(self.end_call(call_id, body=body, token=token), call_id, by)

    def test_end_call_403_not_the_creator_nor_granted(self):
        self.assertAgoraCall(self.create("end-forbidden"), "end-forbidden")
        for user, role in (("bob", None), ("gus", "guest")):
            with self.subTest(user=user):
                r = self.end_call("end-forbidden", token=self.token(user, role=role))
                self.assertError(r, 403, 17, contains="not allowed to perform action end-call")
        r = self.get_token("end-forbidden")
        self.assertEqual(r.status, 201, r)  # still active

    def test_end_call_404_unknown_call(self):
        r = self.end_call("no-such-call-to-end")
        self.assertError(r, 404, 16, contains='call "no-such-call-to-end" does not exist')
        # The call is read before who may end it is decided.
        r = self.end_call("no-such-call-to-end", token=self.token("gus", role="guest"))
        self.assertError(r, 404, 16)

    def test_end_call_400(self):
        self.assertAgoraCall(self.create("end-bad"), "end-bad")
        cases = [
            ("reason too long", "end-bad", {"reason": "r" * 256}, "longer than 255 characters"),
            ("reason a number", "end-bad", {"reason": 5}, "reason must be a string"),
            ("reason an array", "end-bad", {"reason": ["a"]}, "reason must be a string"),
            ("reason an object", "end-bad", {"reason": {}}, "reason must be a string"),
            ("bad id", "bad id", {}, "call id contains"),
            ("id too long", "z" * 65, {}, "limit is 64"),
            ("malformed JSON", "end-bad", "{", "not valid JSON"),
            ("array body", "end-bad", "[]", "must be a JSON object"),
        ]
        for label, call_id, body, needle in cases:
            with self.subTest(label):
                r = self.end_call(call_id, body=body, spec_rejects=True)
                self.assertError(r, 400, 4, contains=needle)
                self.assertTrue(r.json()["message"].startswith('EndCall failed with error: "'))
        with self.subTest("255 characters is not too long"):
            b = self.assertEnded(self.end_call("end-bad", body={"reason": "é" * 255}),
                                 "end-bad", "alice", "é" * 255)
            self.assertEqual(len(b["call"]["ended_reason"]), 255)
        r = self.end_call("end-bad", body=None, token=jwt({"server": True}, self.secret))
        self.assertError(r, 400, 4, contains="must name the user")

    def test_end_call_401(self):
        self.check_401s(END, {"id": "auth"}, {})

    def test_end_call_405_413(self):
        self.check_405_and_413(END, {"id": "anything"})

    def test_time_limit_ends_at_and_capped_tokens(self):
        r = self.create(None, body={"id": "limited", "type": "video",
                                    "options": {"max_duration_seconds": 60}})
        b = self.assertAgoraCall(r, "limited")
        call = b["call"]
        self.assertEqual(unix(call["ends_at"]) - unix(call["created_at"]), 60)
        self.assertEqual(call["state"], "active")
        ended = self.assertEnded(self.end_call("limited"), "limited", "alice")
        self.assertEqual(ended["call"]["ends_at"], call["ends_at"])
        self.assertLessEqual(unix(ended["tokens_valid_until"]), unix(call["ends_at"]))
        for label, value in (("too short", 59), ("too long", 86401), ("a string", "60"),
                             ("a float", 60.5)):
            with self.subTest(label):
                r = self.create(None, body={"id": "limited-bad", "type": "video",
                                            "options": {"max_duration_seconds": value}},
                                spec_rejects=True)
                self.assertError(r, 400, 4, contains="max_duration_seconds")


class Hms(LiveServer):
    """A 100ms deployment, against a mock of 100ms's REST API."""

    api_key = HMS_STREAM_KEY
    secret = HMS_STREAM_SECRET
    hms = True

    @classmethod
    def start_mocks(cls):
        handler = hms_mock_handler()
        cls.mock = MockServer(handler)
        cls.addClassCleanup(cls.mock.stop)
        cls.rooms = handler.state["rooms"]
        cls.hms_state = handler.state
        return {
            "CALLBRIDGE_PROVIDER": "hms",
            "CALLBRIDGE_MEMBERSHIP": "off",
            "STREAM_API_KEY": HMS_STREAM_KEY,
            "STREAM_API_SECRET": HMS_STREAM_SECRET.decode(),
            "HMS_APP_ACCESS_KEY": HMS_ACCESS_KEY,
            "HMS_APP_SECRET": HMS_SECRET.decode(),
            "HMS_TEMPLATE_ID": HMS_TEMPLATE,
            "HMS_DEFAULT_ROLE": HMS_ROLE,
            "HMS_ROLE_MAP": "admin:host",
            "HMS_API_BASE_URL": f"http://127.0.0.1:{cls.mock.port}/v2",
        }

    def rooms_named(self, name):
        return [r for r in self.rooms if r["name"] == name]

    def assertHmsToken(self, token, room_id, user, role=HMS_ROLE):
        claims = jwt_claims(token, HMS_SECRET)
        self.assertEqual(claims["access_key"], HMS_ACCESS_KEY)
        self.assertEqual((claims["type"], claims["version"]), ("app", 2))
        self.assertEqual((claims["room_id"], claims["user_id"], claims["role"]),
                         (room_id, user, role))
        self.assertEqual(claims["exp"] - claims["iat"], 3600)

    def assertHmsCall(self, resp, call_id, user="alice", call_type="video", role=HMS_ROLE):
        self.assertEqual(resp.status, 201, resp)
        b = resp.json()
        self.assertNotIn("agora_uid", b)
        self.assertNotIn("agora_app_id", b)
        call = b["call"]
        self.assertEqual((call["id"], call["provider"], call["type"]),
                         (call_id, "hms", call_type))
        self.assertEqual(call["agora"], {"channel": ""})
        self.assertEqual(call["hms"]["room_name"], call_id)
        self.assertRegex(call["hms"]["room_id"], r"^[0-9a-f]{24}$")
        self.assertHmsToken(b["token"], call["hms"]["room_id"], user, role)
        return b

    def test_create_call_201_hms_with_options(self):
        options = {"template_id": "tmpl_2", "region": "eu", "description": "é" * 500,
                   "size": 20000, "max_duration_seconds": 43200, "large_room": True}
        r = self.create("Hms-Standup", body={"id": "Hms-Standup", "type": "audio",
                                             "options": options})
        self.assertHmsCall(r, "hms-standup", call_type="audio")
        sent = self.rooms_named("hms-standup")
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0], {"name": "hms-standup", **options})

    def test_create_call_201_hms_null_options_are_unset(self):
        options = {"template_id": None, "region": None, "description": None, "size": None,
                   "max_duration_seconds": None, "large_room": None}
        r = self.create("hms-nulls", body={"id": "hms-nulls", "type": "video",
                                           "options": options})
        self.assertHmsCall(r, "hms-nulls", call_type="video")
        sent = self.rooms_named("hms-nulls")
        self.assertEqual(len(sent), 1)
        self.assertNotIn("size", sent[0])
        self.assertNotIn("description", sent[0])

    def test_create_call_201_defaults_and_existing_call(self):
        r = self.create("hms-again", token=self.token("bob", role="admin"))
        b = self.assertHmsCall(r, "hms-again", user="bob", role="host")
        self.assertEqual(self.rooms_named("hms-again"),
                         [{"name": "hms-again", "template_id": HMS_TEMPLATE}])
        r = self.create("HMS-AGAIN", body={"id": "HMS-AGAIN", "type": "audio",
                                           "options": {"region": "us"}})
        b2 = self.assertHmsCall(r, "hms-again")
        self.assertEqual(b2["call"]["hms"], b["call"]["hms"])
        self.assertEqual(len(self.rooms_named("hms-again")), 1, "100ms was asked again")
        r = self.create("hms-again", channel=("messaging", "elsewhere"))
        self.assertError(r, 403, 17)

    def test_get_call_token_201_hms(self):
        created = self.assertHmsCall(self.create("hms-join"), "hms-join")
        room_id = created["call"]["hms"]["room_id"]
        for label, body in (("no body", None), ("{}", {}), ("callId", {"callId": "hms-join"})):
            with self.subTest(label):
                r = self.get_token("hms-join", body=body, token=self.token("bob"))
                self.assertEqual(r.status, 201, r)
                self.assertEqual(set(r.json()), {"duration", "token"})
                self.assertHmsToken(r.json()["token"], room_id, "bob")
        r = self.get_token("hms-missing")
        self.assertError(r, 404, 16)

    def test_create_call_400_room_options(self):
        cases = [
            ("unknown key", {"template": "x"},
             "accepted keys: template_id, region, description, size, max_duration_seconds, "
             "large_room"),
            ("region", {"region": "mars"}, "options.region"),
            ("description too long", {"description": "d" * 501}, "options.description"),
            ("size negative", {"size": -1}, "options.size"),
            ("size too big", {"size": 20001, "large_room": True}, "options.size"),
            ("size over 2500 without large_room", {"size": 2501}, "large_room"),
            ("size as a float", {"size": 10.5}, "options.size"),
            ("duration too short", {"max_duration_seconds": 119}, "max_duration_seconds"),
            ("duration too long", {"max_duration_seconds": 43201}, "max_duration_seconds"),
            ("template_id empty", {"template_id": ""}, "options.template_id"),
            ("template_id with a slash", {"template_id": "a/b"}, "options.template_id"),
            ("large_room not a boolean", {"large_room": "yes"}, "options.large_room"),
            ("options not an object", [1], "options must be an object"),
        ]
        for label, options, needle in cases:
            with self.subTest(label):
                before = len(self.rooms)
                r = self.create(None, body={"id": "hms-bad-options", "type": "video",
                                            "options": options}, spec_rejects=True)
                self.assertError(r, 400, 4, contains=needle)
                self.assertEqual(len(self.rooms), before, "100ms was asked")

    def test_create_call_400_when_100ms_refuses_the_options(self):
        r = self.create(None, body={"id": "hms-400-options", "type": "video",
                                    "options": {"region": "eu"}})
        self.assertError(r, 400, 4, contains="100ms refused the room options: template not found")

    def test_create_call_502_when_100ms_fails(self):
        cases = [
            ("refuses the defaults", "hms-400-defaults", 1, "refused the configured room", None),
            ("refuses the credentials", "hms-403-creds", 1, "rejected the configured credentials", None),
            ("keeps failing (one retry)", "hms-500-down", 2, "did not answer usably, so no call was stored", "1"),
        ]
        for label, call_id, attempts, needle, retry_after in cases:
            with self.subTest(label):
                r = self.create(call_id)
                self.assertError(r, 502, -1, contains=needle)
                self.assertEqual(r.headers.get("retry-after"), retry_after)
                self.assertEqual(len(self.rooms_named(call_id)), attempts)
                r = self.get_token(call_id)
                self.assertError(r, 404, 16)  # nothing was stored

    def test_create_call_429_when_100ms_rate_limits(self):
        r = self.create("hms-429-busy")
        self.assertError(r, 429, 9, contains="rate limiting")
        self.assertEqual(r.headers.get("retry-after"), "1")

    def ends_of(self, name):
        return [body for n, body in self.hms_state["ended"] if n == name]

    def test_end_call_200_ends_the_session(self):
        created = self.assertHmsCall(self.create("hms-end-ok"), "hms-end-ok")
        b = self.assertEnded(self.end_call("hms-end-ok", body={"reason": "over"}),
                             "hms-end-ok", "alice", "over")
        self.assertIs(b["participants_removed"], True)
        self.assertNotIn("tokens_valid_until", b)
        self.assertNotIn("note", b)
        self.assertEqual(b["call"]["hms"], created["call"]["hms"])
        self.assertEqual(self.ends_of("hms-end-ok"), [{"reason": "over", "lock": False}])
        r = self.get_token("hms-end-ok")
        self.assertError(r, 404, 16, contains="has ended")
        # Ended twice: the same answer, 100ms is not asked again.
        again = self.assertEnded(self.end_call("hms-end-ok"), "hms-end-ok", "alice", "over")
        self.assertEqual(again["call"], b["call"])
        self.assertEqual(len(self.ends_of("hms-end-ok")), 1)
        # No active session (404) is done too.
        self.assertHmsCall(self.create("hms-end-idle"), "hms-end-idle")
        b = self.assertEnded(self.end_call("hms-end-idle"), "hms-end-idle", "alice")
        self.assertIs(b["participants_removed"], True)

    def test_end_call_502_when_100ms_fails_then_a_repeat_completes_it(self):
        self.assertHmsCall(self.create("hms-end-500-a"), "hms-end-500-a")
        r = self.end_call("hms-end-500-a", body={"reason": "first"})
        self.assertError(r, 502, -1, contains='call "hms-end-500-a" is ended')
        self.assertIn("repeating the same request retries", r.json()["message"])
        self.assertEqual(r.headers.get("retry-after"), "1")
        self.assertEqual(len(self.ends_of("hms-end-500-a")), 2)  # one retry
        # Recorded as ended all the same.
        r = self.get_token("hms-end-500-a")
        self.assertError(r, 404, 16, contains="has ended")
        self.hms_state["end_fails"] = False
        try:
            b = self.assertEnded(self.end_call("hms-end-500-a", body={"reason": "second"}),
                                 "hms-end-500-a", "alice", "first")
            self.assertIs(b["participants_removed"], True)
            self.assertEqual(len(self.ends_of("hms-end-500-a")), 3)
        finally:
            self.hms_state["end_fails"] = True

    def test_end_call_502_when_100ms_refuses_the_credentials(self):
        self.assertHmsCall(self.create("hms-end-403"), "hms-end-403")
        r = self.end_call("hms-end-403")
        self.assertError(r, 502, -1, contains="100ms refused the configured credentials")
        self.assertIsNone(r.headers.get("retry-after"))

    def test_create_call_400_max_duration_out_of_100ms_range(self):
        for value in (60, 119):
            with self.subTest(value=value):
                r = self.create(None, body={"id": "hms-short", "type": "video",
                                            "options": {"max_duration_seconds": value}},
                                spec_rejects=True)
                self.assertError(r, 400, 4, contains="max_duration_seconds")

    def test_create_call_401_403(self):
        r = self.create("hms-auth", token=jwt({"user_id": "alice"}, SANDBOX_SECRET))
        self.assertError(r, 401, 43)
        r = self.create("hms-auth", query={"api_key": SANDBOX_KEY})
        self.assertError(r, 401, 2)
        dev = jwt({"user_id": "dev"}, b"").rsplit(".", 1)[0] + ".devtoken"
        r = self.create("hms-auth", token=dev)
        self.assertError(r, 401, 43, contains="development tokens are not accepted")
        r = self.create("hms-auth", token=self.token("gus", role="guest"))
        self.assertError(r, 403, 17)


class Members(LiveServer):
    """An Agora deployment whose calls are private to channel members, against a mock of Stream
    Chat's query-members operation."""

    api_key = MEMBERS_STREAM_KEY
    secret = MEMBERS_STREAM_SECRET

    @classmethod
    def start_mocks(cls):
        handler = stream_mock_handler()
        cls.mock = MockServer(handler)
        cls.addClassCleanup(cls.mock.stop)
        cls.asked = handler.state["requests"]
        return {
            "STREAM_API_KEY": MEMBERS_STREAM_KEY,
            "STREAM_API_SECRET": MEMBERS_STREAM_SECRET.decode(),
            "AGORA_APP_ID": DDB_AGORA_APP_ID,
            "AGORA_APP_CERTIFICATE": "1" * 32,
            "CALLBRIDGE_MEMBERSHIP": "stream",
            "STREAM_API_BASE_URL": f"http://127.0.0.1:{cls.mock.port}",
        }

    def test_members_201_others_403_unknown_channel_404(self):
        r = self.create("members-1", token=self.token("alice"))
        self.assertEqual(r.status, 201, r)
        r = self.create("members-2", token=self.token("bob"))
        self.assertError(r, 403, 17, contains='"bob" is not a member of channel "messaging:general"')
        r = self.create("members-3", channel=("messaging", "nope"), token=self.token("alice"))
        self.assertError(r, 404, 16, contains='channel "messaging:nope" does not exist')
        r = self.get_token("members-1", token=self.token("bob"))
        self.assertError(r, 403, 17, contains="not a member of this call's channel")
        r = self.get_token("members-1", token=self.token("alice"))
        self.assertEqual(r.status, 201, r)

    def test_end_call_members_only(self):
        r = self.create("members-end", token=self.token("alice"))
        self.assertEqual(r.status, 201, r)
        r = self.end_call("members-end", token=self.token("bob", role="admin"))
        self.assertError(r, 403, 17, contains="not a member of this call's channel")
        r = self.end_call("members-end", token=self.token("stream-500", role="admin"))
        self.assertError(r, 502, -1, contains="Stream Chat did not answer")
        r = self.get_token("members-end", token=self.token("alice"))
        self.assertEqual(r.status, 201, r)  # nothing was ended
        self.assertEnded(self.end_call("members-end", token=self.token("alice")),
                         "members-end", "alice")

    def test_502_when_stream_fails_and_server_tokens_are_not_checked(self):
        r = self.create("members-4", token=self.token("alice"))
        self.assertEqual(r.status, 201, r)
        r = self.get_token("members-4", token=self.token("stream-500"))
        self.assertError(r, 502, -1, contains="Stream Chat did not answer")
        self.assertEqual(r.headers.get("retry-after"), "1")
        before = len(self.asked)
        r = self.get_token("members-4", token=jwt({"server": True}, self.secret),
                           body={"user_id": "carol"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(len(self.asked), before, "a server token is not checked")


class AgoraEvents(LiveServer):
    """An Agora deployment (in-memory store) that takes both providers' events: Agora NCS
    signed with AGORA_NCS_SECRET, 100ms webhooks with HMS_WEBHOOK_SECRET."""

    api_key = MEMBERS_STREAM_KEY
    secret = MEMBERS_STREAM_SECRET

    @classmethod
    def start_mocks(cls):
        return {
            "STREAM_API_KEY": MEMBERS_STREAM_KEY,
            "STREAM_API_SECRET": MEMBERS_STREAM_SECRET.decode(),
            "CALLBRIDGE_MEMBERSHIP": "off",
            "AGORA_APP_ID": DDB_AGORA_APP_ID,
            "AGORA_APP_CERTIFICATE": "5cfd2fd1755d40ecb72977518be15d3b",
            "AGORA_NCS_SECRET": AGORA_NCS_SECRET.decode(),
            "HMS_WEBHOOK_SECRET": HMS_WEBHOOK_SECRET,
        }

    def test_agora_events_recorded_duplicate_and_the_session(self):
        self.assertEqual(self.create("ev-agora").status, 201)
        self.assertEqual(self.session_of("ev-agora"),
                         {"state": "idle", "started_at": None, "ended_at": None,
                          "duration_seconds": None, "participants": 0, "max_participants": 0,
                          "sessions": 0})
        now = int(time.time())
        opened = agora_event(101, "ev-agora", "n-101", ts=now)
        self.assertEvent(self.send_event(AGORA_EVENTS, opened), "recorded")
        self.assertEvent(self.send_event(AGORA_EVENTS, opened), "duplicate")
        joined = agora_event(103, "ev-agora", "n-103", ts=now, seq=1)
        self.assertEvent(self.send_event(AGORA_EVENTS, joined), "recorded")
        s = self.session_of("ev-agora")
        self.assertEqual((s["state"], s["participants"], s["max_participants"], s["sessions"]),
                         ("live", 1, 1, 1), s)
        self.assertRegex(s["started_at"], RFC3339)
        self.assertIsNone(s["ended_at"])
        # Out of order: the leave with a later clientSeq, then the channel's end.
        left = agora_event(104, "ev-agora", "n-104", ts=now + 5, seq=2)
        closed = agora_event(102, "ev-agora", "n-102", ts=now + 6)
        self.assertEvent(self.send_event(AGORA_EVENTS, closed), "recorded")
        self.assertEvent(self.send_event(AGORA_EVENTS, left), "recorded")
        s = self.session_of("ev-agora")
        self.assertEqual((s["state"], s["participants"], s["max_participants"], s["sessions"],
                          s["duration_seconds"]), ("idle", 0, 1, 1, 6), s)
        self.assertEqual(unix(s["ended_at"]) - unix(s["started_at"]), 6)
        # The session does not end the call.
        self.assertEqual(self.get_token("ev-agora").status, 201)

    def test_agora_401_bad_missing_or_foreign_signature(self):
        self.assertEqual(self.create("ev-agora-401").status, 201)
        body = json.dumps(agora_event(101, "ev-agora-401", "n-401")).encode()
        for label, sig, code_reason in (
            ("missing", None, "missing"),
            ("another body's", agora_signature(body + b" "), "does not sign"),
            ("another secret's", agora_signature(body, b"someone-elses"), "does not sign"),
            ("not hex", "z" * 64, "does not sign"),
            ("truncated", agora_signature(body)[:63], "does not sign"),
        ):
            with self.subTest(label):
                r = self.send_event(AGORA_EVENTS, body, signature=sig)
                self.assertError(r, 401, 5, contains=code_reason)
        # Nothing was recorded by any of them.
        self.assertEqual(self.session_of("ev-agora-401")["sessions"], 0)

    def test_agora_ignored_events(self):
        self.assertEqual(self.create("ev-agora-ign").status, 201)
        now = int(time.time())
        for label, body, reason in (
            ("not JSON", b"not json", "malformed"),
            ("a JSON array", b"[1,2]", "malformed"),
            ("no noticeId", {"productId": 1, "eventType": 101,
                             "payload": {"channelName": "ev-agora-ign", "ts": now}}, "malformed"),
            ("another product", agora_event(101, "ev-agora-ign", "n-p3", product=3), "untracked"),
            ("another event type", agora_event(111, "ev-agora-ign", "n-111"), "untracked"),
            ("not a call's channel", agora_event(101, "Not A Call!", "n-nac"), "not_a_call"),
            ("unknown call", agora_event(101, "ev-nobody", "n-unk"), "unknown_call"),
            ("before this call", agora_event(101, "ev-agora-ign", "n-old", ts=now - 3600),
             "before_this_call"),
        ):
            with self.subTest(label):
                self.assertEvent(self.send_event(AGORA_EVENTS, body), "ignored", reason)
        self.assertEqual(self.session_of("ev-agora-ign")["sessions"], 0)

    def test_hms_webhooks_401_and_ignored_here(self):
        self.assertEqual(self.create("ev-hms-here").status, 201)
        event = hms_event("peer.join.success", "6470b7a5e3f47d5e9a1c0f22", "ev-hms-here", "e-1")
        for label, secret in (("missing", None), ("wrong", "nope"),
                              ("longer", HMS_WEBHOOK_SECRET + "x"), ("empty", "")):
            with self.subTest(label):
                r = self.send_event(HMS_EVENTS, event, secret=secret)
                self.assertError(r, 401, 5, contains="X-Callbridge-Webhook-Secret")
        # Authenticated: an Agora call is no 100ms room; other types are not tracked.
        self.assertEvent(self.send_event(HMS_EVENTS, event), "ignored", "another_room")
        self.assertEvent(self.send_event(
            HMS_EVENTS, hms_event("recording.success", "r", "ev-hms-here", "e-2")),
            "ignored", "untracked")
        self.assertEvent(self.send_event(HMS_EVENTS, b"{"), "ignored", "malformed")
        self.assertEvent(self.send_event(
            HMS_EVENTS, hms_event("peer.join.success", "r", "ev-nobody", "e-3")),
            "ignored", "unknown_call")

    def test_webhooks_405_413(self):
        for op in WEBHOOKS:
            with self.subTest(op.id):
                self.check_405_and_413(op, {})


class HmsEvents(LiveServer):
    """A 100ms deployment with HMS_WEBHOOK_URL: rooms are created with the webhook, and the
    webhooks of a call's room make its session."""

    api_key = HMS_STREAM_KEY
    secret = HMS_STREAM_SECRET
    hms = True
    webhook_url = "https://callbridge.example.com/webhooks/100ms"

    @classmethod
    def start_mocks(cls):
        handler = hms_mock_handler()
        cls.mock = MockServer(handler)
        cls.addClassCleanup(cls.mock.stop)
        cls.rooms = handler.state["rooms"]
        return {
            "CALLBRIDGE_PROVIDER": "hms",
            "CALLBRIDGE_MEMBERSHIP": "off",
            "STREAM_API_KEY": HMS_STREAM_KEY,
            "STREAM_API_SECRET": HMS_STREAM_SECRET.decode(),
            "HMS_APP_ACCESS_KEY": HMS_ACCESS_KEY,
            "HMS_APP_SECRET": HMS_SECRET.decode(),
            "HMS_TEMPLATE_ID": HMS_TEMPLATE,
            "HMS_DEFAULT_ROLE": HMS_ROLE,
            "HMS_API_BASE_URL": f"http://127.0.0.1:{cls.mock.port}/v2",
            "HMS_WEBHOOK_URL": cls.webhook_url,
            "HMS_WEBHOOK_SECRET": HMS_WEBHOOK_SECRET,
        }

    def test_room_created_with_the_webhook_then_events_make_the_session(self):
        r = self.create("ev-hms")
        self.assertEqual(r.status, 201, r)
        room_id = r.json()["call"]["hms"]["room_id"]
        sent = [room for room in self.rooms if room["name"] == "ev-hms"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0].get("webhook"), {
            "url": self.webhook_url,
            "headers": {"X-Callbridge-Webhook-Secret": HMS_WEBHOOK_SECRET}})
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
        ev = lambda kind, eid, **kw: hms_event(kind, room_id, "ev-hms", eid,  # noqa: E731
                                               session_started_at=now, **kw)
        join_a = ev("peer.join.success", "e-ja", peer="a", at=now)
        self.assertEvent(self.send_event(HMS_EVENTS, join_a), "recorded")
        self.assertEvent(self.send_event(HMS_EVENTS, {**join_a, "is_replay": True}),
                         "duplicate")
        self.assertEvent(self.send_event(HMS_EVENTS, ev("peer.join.success", "e-jb", peer="b",
                                                        at=now)), "recorded")
        s = self.session_of("ev-hms")
        self.assertEqual((s["state"], s["participants"], s["max_participants"], s["sessions"]),
                         ("live", 2, 2, 1), s)
        for kind, eid, kw in (("peer.leave.success", "e-la", {"peer": "a", "at": later}),
                              ("peer.leave.success", "e-lb", {"peer": "b", "at": later}),
                              ("session.close.success", "e-close", {"at": later})):
            self.assertEvent(self.send_event(HMS_EVENTS, ev(kind, eid, **kw)), "recorded")
        s = self.session_of("ev-hms")
        self.assertEqual((s["state"], s["participants"], s["max_participants"], s["sessions"],
                          s["duration_seconds"]), ("idle", 0, 2, 1, 30), s)
        # Another room with this call's name (not the call's room) changes nothing.
        other = hms_event("session.open.success", "6470b7a5e3f47d5e9a1cffff", "ev-hms", "e-x",
                          session="sess-x", session_started_at=later)
        self.assertEvent(self.send_event(HMS_EVENTS, other), "ignored", "another_room")
        self.assertEqual(self.session_of("ev-hms")["sessions"], 1)
        # Agora's webhook is refused: AGORA_NCS_SECRET is not set here.
        r = self.send_event(AGORA_EVENTS, agora_event(101, "ev-hms", "n-1"))
        self.assertError(r, 401, 5, contains="AGORA_NCS_SECRET is not set")


class DynamoDbFailures(LiveServer):
    """An Agora deployment on DynamoDB whose endpoint throttles, fails or answers by call id."""

    api_key = DDB_STREAM_KEY
    secret = DDB_STREAM_SECRET

    @classmethod
    def start_mocks(cls):
        handler = dynamodb_mock_handler()
        cls.mock = MockServer(handler)
        cls.addClassCleanup(cls.mock.stop)
        return {
            "CALLBRIDGE_MEMBERSHIP": "off",
            "STREAM_API_KEY": DDB_STREAM_KEY,
            "STREAM_API_SECRET": DDB_STREAM_SECRET.decode(),
            "AGORA_APP_ID": DDB_AGORA_APP_ID,
            "AGORA_APP_CERTIFICATE": "1" * 32,
            "CALLBRIDGE_TABLE_NAME": "callbridge-openapi-check",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{cls.mock.port}",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def test_429_when_storage_throttles(self):
        r = self.create("throttle-1")
        self.assertError(r, 429, 9, contains="too many requests")
        self.assertEqual(r.headers.get("retry-after"), "1")
        r = self.get_token("throttle-1")
        self.assertError(r, 429, 9)
        self.assertTrue(r.json()["message"].startswith("GetCallToken"))
        r = self.end_call("throttle-1")
        self.assertError(r, 429, 9)
        self.assertTrue(r.json()["message"].startswith("EndCall"))

    def test_503_when_storage_fails(self):
        r = self.create("down-1")
        # A failed put may have been applied: the answer says the outcome is unknown.
        self.assertError(r, 503, -1, contains="may or may not have been stored")
        self.assertEqual(r.headers.get("retry-after"), "1")
        r = self.get_token("down-1")
        self.assertError(r, 503, -1, contains="call storage is unavailable; nothing was changed")
        r = self.end_call("down-1")
        self.assertError(r, 503, -1, contains="call storage is unavailable; nothing was changed")
        self.assertEqual(r.headers.get("retry-after"), "1")

    def test_201_and_404_when_storage_answers(self):
        r = self.create("ok-1")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["agora_app_id"], DDB_AGORA_APP_ID)
        r = self.get_token("ok-1")  # the mock stores nothing
        self.assertError(r, 404, 16)
        r = self.end_call("ok-1")
        self.assertError(r, 404, 16, contains='call "ok-1" does not exist')


# ---------------------------------------------------------------------------------------------
# Runner: prints `N passed, M failed` last.


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _mark(self, test, ok):
        key = test.test_case.id() if isinstance(test, unittest.case._SubTest) else test.id()
        if not ok or key not in self.outcomes:
            self.outcomes[key] = self.outcomes.get(key, True) and ok

    def addSuccess(self, test):
        super().addSuccess(test)
        self._mark(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark(test, False)

    def addError(self, test, err):
        super().addError(test, err)
        self._mark(test, False)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(subtest, False)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._mark(test, False)


def main():
    started = time.monotonic()
    runner = unittest.TextTestRunner(resultclass=CountingResult, verbosity=2)
    program = unittest.main(module=__name__, testRunner=runner, exit=False)
    result = program.result
    passed = sum(1 for ok in result.outcomes.values() if ok)
    failed = sum(1 for ok in result.outcomes.values() if not ok)
    print(f"check_openapi: {SPEC_PATH} checked in {time.monotonic() - started:.1f}s")
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 and result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
