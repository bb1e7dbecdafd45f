#!/usr/bin/env python3
"""Smoke test of a deployed Callbridge, driven as a client would drive it.

    STREAM_API_KEY=... STREAM_API_SECRET=... python3 scripts/smoke.py --api <ApiUrl>
    make smoke API=<ApiUrl> STREAM_API_KEY=... STREAM_API_SECRET=...

Python 3 standard library only (with scripts/hs256.py beside it), so it runs anywhere. It
signs its own HS256 user token with STREAM_API_SECRET (read from the environment, never from
the command line): a server token acting for one user, so the run does not depend on channel
membership (server tokens are not asked about it); then:

1. Create Call with a fresh random id (mixed case) in channel messaging:callbridge-smoke: 201,
   the canonical (lowercase) id, a provider token;
2. Create Call with the same id in another letter case: the same call back;
3. Get Call Token by that id: a token for the same user;
4. Create Call with that id in another channel: refused, 403 code 17;
5. a bad call id: 400 code 4, in Stream's error shape;
6. a token with a bad signature: 401 code 43, in Stream's error shape;
7. End Call of that call: 200, the call ended by that user (state, ended_at, ended_by,
   ended_reason), and what became of its participants;
8. Get Call Token by that id again: refused, 404 code 16, "has ended".

It prints one PASS or FAIL line per step and, last, `N passed, M failed` alone on a line; exits
1 if a step failed, 2 on bad usage. It never prints the secret or any token, and every request
has a timeout (--timeout). Each run leaves one ended call in the table (it expires after the
stack's CallTtlSeconds) and, with 100ms, one room named after the call id (its session ended,
the room not locked).
The test suite runs this script against the local server (tests/api/smoke.rs), so it cannot rot.
"""
import argparse
import hashlib
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from hs256 import sign as sign_hs256  # scripts/hs256.py, standard library only

CHANNEL = ("messaging", "callbridge-smoke")
OTHER_CHANNEL = ("messaging", "callbridge-smoke-other")
MORE_INFO = "https://getstream.io/chat/docs/api_errors_response"


class Failure(Exception):
    pass


def agora_uid(user_id):
    """README, Agora uid and channel."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return (int.from_bytes(digest[:4], "big") & 0x7FFFFFFF) % 2147483647 + 1


def redacted(body):
    """The body for a FAIL line: tokens replaced, at most 300 characters."""
    if isinstance(body, dict):
        body = {k: ("<redacted>" if k == "token" else v) for k, v in body.items()}
    text = json.dumps(body) if not isinstance(body, str) else body
    return text if len(text) <= 300 else text[:300] + "..."


class Client:
    def __init__(self, api, api_key, timeout):
        self.api = api.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def post(self, path, token, body):
        """POST api/path?api_key=...; returns (status, parsed JSON body or the raw text)."""
        url = f"{self.api}{path}?{urllib.parse.urlencode({'api_key': self.api_key})}"
        data = json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Authorization": token,
            "stream-auth-type": "jwt",
            "Content-Type": "application/json",
            "X-Stream-Client": "callbridge-smoke",
        })
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:  # timeouts, refused connections, DNS
            reason = getattr(e, "reason", e)
            if isinstance(reason, (TimeoutError, socket.timeout)):  # one class since 3.10
                raise Failure(f"POST {path}: no answer within {self.timeout:g} s") from None
            raise Failure(f"POST {path}: request failed: {reason}") from None
        try:
            return status, json.loads(raw.decode("utf-8"))
        except ValueError:
            return status, raw.decode("utf-8", "replace")


def expect(cond, what, body=None):
    if not cond:
        raise Failure(what + (f"; body {redacted(body)}" if body is not None else ""))


def expect_success(status, body, what):
    expect(status == 201, f"{what}: status {status}, expected 201", body)
    expect(isinstance(body, dict), f"{what}: not a JSON object", body)
    expect(isinstance(body.get("token"), str) and body["token"], f"{what}: no token", body)
    expect(str(body.get("duration", "")).endswith("ms"), f"{what}: no duration", body)


def expect_stream_error(status, body, want_status, want_code, operation):
    expect(status == want_status, f"status {status}, expected {want_status}", body)
    expect(isinstance(body, dict), "not a JSON object (an API Gateway answer?)", body)
    expect(body.get("code") == want_code, f"code {body.get('code')!r}, expected {want_code}", body)
    expect(body.get("StatusCode") == want_status, "StatusCode", body)
    expect(str(body.get("message", "")).startswith(f'{operation} failed with error: "'),
           "message style", body)
    expect(str(body.get("duration", "")).endswith("ms"), "duration", body)
    expect(body.get("more_info") == MORE_INFO, "more_info", body)
    expect(body.get("details") == [], "details", body)


def steps(client, secret, user, role):
    """(name, function) of every step; later steps use what earlier ones found."""
    now = int(time.time())
    # A server token acting for `user`, as an app's backend would: it works whether or not
    # calls are private to channel members (server tokens are not asked about membership).
    token = sign_hs256({"server": True}, secret)
    # Mixed case on purpose: ids are case-insensitive, the canonical id is lowercase.
    call_id = f"Smoke-{secrets.token_hex(8)}"
    canonical = call_id.lower()
    found = {}

    def create_path(channel):
        return "/channels/{}/{}/call".format(*(urllib.parse.quote(p, safe="") for p in channel))

    def create():
        status, body = client.post(create_path(CHANNEL), token,
                                   {"id": call_id, "type": "video", "user": {"id": user, "role": role}})
        expect_success(status, body, "Create Call")
        call = body.get("call") or {}
        expect(call.get("id") == canonical, f"call.id {call.get('id')!r}, expected {canonical!r}")
        expect(call.get("type") == "video", "call.type", body)
        provider = call.get("provider")
        expect(provider in ("agora", "hms"), f"call.provider {provider!r}", body)
        expect(isinstance(call.get("agora"), dict) and isinstance(call.get("hms"), dict),
               "call.agora and call.hms objects", body)
        if provider == "agora":
            expect(call["agora"].get("channel") == canonical, "agora.channel", body)
            expect(body.get("agora_uid") == agora_uid(user), "agora_uid", body)
            expect(isinstance(body.get("agora_app_id"), str) and len(body["agora_app_id"]) == 32,
                   "agora_app_id", body)
        else:
            expect(call["hms"].get("room_id"), "hms.room_id", body)
            expect("agora_uid" not in body, "agora_uid on a 100ms call", body)
        found["call"] = call
        return f"{canonical} ({provider})"

    def create_again():
        expect("call" in found, "needs step 1")
        other_case = canonical.upper()
        status, body = client.post(create_path(CHANNEL), token,
                                   {"id": other_case, "type": "audio", "user": {"id": user, "role": role}})
        expect_success(status, body, "Create Call again")
        # The existing call, unchanged: its type (video) wins over this request's audio.
        expect(body.get("call") == found["call"], "not the same call back", body)
        return f"{other_case} -> {canonical}"

    def get_token():
        expect("call" in found, "needs step 1")
        status, body = client.post(f"/calls/{urllib.parse.quote(canonical, safe='')}", token,
                                   {"user": {"id": user, "role": role}})
        expect_success(status, body, "Get Call Token")
        expect("call" not in body, "Get Call Token answers no call", body)
        if found["call"]["provider"] == "agora":
            expect(body.get("agora_uid") == agora_uid(user), "agora_uid", body)
        return canonical

    def other_channel():
        expect("call" in found, "needs step 1")
        status, body = client.post(create_path(OTHER_CHANNEL), token,
                                   {"id": canonical, "type": "video", "user": {"id": user, "role": role}})
        expect_stream_error(status, body, 403, 17, "CreateCall")
        return "403, code 17"

    def bad_id():
        status, body = client.post(create_path(CHANNEL), token,
                                   {"id": "no spaces!", "type": "video", "user": {"id": user, "role": role}})
        expect_stream_error(status, body, 400, 4, "CreateCall")
        return "400, code 4"

    def token_path():
        return f"/calls/{urllib.parse.quote(canonical, safe='')}"

    def end_call():
        expect("call" in found, "needs step 1")
        reason = "callbridge smoke test"
        status, body = client.post(token_path() + "/end", token,
                                   {"user": {"id": user, "role": role}, "reason": reason})
        expect(status == 200, f"End Call: status {status}, expected 200", body)
        expect(isinstance(body, dict), "End Call: not a JSON object", body)
        expect(str(body.get("duration", "")).endswith("ms"), "End Call: no duration", body)
        call = body.get("call") or {}
        expect(call.get("id") == canonical, f"call.id {call.get('id')!r}", body)
        expect(call.get("state") == "ended", f"call.state {call.get('state')!r}", body)
        expect(call.get("ended_by") == user, f"call.ended_by {call.get('ended_by')!r}", body)
        expect(call.get("ended_reason") == reason, "call.ended_reason", body)
        expect(isinstance(call.get("ended_at"), str) and call["ended_at"].endswith("Z"),
               "call.ended_at", body)
        removed = body.get("participants_removed")
        expect(isinstance(removed, bool), "participants_removed", body)
        if removed:
            return "ended; participants removed"
        # Agora without RESTful API credentials: tokens already issued stay valid until then.
        expect(isinstance(body.get("tokens_valid_until"), str) and body.get("note"),
               "tokens_valid_until and note", body)
        return f"ended; tokens already issued stay valid until {body['tokens_valid_until']}"

    def ended_token():
        expect("call" in found, "needs step 1")
        status, body = client.post(token_path(), token, {"user": {"id": user, "role": role}})
        expect_stream_error(status, body, 404, 16, "GetCallToken")
        expect("has ended" in str(body.get("message")), "message does not say it ended", body)
        return "404, code 16, has ended"

    def bad_signature():
        forged = sign_hs256({"user_id": user, "role": role, "iat": now, "exp": now + 600},
                            "not-the-" + secrets.token_hex(8))
        status, body = client.post(f"/calls/{urllib.parse.quote(canonical, safe='')}", forged, {})
        expect_stream_error(status, body, 401, 43, "GetCallToken")
        return "401, code 43"

    return [
        ("create a call with a fresh id", create),
        ("create the same id in another letter case: the same call", create_again),
        ("get a call token by id", get_token),
        ("the id in another channel is refused", other_channel),
        ("a bad call id is a Stream error", bad_id),
        ("a token with a bad signature is a Stream error", bad_signature),
        ("end the call", end_call),
        ("get a call token of the ended call is refused", ended_token),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Smoke test of a deployed Callbridge (STREAM_API_KEY and STREAM_API_SECRET "
                    "from the environment).")
    parser.add_argument("--api", default=os.environ.get("API"),
                        help="base URL, the stack's ApiUrl output (default: $API)")
    parser.add_argument("--user", default="callbridge-smoke", help="user id of the token")
    parser.add_argument("--role", default="user",
                        help="role the server token acts with (picks the provider role)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per request (default 30: the HTTP API's own limit)")
    args = parser.parse_args(argv)
    api_key = os.environ.get("STREAM_API_KEY", "")
    secret = os.environ.get("STREAM_API_SECRET", "")
    missing = [n for n, v in [("--api (or API)", args.api), ("STREAM_API_KEY", api_key),
                              ("STREAM_API_SECRET", secret)] if not v]
    if missing:
        print(f"smoke.py: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    if not args.api.startswith(("https://", "http://")):
        print("smoke.py: --api must be an http(s) URL", file=sys.stderr)
        return 2
    if "{{resolve:" in secret:
        print("smoke.py: STREAM_API_SECRET is a Secrets Manager reference; give the value",
              file=sys.stderr)
        return 2

    print(f"Callbridge smoke test of {args.api.rstrip('/')} (user {args.user}, role {args.role})",
          flush=True)
    client = Client(args.api, api_key, args.timeout)
    passed = failed = 0
    for i, (name, step) in enumerate(steps(client, secret, args.user, args.role), 1):
        try:
            detail = step()
        except Failure as e:
            failed += 1
            print(f"FAIL {i}. {name}: {e}", flush=True)
        else:
            passed += 1
            print(f"PASS {i}. {name}: {detail}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
